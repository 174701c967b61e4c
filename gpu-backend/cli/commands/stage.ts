// `uvit stage --plan PLAN.json --index k --listen HOST:PORT [--peers A0,A1,..] [--threads N] [--ep cpu|cuda]
//  [--device-id N] [--max-payload-mb N]`: one stage process of a backend group. Loads only stage k's shard, prints
// "uvit-stage ready stage=k address=HOST:PORT" on stdout once it accepts connections, runs until SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { readPlanFile } from '../../partition/planFile.ts';
import { createOrtExecutor } from '../../runtime/stageExecutor.ts';
import { StageServer } from '../../runtime/stageServer.ts';
import { parseAddress } from '../../runtime/transport.ts';

export const STAGE_USAGE =
  'usage: uvit stage --plan PLAN.json --index K --listen HOST:PORT [--peers HOST:PORT,...] [--threads N] [--ep cpu|cuda] [--device-id N] [--max-payload-mb N]';

function intArg(v: string | undefined, name: string, dflt?: number): number {
  if (v === undefined) {
    if (dflt === undefined) throw new Error(`uvit stage: --${name} is required\n${STAGE_USAGE}`);
    return dflt;
  }
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`uvit stage: --${name} must be a non-negative integer, got "${v}"`);
  return n;
}

/** start a stage server from CLI arguments; resolves with the server once it listens */
export async function runStage(argv: string[]): Promise<StageServer> {
  const { values } = parseArgs({
    args: argv,
    options: {
      plan: { type: 'string' },
      index: { type: 'string' },
      listen: { type: 'string' },
      peers: { type: 'string' },
      threads: { type: 'string' },
      ep: { type: 'string' },
      'device-id': { type: 'string' },
      'max-payload-mb': { type: 'string' },
    },
    strict: true,
  });
  if (!values.plan) throw new Error(`uvit stage: --plan is required\n${STAGE_USAGE}`);
  const index = intArg(values.index, 'index');
  const { host, port } = parseAddress(values.listen ?? '127.0.0.1:0');
  const ep = values.ep ?? 'cpu';
  if (ep !== 'cpu' && ep !== 'cuda') throw new Error(`uvit stage: --ep must be cpu or cuda, got "${ep}"`);
  const loaded = readPlanFile(values.plan);
  const { plan } = loaded;
  if (index >= plan.numStages) throw new Error(`uvit stage: --index ${index} out of range (plan has ${plan.numStages} stages)`);
  const peers = values.peers?.split(',').map((s) => s.trim());
  if (peers) {
    if (peers.length !== plan.numStages) throw new Error(`uvit stage: --peers lists ${peers.length} addresses for ${plan.numStages} stages`);
    peers.forEach(parseAddress);
  }
  const executor = await createOrtExecutor(
    { config: loaded.config, plan, weightsPath: loaded.weightsPath, segmentPaths: loaded.segmentPaths },
    index,
    { threads: values.threads ? intArg(values.threads, 'threads') : undefined, ep, deviceId: intArg(values['device-id'], 'device-id', 0) },
  );
  const maxMb = values['max-payload-mb'] ? intArg(values['max-payload-mb'], 'max-payload-mb') : 1024;
  const server = new StageServer({ plan, index, executor, host, port, peers, limits: { maxPayloadBytes: maxMb * 2 ** 20 } });
  const address = await server.listen();
  process.stdout.write(`uvit-stage ready stage=${index} address=${address}\n`);
  return server;
}

/** process entry: run until a signal (or, with --exit-with-stdin, until the parent closes our stdin) */
export async function stageMain(argv: string[]): Promise<void> {
  let server: StageServer;
  const watchStdin = argv.includes('--exit-with-stdin');
  try {
    server = await runStage(argv.filter((a) => a !== '--exit-with-stdin'));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  process.on('unhandledRejection', (e) => process.stderr.write(`[stage] unhandled rejection: ${(e as Error)?.stack ?? e}\n`));
  const stop = () => void server.close().finally(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  if (watchStdin) {
    // spawned by spawnStages: the parent holds our stdin open and dies -> EOF -> we go too (no orphan stages)
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }
}
