// Where the worker's network forwards run: in this process (Engine), on stage processes at given addresses (the
// pipeline client), or on stage processes this process spawns on localhost. The pipeline variants heal: before
// each job they check the link (a stats round trip) and reconnect, or respawn dead local stages, when it is broken.
import { Engine } from '../engine/engine.ts';
import { readPlanFile } from '../partition/planFile.ts';
import { engineForward, pipelineForward, type Forward } from '../driver/driver.ts';
import type { LoadedGroupConfig } from './groupConfig.ts';
import type { PipelineMetricsSource } from '../metrics/driverMetrics.ts';
import { PipelineClient } from '../pipeline/client/pipelineClient.ts';
import { spawnStages, type StageGroup } from '../pipeline/client/spawn.ts';
import type { GroupSecret } from '../pipeline/wire/auth.ts';

export interface Backend {
  /** e.g. "in-process engine (2 threads)" or "2 stages (sequential) at 127.0.0.1:7101,127.0.0.1:7102" */
  describe(): string;
  forward: Forward;
  numStages: number;
  metricsSource(): PipelineMetricsSource | undefined;
  /** called before each job; reconnects / respawns when the pipeline is broken */
  ensureHealthy(): Promise<void>;
  /** give up on a job: its network forwards in flight fail now (the stages drop its state) */
  abandon(jobId: string, reason: string): void;
  close(): Promise<void>;
  /** SIGKILL local stage k (spawned stages only; tests of the recovery path) */
  killStage?(k: number): void;
}

/** What the network's placement reads of a group: a video group config, or a catalogue image model (catalogue.ts). */
export type NetworkConfig = Pick<LoadedGroupConfig, 'uvit' | 'weights' | 'engine' | 'stages'>;

export async function inProcessBackend(cfg: NetworkConfig): Promise<Backend> {
  const engine = await Engine.create({
    config: cfg.uvit,
    weightsPath: cfg.weights,
    threads: cfg.engine.threads,
    ep: cfg.engine.ep,
    deviceId: cfg.engine.device_id,
  });
  return {
    describe: () => `in-process engine (${cfg.engine.ep}${cfg.engine.threads ? `, ${cfg.engine.threads} threads` : ''})`,
    forward: engineForward(engine),
    numStages: 1,
    metricsSource: () => undefined,
    ensureHealthy: async () => {},
    // an in-process forward cannot be interrupted; the driver stops at its next step (it checks its abort signal)
    abandon: () => {},
    close: () => engine.release(),
  };
}

interface PipelineBackendOptions {
  planPath: string;
  /** connect to these stage addresses (with the group secret they run with); or spawn local stages when absent */
  addresses?: string[];
  secret?: GroupSecret;
  cfg: NetworkConfig;
  f16?: boolean;
  log?: (s: string) => void;
}

export async function pipelineBackend(o: PipelineBackendOptions): Promise<Backend> {
  const { plan } = readPlanFile(o.planPath);
  const log = o.log ?? (() => {});
  let group: StageGroup | undefined;
  let client: PipelineClient | undefined;
  const st = o.cfg.stages;
  const spawnOpts = {
    threads: st?.[0]?.threads ?? 1,
    ep: st?.[0]?.ep ?? ('cpu' as const),
    deviceIds: st?.map((s) => s.device_id),
  };
  const up = async () => {
    if (!o.addresses && !group) {
      group = await spawnStages(o.planPath, spawnOpts);
      log(`spawned ${plan.numStages} stage processes (pids ${group.pids.join(', ')}) at ${group.addresses.join(', ')}`);
    }
    const addrs = o.addresses ?? group!.addresses;
    const secret = o.addresses ? o.secret : group!.secret;
    if (!secret) throw new Error('pipeline backend: stages at given addresses need their group secret');
    client = await PipelineClient.connect(plan, addrs, { secret, f16: o.f16, statsIntervalMs: 2000 });
  };
  const down = async () => {
    client?.close();
    client = undefined;
    await group?.close();
    group = undefined;
  };
  await up();
  let healing: Promise<void> | null = null;
  const heal = async () => {
    try {
      await Promise.race([
        client!.refreshStats(),
        new Promise((_, rej) => setTimeout(() => rej(new Error('stats round trip timed out')), 5000).unref()),
      ]);
    } catch (e) {
      log(`stage pipeline broken (${(e as Error).message}); ${o.addresses ? 'reconnecting' : 'respawning the stages'}`);
      client?.close();
      client = undefined;
      if (!o.addresses) {
        await group?.close();
        group = undefined;
      }
      await up();
    }
  };
  const metrics: PipelineMetricsSource = {
    stageBusyFraction: () => client?.metricsSource().stageBusyFraction?.() ?? [],
    skipBytes: () => client?.metrics.skipBytes ?? 0,
    activationBytes: () => client?.metrics.activationBytes ?? 0,
    queueDepth: () => (client ? client.metrics.queued + client.metrics.inFlight : 0),
  };
  return {
    describe: () => `${plan.numStages} stages (${plan.partition}) ${o.addresses ? 'at' : 'spawned at'} ${(o.addresses ?? group?.addresses ?? []).join(',')}`,
    forward: async (inputs, tag) => {
      // another job's failure may have started a reconnect: wait for it rather than fail this job too
      if (!client && healing) await healing.catch(() => {});
      if (!client) throw new Error('stage pipeline is down (reconnect failed; see the group log)');
      return pipelineForward(client)(inputs, tag);
    },
    numStages: plan.numStages,
    metricsSource: () => metrics,
    ensureHealthy: async () => {
      healing ??= (client ? heal() : up()).finally(() => (healing = null));
      await healing;
    },
    abandon: (jobId, reason) => client?.abandon(jobId, reason),
    close: down,
    killStage: o.addresses ? undefined : (k) => group?.kill(k),
  };
}
