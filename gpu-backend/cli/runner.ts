// In-process staged runner for the CLI: the Engine, loading the plan's stages one after another (each from its own
// shard of the weights file) so the resident memory of each stage can be measured, and counting on every forward
// the bytes that cross a stage boundary (what a multi-process pipeline would send).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as ort from 'onnxruntime-node';
import type { Tensor } from '../../shared/tensor.ts';
import { Engine } from '../engine/engine.ts';
import { createSession, type ExecutionProvider } from '../engine/session.ts';
import { chain } from '../model/chain.ts';
import { derive, type UViTConfig } from '../model/config.ts';
import { GraphBuilder } from '../onnx/graph.ts';
import { DataType } from '../onnx/onnx.ts';
import type { Plan } from '../partition/types.ts';
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
  readonly plan: Plan;
  readonly stages: StageStats[];
  readonly traffic: TrafficStats = { activationBytes: 0, activationHops: 0, skipBytes: 0, skipTransfers: 0 };
  forwards = 0;
  private readonly engine: Engine;

  private constructor(engine: Engine, stages: StageStats[]) {
    this.engine = engine;
    this.plan = engine.plan;
    this.stages = stages;
  }

  static async create(o: RunnerOptions): Promise<InProcessRunner> {
    const { n } = derive(o.config);
    const stages: StageStats[] = [];
    let t0 = 0;
    let r0 = 0;
    await warmUpOrt({ threads: o.threads, ep: o.ep, deviceId: o.deviceId });
    const engine = await Engine.create({
      config: o.config,
      weightsPath: o.weightsPath,
      plan: o.plan,
      threads: o.threads,
      ep: o.ep,
      deviceId: o.deviceId,
      onStage: {
        before: () => {
          t0 = performance.now();
          collect();
          r0 = rss();
        },
        after: (stage, { segments: segs, paramBytes }) => {
          collect();
          const stats: StageStats = {
            stage,
            segments: segs.map((s) => s.index),
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
          o.log?.(`stage ${stage}: ${stats.blocks.length} blocks, ${(paramBytes / 2 ** 20).toFixed(1)} MiB params, loaded in ${stats.loadMs.toFixed(0)} ms`);
        },
      },
    });
    return new InProcessRunner(engine, stages);
  }

  /** One network forward, counting per stage compute and what crosses a stage boundary. */
  async forward(inp: ModelInputs): Promise<Tensor<'float32'>> {
    const eps = await this.engine.forward(inp, {
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
    this.forwards++;
    return eps;
  }

  release(): Promise<void> {
    return this.engine.release();
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
