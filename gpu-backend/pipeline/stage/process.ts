// `uvit stage --plan PLAN.json --index K --listen HOST:PORT [--peers A0,A1,..] [--threads N] [--ep cpu|cuda]
//  [--device-id N] [--max-payload-mb N] [--max-batch N] [--max-held-mb N] [--idle-timeout-s N] [--stall-timeout-s N]`:
// one stage process of a backend group. Loads only stage K's shard, prints "uvit-stage ready stage=K address=HOST:PORT"
// on stdout once it accepts connections, runs until SIGTERM/SIGINT (or, with --exit-with-stdin, until its parent
// closes stdin). Errors in one job never end the process. The group secret comes from the environment (wire/auth.ts).
import { parseArgs } from 'node:util';
import { readPlanFile } from '../../partition/planFile.ts';
import { groupSecretFromEnv } from '../wire/auth.ts';
import { parseAddress } from '../wire/transport.ts';
import { createOrtExecutor } from './executor.ts';
import { DEFAULT_MAX_BATCH, type StageLimits } from './limits.ts';
import { StageServer } from './server.ts';
import { jsonLogger } from '../../metrics/log.ts';
import type { Granularity } from './units.ts';

/** parsed flags, as node:util parseArgs gives them (the CLI's Values have the same shape) */
export type StageArgs = Record<string, string | boolean | undefined>;

export const STAGE_USAGE =
  'stage --plan PLAN.json --index K --listen HOST:PORT [--peers HOST:PORT,...] [--threads N] [--ep cpu|cuda] [--device-id N]\n' +
  '       [--max-payload-mb N] [--max-batch N] [--max-held-mb N] [--idle-timeout-s N] [--stall-timeout-s N]\n' +
  '       [--granularity auto|block|segment] [--exit-with-stdin]   (group secret: UVIT_GROUP_SECRET_FILE or UVIT_GROUP_SECRET)';

/** the flags of a stage process; `uvit stage` shows them in its help */
export const STAGE_OPTIONS = {
  plan: { type: 'string', value: 'PLAN.json', required: true, help: 'plan file (uvit export / partition/planFile.ts): config, weights, segments' },
  index: { type: 'string', value: 'K', required: true, help: 'which stage of the plan this process runs' },
  listen: { type: 'string', value: 'HOST:PORT', default: '127.0.0.1:0', help: 'address to accept driver and peer connections on (port 0: any free port)' },
  peers: { type: 'string', value: 'A0,A1,..', help: 'addresses of all stages by index (default: sent by the driver in its hello)' },
  threads: { type: 'string', value: 'N', help: 'ONNX Runtime intra-op threads (default: ORT decides)' },
  ep: { type: 'string', value: 'EP', choices: ['cpu', 'cuda'], default: 'cpu', help: 'execution provider' },
  'device-id': { type: 'string', value: 'N', default: '0', help: 'CUDA device ordinal (with --ep cuda)' },
  'max-payload-mb': { type: 'string', value: 'N', default: '1024', help: 'largest tensor frame accepted, MiB' },
  'max-batch': { type: 'string', value: 'N', default: String(DEFAULT_MAX_BATCH), help: 'items per tensor; with the model config this sizes every tensor accepted, checked before its payload is read' },
  'max-held-mb': { type: 'string', value: 'N', help: 'tensors held for all jobs at once, MiB (default: 8 forwards per stage at --max-batch)' },
  'idle-timeout-s': { type: 'string', value: 'N', default: '600', help: 'close a connection that sends nothing and has nothing held this long' },
  'stall-timeout-s': { type: 'string', value: 'N', default: '60', help: 'drop a peer that stops mid-frame, or does not read what it is sent, this long' },
  granularity: {
    type: 'string', value: 'G', choices: ['auto', 'block', 'segment'], default: 'auto',
    help: 'ONNX sessions per segment: auto = cut where a skip crosses the network (sent as soon as made), block = one per block, segment = one per segment',
  },
  'exit-with-stdin': { type: 'boolean', help: 'exit when stdin closes (set by spawnStages so stages die with their parent)' },
} as const;

function intArg(v: string | boolean | undefined, name: string): number {
  const n = Number(v);
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(n)) {
    throw new Error(`uvit stage: --${name} must be a non-negative integer, got "${String(v)}"`);
  }
  return n;
}

function granularityArg(v: string | boolean | undefined): Granularity {
  if (v === undefined || v === 'auto' || v === 'block' || v === 'segment') return v ?? 'auto';
  throw new Error(`uvit stage: --granularity must be auto, block or segment, got "${String(v)}"`);
}

/** start a stage server from parsed flags; resolves with the server once it listens (ready line printed) */
export async function startStage(v: StageArgs): Promise<StageServer> {
  const t0 = performance.now();
  if (typeof v.plan !== 'string') throw new Error(`uvit stage: --plan is required\nusage: uvit ${STAGE_USAGE}`);
  const index = intArg(v.index, 'index');
  const secret = groupSecretFromEnv();
  const { host, port } = parseAddress(typeof v.listen === 'string' ? v.listen : '127.0.0.1:0');
  const ep = v.ep ?? 'cpu';
  if (ep !== 'cpu' && ep !== 'cuda') throw new Error(`uvit stage: --ep must be cpu or cuda, got "${String(ep)}"`);
  const loaded = readPlanFile(v.plan);
  const { plan } = loaded;
  if (index >= plan.numStages) throw new Error(`uvit stage: --index ${index} out of range (the plan has ${plan.numStages} stages)`);
  const peers = typeof v.peers === 'string' ? v.peers.split(',').map((s) => s.trim()) : undefined;
  if (peers) {
    if (peers.length !== plan.numStages) throw new Error(`uvit stage: --peers lists ${peers.length} addresses for ${plan.numStages} stages`);
    peers.forEach(parseAddress);
  }
  const executor = await createOrtExecutor(
    { config: loaded.config, plan, weightsPath: loaded.weightsPath, segmentPaths: loaded.segmentPaths },
    index,
    {
      threads: v.threads !== undefined ? intArg(v.threads, 'threads') : undefined,
      ep,
      deviceId: v['device-id'] !== undefined ? intArg(v['device-id'], 'device-id') : 0,
      granularity: granularityArg(v.granularity),
    },
  );
  const maxMb = v['max-payload-mb'] !== undefined ? intArg(v['max-payload-mb'], 'max-payload-mb') : 1024;
  const limits: Partial<StageLimits> = {};
  if (v['max-batch'] !== undefined) limits.maxBatch = intArg(v['max-batch'], 'max-batch');
  if (v['max-held-mb'] !== undefined) limits.maxHeldBytes = intArg(v['max-held-mb'], 'max-held-mb') * 2 ** 20;
  if (v['idle-timeout-s'] !== undefined) limits.idleMs = intArg(v['idle-timeout-s'], 'idle-timeout-s') * 1000;
  if (v['stall-timeout-s'] !== undefined) limits.stallMs = intArg(v['stall-timeout-s'], 'stall-timeout-s') * 1000;
  const server = new StageServer({
    plan, config: loaded.config, index, executor, secret, host, port, peers, frameLimits: { maxPayloadBytes: maxMb * 2 ** 20 }, limits,
    log: jsonLogger('uvit-stage', { stage: index }),
  });
  const address = await server.listen();
  server.loadMs = performance.now() - t0;
  process.stdout.write(`uvit-stage ready stage=${index} address=${address}\n`);
  return server;
}

/** serve until a signal (or stdin EOF with --exit-with-stdin); resolves after a clean shutdown */
export async function serveStage(v: StageArgs): Promise<void> {
  const server = await startStage(v);
  process.on('unhandledRejection', (e) => process.stderr.write(`[stage] unhandled rejection: ${(e as Error)?.stack ?? String(e)}\n`));
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      void server.close().finally(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    if (v['exit-with-stdin']) {
      process.stdin.on('end', stop);
      process.stdin.on('error', stop);
      process.stdin.resume();
    }
  });
}

function parse(argv: string[]): StageArgs {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.entries(STAGE_OPTIONS).map(([k, o]) => [k, { type: o.type }])),
    strict: true,
  });
  return values as StageArgs;
}

/** process entry of a spawned stage (main.ts, started by spawnStages) */
export async function stageMain(argv: string[]): Promise<void> {
  try {
    await serveStage(parse(argv));
    process.exit(0);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
}
