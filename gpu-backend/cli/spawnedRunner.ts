// `uvit forward|sample --stages N --spawn`: the CLI's NetworkRunner (cli/runner.ts) backed by N real stage processes
// on localhost (spawnStages) and the pipeline client. Concurrent forward() calls (CFG micro-batches) are in flight
// together; each is its own micro-batch of one job.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Tensor } from '../../shared/tensor.ts';
import type { NetworkRunner, StageStats as CliStageStats, TrafficStats } from './runner.ts';
import type { UViTConfig } from '../model/config.ts';
import { derive } from '../model/config.ts';
import { makePlanFile, writePlanFile } from '../partition/planFile.ts';
import type { Plan } from '../partition/types.ts';
import { chain } from '../model/chain.ts';
import type { ModelInputs } from '../sampler/guidance.ts';
import { PipelineClient, type PipelineOptions } from '../pipeline/client/pipelineClient.ts';
import { spawnStages, type StageGroup } from '../pipeline/client/spawn.ts';

export interface SpawnedRunnerOptions {
  config: UViTConfig;
  weightsPath: string;
  plan: Plan;
  threads?: number;
  ep?: 'cpu' | 'cuda';
  /** CUDA device per stage (default: stage index) */
  deviceIds?: number[];
  pipeline?: Omit<PipelineOptions, 'secret'>;
  log?: (line: string) => void;
}

export class SpawnedPipelineRunner implements NetworkRunner {
  readonly memoryScope = 'per-process' as const;
  readonly plan: Plan;
  readonly stages: CliStageStats[];
  readonly traffic: TrafficStats = { activationBytes: 0, activationHops: 0, skipBytes: 0, skipTransfers: 0 };
  readonly group: StageGroup;
  readonly client: PipelineClient;
  forwards = 0;
  private readonly jobId = `cli-${process.pid}-${Date.now()}`;
  private readonly tmp: string;

  private constructor(plan: Plan, stages: CliStageStats[], group: StageGroup, client: PipelineClient, tmp: string) {
    this.plan = plan;
    this.stages = stages;
    this.group = group;
    this.client = client;
    this.tmp = tmp;
  }

  static async create(o: SpawnedRunnerOptions): Promise<SpawnedPipelineRunner> {
    const tmp = mkdtempSync(join(tmpdir(), 'uvit-spawn-'));
    const planPath = join(tmp, 'plan.json');
    // no exported segment files: each stage builds its segments from its own shard of the weights
    const file = makePlanFile({
      config: o.config,
      weights: resolve(o.weightsPath),
      plan: o.plan,
      segmentFiles: o.plan.segments.map((s) => join(tmp, `unbuilt-segment-${s.index}.onnx`)),
    });
    writePlanFile(planPath, file);
    let group: StageGroup | undefined;
    try {
      group = await spawnStages(planPath, { threads: o.threads, ep: o.ep, deviceIds: o.deviceIds });
      o.log?.(`spawned ${o.plan.numStages} stage processes (${o.plan.partition}): ${group.addresses.join(', ')} pids ${group.pids.join(', ')}`);
      const client = await PipelineClient.connect(o.plan, group.addresses, { ...o.pipeline, secret: group.secret });
      const n = derive(o.config).n;
      const stages: CliStageStats[] = o.plan.stages.map((st) => {
        const segs = st.segments.map((i) => o.plan.segments[i]);
        return {
          stage: st.stage,
          segments: st.segments,
          blocks: segs.flatMap((s) => Array.from({ length: s.end - s.start }, (_, k) => chain.name(n, s.start + k))),
          embed: segs.some((s) => s.embed),
          head: segs.some((s) => s.head),
          paramBytes: st.paramBytes,
          peakRssBytes: 0,
          loadMs: 0,
          computeMs: 0,
          runs: 0,
        };
      });
      const r = new SpawnedPipelineRunner(o.plan, stages, group, client, tmp);
      await r.refresh();
      return r;
    } catch (e) {
      await group?.close();
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  async forward(inp: ModelInputs): Promise<Tensor<'float32'>> {
    const k = this.forwards++;
    const eps = await this.client.forward(this.jobId, k, 0, inp);
    await this.refresh();
    return eps;
  }

  /** pull the stages' counters into `stages` and `traffic` */
  async refresh(): Promise<void> {
    const all = await this.client.refreshStats();
    for (const s of all) {
      const st = this.stages.find((x) => x.stage === s.stage)!;
      st.peakRssBytes = s.peakRssBytes;
      st.loadMs = s.loadMs;
      st.computeMs = s.busyMs;
      st.runs = s.runs;
    }
    this.traffic.activationBytes = all.reduce((a, s) => a + s.sent.stream, 0);
    this.traffic.activationHops = all.reduce((a, s) => a + s.sentCount.stream, 0);
    this.traffic.skipBytes = all.reduce((a, s) => a + s.sent.skip, 0);
    this.traffic.skipTransfers = all.reduce((a, s) => a + s.sentCount.skip, 0);
  }

  async release(): Promise<void> {
    this.client.close();
    await this.group.close();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}
