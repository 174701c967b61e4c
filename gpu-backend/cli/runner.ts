// In-process staged runner for the CLI: loads the plan's stages one after another (each from its own shard of the
// weights file) so the resident memory of each stage can be measured, then runs the segments in route order with a
// local skip map, counting the bytes that cross a stage boundary (what a multi-process pipeline would send).
import { rmSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as ort from 'onnxruntime-node';
import { float32, type Tensor } from '../../shared/tensor.ts';
import { derive, type Derived, type UViTConfig } from '../model/config.ts';
import { runRoute } from '../engine/route.ts';
import { makeSegmentWorkDir, openSegment } from '../engine/segmentLoader.ts';
import { createSession, type ExecutionProvider } from '../engine/session.ts';
import { GraphBuilder } from '../onnx/graph.ts';
import { DataType } from '../onnx/onnx.ts';
import type { Plan } from '../partition/types.ts';
import { chain, type Segment, TENSOR } from '../model/chain.ts';
import type { ModelInputs } from '../sampler/guidance.ts';

export interface RunnerOptions {
  config: UViTConfig;
  weightsPath: string;
  plan: Plan;
  threads?: number;
  ep?: ExecutionProvider;
  deviceId?: number;
  log?: (line: string) => void;
}

export interface StageStats {
  stage: number;
  /** plan segment indices, route order */
  segments: number[];
  /** official block names, chain order within each segment */
  blocks: string[];
  embed: boolean;
  head: boolean;
  paramBytes: number;
  /** in-process: growth of the process RSS while this stage loaded (its resident footprint) */
  peakRssBytes: number;
  loadMs: number;
  computeMs: number;
  runs: number;
}

export interface TrafficStats {
  /** stream tensors (h_out -> h_in) handed between segments on different stages */
  activationBytes: number;
  activationHops: number;
  /** long-skip tensors made on one stage and consumed on another */
  skipBytes: number;
  skipTransfers: number;
}

/**
 * What forward/sample need from a network executor: InProcessRunner here, or with --spawn the stage-process
 * SpawnedPipelineRunner (cli/spawnedRunner.ts); commands/common.ts openRunner() picks one.
 */
export interface NetworkRunner {
  readonly plan: Plan;
  readonly stages: StageStats[];
  readonly traffic: TrafficStats;
  /** forwards run so far */
  readonly forwards: number;
  /** where per-stage peakRssBytes comes from */
  readonly memoryScope: 'in-process' | 'per-process';
  forward(inp: ModelInputs): Promise<Tensor<'float32'>>;
  release(): Promise<void>;
}

interface LoadedSegment {
  segment: Segment;
  session: ort.InferenceSession;
}

const rss = () => process.memoryUsage().rss;

/** A full GC before each RSS reading, so a stage's figure is what it keeps, not the garbage of building it. */
const collect: () => void = (() => {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc === 'function') return () => (gc as () => void)();
  } catch {
    // fall through: measure without forcing a collection
  }
  return () => {};
})();

export class InProcessRunner implements NetworkRunner {
  readonly memoryScope = 'in-process' as const;
  readonly config: UViTConfig;
  readonly derived: Derived;
  readonly plan: Plan;
  readonly stages: StageStats[];
  readonly traffic: TrafficStats = { activationBytes: 0, activationHops: 0, skipBytes: 0, skipTransfers: 0 };
  forwards = 0;
  private readonly route: LoadedSegment[];
  private readonly workDir?: string;

  private constructor(o: RunnerOptions, route: LoadedSegment[], stages: StageStats[], workDir?: string) {
    this.config = o.config;
    this.derived = derive(o.config);
    this.plan = o.plan;
    this.route = route;
    this.stages = stages;
    this.workDir = workDir;
  }

  static async create(o: RunnerOptions): Promise<InProcessRunner> {
    const { config, plan } = o;
    const { n } = derive(config);
    const loaded = new Map<number, LoadedSegment>();
    const stages: StageStats[] = [];
    let workDir: string | undefined;
    await warmUpOrt({ threads: o.threads, ep: o.ep, deviceId: o.deviceId });
    try {
      for (const info of [...plan.stages].sort((a, b) => a.stage - b.stage)) {
        const t0 = performance.now();
        collect();
        const r0 = rss();
        const segs = info.segments.map((i) => plan.segments[i]);
        let paramBytes = 0;
        for (const seg of segs) {
          const opened = await openSegment(config, seg, {
            weightsPath: o.weightsPath,
            session: { threads: o.threads, ep: o.ep, deviceId: o.deviceId },
            workDir: () => (workDir ??= makeSegmentWorkDir()),
          });
          paramBytes += opened.paramBytes;
          loaded.set(seg.index, { segment: seg, session: opened.session });
        }
        collect();
        const stats: StageStats = {
          stage: info.stage,
          segments: [...info.segments],
          blocks: segs.flatMap((s) => Array.from({ length: s.end - s.start }, (_, k) => chain.name(n, s.start + k))),
          embed: segs.some((s) => s.embed),
          head: segs.some((s) => s.head),
          paramBytes,
          peakRssBytes: Math.max(0, rss() - r0),
          loadMs: performance.now() - t0,
          computeMs: 0,
          runs: 0,
        };
        stages.push(stats);
        o.log?.(`stage ${stats.stage}: ${stats.blocks.length} blocks, ${(paramBytes / 2 ** 20).toFixed(1)} MiB params, loaded in ${stats.loadMs.toFixed(0)} ms`);
      }
    } catch (e) {
      for (const l of loaded.values()) await l.session.release();
      if (workDir) rmSync(workDir, { recursive: true, force: true });
      throw e;
    }
    const route = [...plan.segments].sort((a, b) => a.index - b.index).map((s) => loaded.get(s.index)!);
    return new InProcessRunner(o, route, stages, workDir);
  }

  /** One network forward; inputs are assumed validated against the config (cli/inputs.ts). */
  async forward(inp: ModelInputs): Promise<Tensor<'float32'>> {
    const B = inp.x.dims[0];
    const embedFeeds: Record<string, ort.Tensor> = {
      [TENSOR.x]: new ort.Tensor('float32', inp.x.data, inp.x.dims),
      [TENSOR.timesteps]: new ort.Tensor('float32', inp.timesteps.data, [B]),
    };
    if (inp.y) embedFeeds[TENSOR.y] = new ort.Tensor('int64', inp.y.data, [B]);
    if (inp.context) embedFeeds[TENSOR.context] = new ort.Tensor('float32', inp.context.data, inp.context.dims);
    const out = await runRoute(this.route, embedFeeds, {
      onHandOver: (kind, t, fromStage, to) => {
        if (fromStage === to.stage) return;
        if (kind === 'h') {
          this.traffic.activationBytes += byteLength(t);
          this.traffic.activationHops++;
        } else {
          this.traffic.skipBytes += byteLength(t);
          this.traffic.skipTransfers++;
        }
      },
      onRun: ({ segment: s }, _out, ms) => {
        const st = this.stages.find((x) => x.stage === s.stage)!;
        st.computeMs += ms;
        st.runs++;
      },
    });
    const eps = float32([...out.dims], out.data as Float32Array);
    this.forwards++;
    return eps;
  }

  async release(): Promise<void> {
    for (const l of this.route) await l.session.release();
    if (this.workDir) rmSync(this.workDir, { recursive: true, force: true });
  }
}

/**
 * Creates and runs a one-op session first, so that ONNX Runtime's one-time start-up (environment, thread pools,
 * allocators) is not counted in the first stage's RSS growth.
 */
async function warmUpOrt(sess: { threads?: number; ep?: ExecutionProvider; deviceId?: number }): Promise<void> {
  const b = new GraphBuilder('warmup', 17);
  const x = b.input('x', DataType.FLOAT, [1]);
  b.output(b.op('Relu', [x]), 'y', DataType.FLOAT, [1]);
  const s = await createSession(b.encode(), sess);
  await s.run({ x: new ort.Tensor('float32', new Float32Array([1]), [1]) });
  await s.release();
}

function byteLength(t: ort.Tensor): number {
  return (t.data as Float32Array).byteLength;
}
