// Control messages between driver and stages (hello / stats payloads, UTF-8 JSON in control frames; data is binary).

/** driver -> every stage, first frame on the connection; the frame's `origin` is the driver id */
export interface DriverHello {
  role: 'driver';
  /** addresses of all stages by index, for stage-to-stage links when the stages were not given --peers */
  peers?: string[];
  /** carry float32 activations and skips between stages as float16 */
  f16?: boolean;
}

/** stage -> stage, first frame on a peer link */
export interface PeerHello {
  role: 'peer';
  stage: number;
}

/** stage -> driver, reply to DriverHello */
export interface StageHello {
  role: 'stage';
  stage: number;
  partition: string;
  /** ONNX input names of each segment this stage holds */
  segments: Record<string, string[]>;
}

type RoleBytes = { stream: number; skip: number; eps: number; input: number };

/** reply to a 'stats' frame */
export interface StageStats {
  stage: number;
  uptimeMs: number;
  /** time spent inside segment runs (wall) */
  busyMs: number;
  /** CPU time of the whole stage process (user + system), ms */
  cpuMs: number;
  runs: number;
  queueDepth: number;
  maxQueueDepth: number;
  failedJobs: number;
  tornFrames: number;
  /** tensor payload bytes sent / received, by role (stream = activations between stages) */
  sent: RoleBytes;
  received: RoleBytes;
  /** tensors sent, by role */
  sentCount: RoleBytes;
  /** resident set size of the stage process now, and peak as seen at stats time */
  rssBytes: number;
  peakRssBytes: number;
  /** time to load the stage's shard and build its sessions (set by the CLI entry; 0 when unknown) */
  loadMs: number;
}
