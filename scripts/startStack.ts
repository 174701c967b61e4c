// The local stack as a library: demo model files, the edge under wrangler's dev server (scripts/startEdge.ts), one backend
// group (S stage processes + the driver/worker that leases jobs from the edge), a local API key. Used by `npm start`,
// tests/e2e and tests/chaos, so what the tests exercise is exactly what a user starts.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Proc, assertPortFree, poll } from './startProcs.ts';
import type { ProcSpec } from './startProcs.ts';
import { prepareModel } from './startModel.ts';
import type { PreparedModel } from './startModel.ts';
import { derive } from '../gpu-backend/model/config.ts';
import type { ImageModel } from '../gpu-backend/serve/catalogue.ts';
import { STAGE_MALLOC_ENV } from '../gpu-backend/pipeline/client/spawn.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const EDGE = join(ROOT, 'scripts/startEdge.ts');
const UVIT = join(ROOT, 'bin/uvit.js');

export type StackOptions = {
  host: string;
  edgePort: number;
  /** stage k listens on stagePort + k */
  stagePort: number;
  metricsPort: number;
  /** origin of the absolute URLs the edge returns (PUBLIC_BASE_URL; never the Host header); default the bound one */
  publicUrl?: string;
  /**
   * The edge isolate's V8 inspector (DevTools: runs code, heap snapshots hold the secrets): off when undefined;
   * otherwise bound to 127.0.0.1 on this port (0: any free one).
   */
  inspectorPort?: number;
  /**
   * wrangler's debug log file in stateDir/logs (default on). Off where a test takes heap snapshots over the inspector:
   * wrangler logs DevTools traffic there, and a snapshot holds the isolate's secrets.
   */
  wranglerDebugLog?: boolean;
  stages: number;
  /** group config of the backend (model, sampler, text encoder, decoder) */
  config: string;
  /** serve a catalogue image model instead (models/catalogue.json name or entry file) from the files in weightsDir */
  imageModel?: string;
  weightsDir?: string;
  /** model files (weights, stage ONNX), shared cache; safe to reuse between runs */
  modelDir: string;
  /** edge state (Durable Object SQLite, R2), logs and local secrets */
  stateDir: string;
  /** extra wrangler vars, e.g. LEASE_TTL_MS for the chaos tests */
  edgeVars: Record<string, string>;
  /** more catalog entries for the edge besides the group's model (tests: a model served by a fake backend) */
  extraModels: Record<string, unknown>[];
  /** start the backend group (tests of the edge alone may not) */
  backend: boolean;
  echo?: NodeJS.WritableStream;
  log: (s: string) => void;
  readyTimeoutMs: number;
};

export function defaultOptions(env: NodeJS.ProcessEnv = process.env): StackOptions {
  const data = resolve(ROOT, env.UVIT_DATA_DIR ?? '.data');
  return {
    host: env.UVIT_HOST ?? '127.0.0.1',
    edgePort: Number(env.UVIT_EDGE_PORT ?? 8787),
    stagePort: Number(env.UVIT_STAGE_PORT ?? 7101),
    metricsPort: Number(env.UVIT_METRICS_PORT ?? 9464),
    publicUrl: env.UVIT_PUBLIC_URL || undefined,
    inspectorPort: env.UVIT_INSPECTOR_PORT === undefined || env.UVIT_INSPECTOR_PORT === '' ? undefined : Number(env.UVIT_INSPECTOR_PORT),
    stages: Number(env.UVIT_STAGES ?? 2),
    config: resolve(ROOT, env.UVIT_CONFIG ?? 'models/uvit-t2v-shapes/group.json'),
    imageModel: env.UVIT_MODEL || undefined,
    weightsDir: env.UVIT_WEIGHTS_DIR ? resolve(env.UVIT_WEIGHTS_DIR) : undefined,
    modelDir: join(data, 'model'),
    stateDir: join(data, 'local'),
    edgeVars: {},
    extraModels: [],
    backend: true,
    log: (s) => console.error(s),
    readyTimeoutMs: 180_000,
  };
}

export type Secrets = { ADMIN_TOKEN: string; BACKEND_SECRET: string; CDN_SECRET: string };

/** Local secrets, made once per state dir and kept (so keys and CDN URLs stay valid across restarts). */
export function localSecrets(stateDir: string): Secrets {
  const file = join(stateDir, 'secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Secrets;
  const s: Secrets = {
    ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    BACKEND_SECRET: randomBytes(32).toString('hex'),
    CDN_SECRET: randomBytes(32).toString('hex'),
  };
  writeFileSync(file, JSON.stringify(s, null, 2), { mode: 0o600 });
  return s;
}

/**
 * What the edge offers for the local group's model: exactly what the backend makes (its frame size and fps, the
 * sampler defaults of its config), so a request the backend cannot serve is refused at the edge with a 4xx.
 */
export function edgeCatalogEntry(m: PreparedModel): Record<string, unknown> {
  const c = m.cfg!;
  const side = c.uvit.img_size * c.decoder.spatial;
  return {
    id: m.modelId,
    created: 1_764_000_000,
    owned_by: 'uvit-local',
    sizes: [`${side}x${side}`],
    max_seconds: 16,
    default_seconds: c.video.seconds,
    fps: { default: c.video.fps, min: c.video.fps, max: c.video.fps },
    steps: { default: c.sampler.steps, min: 1, max: 200 },
    guidance: { default: c.sampler.guidance, min: 0, max: 30 },
    revision: modelRevision(m),
  };
}

/**
 * The served model's revision for the edge's result cache: a hash of the group config (sampler, decoder, files) and
 * of the bytes of the files the backend runs, so new weights or settings under the same id never answer a seeded
 * request with the previous model's clip.
 */
export function modelRevision(m: PreparedModel): string {
  const c = m.cfg!;
  const h = createHash('sha256').update(JSON.stringify(c));
  for (const f of [c.weights, c.text_encoder.onnx, c.decoder.onnx]) if (existsSync(f)) h.update(readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

/** What the edge offers for a catalogue image model: exactly its size, conditioning and sampler defaults. */
export function edgeImageEntry(m: ImageModel): Record<string, unknown> {
  const d = derive(m.uvit);
  // a checkpoint trained for guidance has a null class (the last): it is no class to ask for
  const guided = m.guidance > 0 && d.variant !== 'uncond';
  return {
    id: m.model_id,
    kind: 'image',
    created: 1_764_000_000,
    owned_by: 'uvit-local',
    sizes: [`${m.resolution}x${m.resolution}`],
    conditioning: d.variant === 'uncond' ? 'none' : d.variant,
    ...(d.variant === 'class' ? { num_classes: guided ? d.numClasses - 1 : d.numClasses } : {}),
    max_images: m.max_images,
    steps: { default: m.steps, min: 1, max: 1000 },
    guidance: guided ? { default: m.guidance, min: 0, max: 30 } : { default: 0, min: 0, max: 0 },
  };
}

export class Stack {
  readonly opts: StackOptions;
  readonly secrets: Secrets;
  readonly baseUrl: string;
  model: PreparedModel | undefined;
  edge: Proc | undefined;
  stages: Proc[] = [];
  driver: Proc | undefined;
  stopped = false;
  /** the backend group's stage secret: fresh per run, given to the stages and the driver in their environment */
  readonly groupSecret = randomBytes(32).toString('hex');

  constructor(opts: StackOptions) {
    this.opts = opts;
    // secrets, keys, prompts, webhook secrets and results live here: the user's alone (also when an older run made it 0755)
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    chmodSync(opts.stateDir, 0o700);
    this.secrets = localSecrets(opts.stateDir);
    this.baseUrl = `http://${opts.host}:${opts.edgePort}`;
  }

  get procs(): Proc[] {
    return [this.edge, ...this.stages, this.driver].filter((p): p is Proc => !!p);
  }

  private logFile(name: string): string {
    return join(this.opts.stateDir, 'logs', `${name}.log`);
  }

  /** Fails fast, before anything starts, on a taken port or a missing ffmpeg. */
  async preflight(): Promise<void> {
    const o = this.opts;
    const { ffmpegPath } = await import('../gpu-backend/driver/ffmpeg.ts');
    const { spawnSync } = await import('node:child_process');
    try {
      const bin = ffmpegPath();
      const r = spawnSync(bin, ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 10_000 });
      if (r.status !== 0) throw new Error(`${bin} -version failed (${r.error?.message ?? `exit ${r.status}`})`);
    } catch (e) {
      throw new Error(`ffmpeg is missing: ${(e as Error).message}\n  install it (apt-get install ffmpeg) or point UVIT_FFMPEG at a binary; \`npm install\` normally provides one (@ffmpeg-installer/ffmpeg)`);
    }
    await assertPortFree(o.host, o.edgePort, 'edge (wrangler dev)', '--edge-port / UVIT_EDGE_PORT');
    if (o.backend) {
      for (let k = 0; k < o.stages; k++) await assertPortFree(o.host, o.stagePort + k, `stage ${k}`, '--stage-port / UVIT_STAGE_PORT');
      await assertPortFree(o.host, o.metricsPort, 'driver metrics', '--metrics-port / UVIT_METRICS_PORT');
    }
  }

  async start(): Promise<this> {
    const o = this.opts;
    await this.preflight();
    if (o.backend) {
      const t = performance.now();
      if (o.imageModel && !o.weightsDir) throw new Error('an image model (--model) needs --weights-dir: the directory with its checkpoint files');
      const image = o.imageModel === undefined ? undefined : { model: o.imageModel, weightsDir: o.weightsDir! };
      this.model = await prepareModel({ config: o.config, dir: o.modelDir, stages: o.stages, log: o.log, image });
      o.log(`model ready in ${((performance.now() - t) / 1000).toFixed(1)} s: ${this.model.planPath}${this.model.cached ? ' (cached)' : ''}`);
    }
    await this.startEdge();
    if (o.backend) await this.startBackend();
    return this;
  }

  async startEdge(): Promise<void> {
    const o = this.opts;
    // Secrets go through an env file (mode 600), not argv, so they never show in `ps` or the logs.
    const envFile = join(o.stateDir, 'edge.env');
    // local development: webhooks may go to plain-http receivers (public hosts only; edge/auth/egress.ts)
    const vars: Record<string, string> = { ...this.secrets, PUBLIC_BASE_URL: o.publicUrl ?? this.baseUrl, WEBHOOK_ALLOW_HTTP: 'true' };
    const models = [...(this.model?.cfg ? [edgeCatalogEntry(this.model)] : []), ...o.extraModels];
    if (models.length) vars.MODELS_JSON = JSON.stringify(models);
    if (this.model?.image) vars.IMAGE_MODELS_JSON = JSON.stringify([edgeImageEntry(this.model.image)]);
    writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}='${v}'\n`).join(''), { mode: 0o600 });
    const args = [EDGE, '--config', join(ROOT, 'wrangler.toml'), '--ip', o.host, '--port', String(o.edgePort),
      '--persist-to', join(o.stateDir, 'wrangler'), '--env-file', envFile,
      ...(o.inspectorPort === undefined ? [] : ['--inspector-port', String(o.inspectorPort)]),
      ...Object.entries(o.edgeVars).flatMap(([k, v]) => ['--var', `${k}:${v}`])];
    const t = performance.now();
    this.edge = this.launch({
      name: 'edge', command: process.execPath, args, cwd: ROOT, logFile: this.logFile('edge'), echo: o.echo,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_LOG_PATH: join(o.stateDir, 'logs'), NO_UPDATE_NOTIFIER: '1', CI: '1',
        ...(o.wranglerDebugLog === false ? { WRANGLER_WRITE_LOGS: 'false' } : {}) },
    });
    await poll('the edge /healthz', async () => {
      if (!this.edge!.alive) throw new Error(`wrangler dev exited:\n${this.edge!.tail()}`);
      const r = await fetch(`${this.baseUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
      return r.ok ? true : undefined;
    }, o.readyTimeoutMs, 250, () => this.edge!.tail());
    o.log(`edge ready in ${((performance.now() - t) / 1000).toFixed(1)} s at ${this.baseUrl}`);
  }

  async startBackend(): Promise<void> {
    for (let k = 0; k < this.opts.stages; k++) this.stages[k] = this.startStage(k);
    await Promise.all(this.stages.map((s) => this.waitStage(s)));
    this.driver = this.startDriver();
    await this.waitDriver();
  }

  stageAddress(k: number): string {
    return `${this.opts.host}:${this.opts.stagePort + k}`;
  }

  startStage(k: number): Proc {
    const o = this.opts;
    const st = this.model!.stageSettings[k];
    return this.launch({
      name: `stage${k}`, command: process.execPath, cwd: ROOT, logFile: this.logFile(`stage${k}`), echo: o.echo,
      env: { ...STAGE_MALLOC_ENV, ...process.env, UVIT_GROUP_SECRET: this.groupSecret },
      args: [UVIT, 'stage', '--plan', this.model!.planPath, '--index', String(k), '--listen', this.stageAddress(k),
        '--peers', Array.from({ length: o.stages }, (_, j) => this.stageAddress(j)).join(','),
        '--ep', st.ep, '--device-id', String(st.deviceId), '--threads', String(st.threads)],
    });
  }

  /** A stage is up once it prints its ready line (it listens by then). */
  async waitStage(p: Proc): Promise<void> {
    await p.waitForLine(/^uvit-stage ready stage=\d+/, this.opts.readyTimeoutMs);
  }

  startDriver(): Proc {
    const o = this.opts;
    return this.launch({
      name: 'driver', command: process.execPath, cwd: ROOT, logFile: this.logFile('driver'), echo: o.echo,
      env: { ...process.env, UVIT_BACKEND_SECRET: this.secrets.BACKEND_SECRET, UVIT_GROUP_SECRET: this.groupSecret },
      args: [UVIT, 'serve', ...(this.model!.image ? ['--image-model', o.imageModel!, '--weights-dir', o.weightsDir!] : ['--config', o.config]),
        '--plan', this.model!.planPath, '--edge', this.baseUrl,
        '--stages', Array.from({ length: o.stages }, (_, k) => this.stageAddress(k)).join(','),
        '--group', `local-${o.edgePort}`, '--metrics', `${o.host}:${o.metricsPort}`, '--work-dir', join(o.stateDir, 'work')],
    });
  }

  /** Healthy = the driver answers /metrics and the edge counts a backend group for the model. */
  async waitDriver(): Promise<void> {
    const d = this.driver!;
    await poll('the driver to register with the edge', async () => {
      if (!d.alive) throw new Error(`driver exited:\n${d.tail()}`);
      const m = await fetch(`http://${this.opts.host}:${this.opts.metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) });
      if (!m.ok) return undefined;
      const r = await fetch(`${this.baseUrl}/v1/models`, { headers: { authorization: `Bearer ${await this.apiKey()}` }, signal: AbortSignal.timeout(2000) });
      const body = (await r.json()) as { data?: { id: string; backend_groups: number }[] };
      return body.data?.some((x) => x.id === this.model!.modelId && x.backend_groups > 0) ? true : undefined;
    }, this.opts.readyTimeoutMs, 500, () => d.tail());
  }

  private cachedKey: string | undefined;

  /** The stack's own API key (created on first use; `createKey` makes more, e.g. per test client). */
  async apiKey(): Promise<string> {
    this.cachedKey ??= (await this.savedKey()) ?? (await this.createKey('local')).key;
    return this.cachedKey;
  }

  /** The key an earlier `npm start` on this state dir printed, if the edge still accepts it (so exported env stays valid). */
  private async savedKey(): Promise<string | undefined> {
    const file = join(this.opts.stateDir, 'client.env');
    if (!existsSync(file)) return undefined;
    const key = /^UVIT_API_KEY=(\S+)$/m.exec(readFileSync(file, 'utf8'))?.[1];
    if (!key) return undefined;
    const r = await fetch(`${this.baseUrl}/v1/models`, { headers: { authorization: `Bearer ${key}` } }).catch(() => undefined);
    await r?.body?.cancel();
    return r?.status === 200 ? key : undefined;
  }

  async createKey(owner: string, extra: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
    const r = await fetch(`${this.baseUrl}/admin/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.secrets.ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ owner, ...extra }),
    });
    if (r.status !== 201) throw new Error(`creating an API key failed: ${r.status} ${await r.text()}`);
    return (await r.json()) as { id: string; key: string };
  }

  async revokeKey(id: string): Promise<void> {
    const r = await fetch(`${this.baseUrl}/admin/v1/keys/${encodeURIComponent(id)}`, { method: 'DELETE', headers: { authorization: `Bearer ${this.secrets.ADMIN_TOKEN}` } });
    if (!r.ok) throw new Error(`revoking key ${id} failed: ${r.status} ${await r.text()}`);
  }

  /** Restarts (or starts again after a kill) one part, keeping ports and state: what a supervisor would do. */
  async restartStage(k: number): Promise<void> {
    await this.stages[k]?.stop(3000);
    this.stages[k] = this.startStage(k);
    await this.waitStage(this.stages[k]);
  }

  async restartDriver(): Promise<void> {
    await this.driver?.stop(8000);
    this.driver = this.startDriver();
    await this.waitDriver();
  }

  async restartEdge(): Promise<void> {
    await this.edge?.stop(5000);
    await this.startEdge();
  }

  /** Stops everything (driver first so it can fail back its lease, then stages, then the edge). Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping ??= (async () => {
      await this.driver?.stop(8000);
      await Promise.all(this.stages.map((s) => s.stop(3000)));
      await this.edge?.stop(5000);
      // anything launched while the above ran (a stop during start) goes too
      for (const p of this.launched) if (p.alive) await p.stop(3000);
    })();
    await this.stopping;
  }

  private stopping: Promise<void> | undefined;
  private readonly launched: Proc[] = [];

  /** Every child goes through here, so a stop during start leaves nothing behind. */
  private launch(spec: ProcSpec): Proc {
    if (this.stopped) throw new Error(`the stack is stopping: not starting ${spec.name}`);
    const p = new Proc(spec);
    this.launched.push(p);
    return p;
  }
}

export async function startStack(opts: Partial<StackOptions> = {}): Promise<Stack> {
  const stack = new Stack({ ...defaultOptions(), ...opts });
  try {
    return await stack.start();
  } catch (e) {
    await stack.stop();
    throw e;
  }
}
