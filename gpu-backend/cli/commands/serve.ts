// `uvit serve`: one backend group's driver process. Registers with the edge by pulling work through the lease API,
// generates clips on the stage pipeline (or in process), serves Prometheus metrics, and stops cleanly on SIGINT/SIGTERM.
//
//   uvit serve --edge URL [--config gpu-backend/demo/demo.json] [--secret-env UVIT_BACKEND_SECRET]
//              [--stages 0 | N | HOST:PORT,HOST:PORT,...] [--plan PLAN.json] [--group ID] [--model ID] [--capacity N]
//              [--metrics HOST:PORT] [--work-dir DIR] [--f16]
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command, CommandContext, Values } from '../command.ts';
import { UsageError, intValue, parseCommandArgs, str } from '../command.ts';
import { DEMO_CONFIG, demoFileMakers } from '../../demo/demo.ts';
import { loadGroupConfig } from '../../serve/groupConfig.ts';
import { prepareModelFiles } from '../../serve/modelFiles.ts';
import { DriverMetrics, serveMetrics } from '../../metrics/driverMetrics.ts';
import { jsonLogger, withLogIds } from '../../metrics/log.ts';
import { assembleDriver } from '../../serve/assemble.ts';
import { resolveImageModel } from '../../serve/catalogue.ts';
import { assembleImages } from '../../serve/images.ts';
import { Worker, defaultCapacity } from '../../serve/worker.ts';
import { inProcessBackend, pipelineBackend, type Backend } from '../../serve/backend.ts';
import { exportStages } from '../../serve/stages.ts';
import { groupSecretFromEnv } from '../../pipeline/wire/auth.ts';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run a backend group driver: pull jobs from the edge, generate on the stage pipeline, upload MP4s',
  usage: 'serve --edge URL [--config GROUP.json] [--stages 0|N|HOST:PORT,...] [--plan PLAN.json] [--metrics HOST:PORT] ...',
  options: {
    edge: { type: 'string', value: 'URL', required: true, help: 'edge base URL (lease API under /internal/v1)' },
    config: { type: 'string', value: 'GROUP.json', default: 'gpu-backend/demo/demo.json', help: 'backend group config' },
    'secret-env': { type: 'string', value: 'NAME', default: 'UVIT_BACKEND_SECRET', help: 'environment variable holding the backend HMAC secret' },
    stages: {
      type: 'string',
      value: '0|N|ADDRS',
      default: '0',
      help: '0 = in-process engine; N = spawn N local stage processes; HOST:PORT,... = connect to running stages (needs --plan)',
    },
    plan: { type: 'string', value: 'PLAN.json', help: 'plan.json from `uvit export` (default with N: exported under --work-dir)' },
    group: { type: 'string', value: 'ID', help: 'backend group id (default HOSTNAME-PID)' },
    model: { type: 'string', value: 'ID', help: 'model id to lease jobs for (default: the config model_id)' },
    capacity: {
      type: 'string',
      value: 'N',
      help: 'jobs generated at once (their micro-batches share the pipeline; default 2 per stage, bounded by free memory)',
    },
    metrics: { type: 'string', value: 'HOST:PORT', help: 'serve Prometheus text at http://HOST:PORT/metrics' },
    'work-dir': { type: 'string', value: 'DIR', help: 'scratch files (MP4s before upload, exported stages)' },
    f16: { type: 'boolean', help: 'carry activations and skips between stages as float16' },
    'wait-ms': { type: 'string', value: 'MS', default: '20000', help: 'long-poll bound per lease request' },
    'image-model': { type: 'string', value: 'NAME|ENTRY.json', help: 'serve a catalogue image model (models/catalogue.json) instead of --config; needs --weights-dir' },
    'weights-dir': { type: 'string', value: 'DIR', help: "the image model's checkpoint files, named as its catalogue entry says" },
  },
  notes: `
The secret is read from the environment (never a flag, so it does not show in ps). With --stages ADDRS the stages'
group secret comes from UVIT_GROUP_SECRET_FILE (a 0600 file) or UVIT_GROUP_SECRET; with --stages N the spawned
group gets a fresh one. A job that makes no progress for longer than its lease is given back (retryable) instead of
holding the group. Jobs whose size or length the
model cannot make fail as not retryable; stage or upload failures are reported retryable, and a broken stage
pipeline is reconnected (spawned stages are respawned) before the next job.`,
  run: (v, ctx) => serve(v, ctx),
};

function parseHostPort(flag: string, s: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(s);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`uvit serve: --${flag} must be HOST:PORT, got '${s}'`);
  return { host: m[1] || '127.0.0.1', port: Number(m[2]) };
}

export interface ServeHandle {
  worker: Worker;
  backend: Backend;
  metricsPort?: number;
  stop(): Promise<void>;
}

/** Starts everything and returns a handle (tests); `serve` waits for SIGINT/SIGTERM and then stops. */
export async function startServe(v: Values, ctx: CommandContext): Promise<ServeHandle> {
  const cfgPath = resolve(str(v.config) ?? DEMO_CONFIG);
  const secretEnv = str(v['secret-env']) ?? 'UVIT_BACKEND_SECRET';
  const secret = process.env[secretEnv];
  if (!secret) throw new UsageError(`uvit serve: the backend secret is not set: export ${secretEnv}=<the edge's BACKEND_SECRET>`);
  const edge = str(v.edge)!;
  try {
    new URL(edge);
  } catch {
    throw new UsageError(`uvit serve: --edge must be a URL, got '${edge}'`);
  }
  const capacityArg = intValue('serve', 'capacity', v.capacity, 1);
  const waitMs = intValue('serve', 'wait-ms', v['wait-ms'], 0)!;
  const stagesArg = str(v.stages) ?? '0';
  const workDir = resolve(str(v['work-dir']) ?? join(tmpdir(), `uvit-serve-${process.pid}`));
  const metricsAt = str(v.metrics) ? parseHostPort('metrics', str(v.metrics)!) : undefined;

  const log = (l: string) => ctx.log(`serve: ${l}`);
  const imageModel = str(v['image-model']);
  if ((imageModel === undefined) !== (str(v['weights-dir']) === undefined))
    throw new UsageError('uvit serve: --image-model and --weights-dir go together');
  const image = imageModel === undefined ? undefined : resolveImageModel(imageModel, str(v['weights-dir'])!, { log });
  const video = image ? undefined : loadGroupConfig(cfgPath);
  if (video) for (const f of prepareModelFiles(video, ctx.log, demoFileMakers(video))) if (f.made) ctx.log(`serve: made ${f.path} in ${f.ms.toFixed(0)} ms`);
  const cfg = image ?? video!;

  let backend: Backend;
  if (/^\d+$/.test(stagesArg)) {
    const n = Number(stagesArg);
    if (n === 0) backend = await inProcessBackend(cfg);
    else {
      const planPath = str(v.plan) ? resolve(str(v.plan)!) : exportStages(cfg, n, join(workDir, 'stages'), log).planPath;
      backend = await pipelineBackend({ planPath, cfg, f16: v.f16 === true, log });
      if (backend.numStages !== n) throw new UsageError(`uvit serve: --plan has ${backend.numStages} stages, --stages says ${n}`);
    }
  } else {
    const addresses = stagesArg.split(',').map((s) => s.trim()).filter(Boolean);
    addresses.forEach((a) => parseHostPort('stages', a));
    if (!str(v.plan)) throw new UsageError('uvit serve: --stages with addresses needs --plan (the plan.json the stages run)');
    backend = await pipelineBackend({ planPath: resolve(str(v.plan)!), addresses, secret: groupSecretFromEnv(), cfg, f16: v.f16 === true, log });
  }

  const metrics = new DriverMetrics();
  const src = backend.metricsSource();
  if (src) metrics.attachPipeline(src);
  const imageParts = image && (await assembleImages(image, backend.forward));
  const videoParts = video && (await assembleDriver(video, backend.forward, metrics));
  const driver = videoParts?.driver;
  const images = imageParts?.jobs;
  const release = () => (imageParts ?? videoParts)!.release();
  const capacity = capacityArg ?? (driver ? defaultCapacity(backend.numStages, driver.clipBytes) : 1);
  const model = str(v.model) ?? cfg.model_id;
  const group = str(v.group) ?? `${hostname()}-${process.pid}`;
  const worker = new Worker({
    edge, secret, group, model, capacity, stages: backend.numStages, driver, metrics, workDir, waitMs,
    solver: image?.solver ?? video!.sampler.solver,
    cfgMode: backend.numStages > 1 ? 'micro' : (image?.cfg_mode ?? video!.sampler.cfg_mode),
    images,
    beforeJob: () => backend.ensureHealthy(),
    abandonJob: (jobId, reason) => backend.abandon(jobId, reason),
    log,
  });
  const m = metricsAt ? await serveMetrics(() => metrics.render(), metricsAt) : undefined;
  withLogIds({ group }, () => worker.start()); // the lease loops log the group id on every line
  log(`group ${group} serving model ${model} (${image ? `${image.model_id}, ${str(v['weights-dir'])}` : video!.path}) on ${backend.describe()}, capacity ${capacity}, edge ${edge}` +
    (m ? `, metrics http://${metricsAt!.host}:${m.port}/metrics` : ''));
  let stopped: Promise<void> | undefined;
  return {
    worker,
    backend,
    metricsPort: m?.port,
    stop: () =>
      (stopped ??= (async () => {
        await worker.stop();
        await m?.close();
        await backend.close();
        await release();
      })()),
  };
}

async function serve(v: Values, cliCtx: CommandContext): Promise<void> {
  // the long-running driver logs JSON lines (collected by the host's log shipper); startServe's callers choose their own
  const ctx: CommandContext = { ...cliCtx, log: jsonLogger('uvit-serve') };
  const h = await startServe(v, ctx);
  await new Promise<void>((resolveStop) => {
    const onSignal = (sig: string) => {
      ctx.log(`serve: ${sig}: stopping (jobs in progress are handed back to the edge as retryable failures)`);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      void h.stop().then(resolveStop);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** `runServe(argv)`: the same as `uvit serve ARGV` for callers outside the CLI registry. */
export async function runServe(argv: string[]): Promise<void> {
  const ctx: CommandContext = { log: (l) => process.stderr.write(`${l}\n`), out: (l) => process.stdout.write(`${l}\n`) };
  const v = parseCommandArgs(serveCommand, argv);
  if (v === 'help') return;
  await serve(v, ctx);
}
