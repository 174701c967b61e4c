// Control messages between driver and stages (hello / stats payloads, UTF-8 JSON in control frames; data is binary).
// A connection opens with the handshake (auth.ts), which also says who the client is: the driver (with its origin)
// or peer stage k. Then a driver sends its hello; before a job's first inputs it opens the job on every stage with a
// 'job' frame and waits for every stage's echo, so no stage ever meets a tensor of a job it does not know.

/** driver -> every stage, first frame after the handshake; the frame's `origin` is the driver id */
export interface DriverHello {
  role: 'driver';
  /** addresses of all stages by index, for stage-to-stage links when the stages were not given --peers */
  peers?: string[];
  /** carry float32 activations and skips between stages as float16 */
  f16?: boolean;
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
  /** connections closed for failing the handshake or breaking their role's rules */
  refusedConnections: number;
  /** frames refused by their header (limits, a job not open to the sender); the payload was never read */
  refusedFrames: number;
  /** tensor bytes held for all jobs (received or made here, waiting for their unit) */
  heldBytes: number;
  /** jobs open on this stage */
  openJobs: number;
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
