// The chaos tests' view of the REAL local stack: the same Stack that `npm start` and tests/e2e use (wrangler dev +
// stage processes + driver), on free loopback ports, with a tiny model so jobs take about a second, a fresh edge state
// dir per run, short lease TTLs through wrangler vars, and helpers: a public-API request with a hard timeout (a hung
// request fails the test), a fake backend group that speaks the signed lease API for a model no real group serves,
// log and RSS inspection.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LEASE_PATHS, LeaseGrant, SIG_HEADERS, signRequest, signedJsonFetch } from '../../shared/lease.ts';
import { Stack, defaultOptions, edgeCatalogEntry } from '../../scripts/startStack.ts';
import type { StackOptions } from '../../scripts/startStack.ts';
import { freePort, freePortRange } from '../../scripts/startProcs.ts';
import { commOf, groupPids, rssOf } from '../../scripts/procMem.ts';
import { connectIsolate, type IsolateInspector } from '../../scripts/workerdInspector.ts';
import { TINY_MODEL, tinyGroup } from '../integration/serve-fixtures.ts';

/** A model id in the edge catalog that no real backend serves: the tests lease its jobs themselves. */
export const FAKE_MODEL = 'chaos-fake';
/** A catalog model that never gets jobs (lease requests for it always wait and answer 204). */
export const IDLE_MODEL = 'chaos-idle';
/** The fuzz suite's model: its (valid) fuzz jobs stay queued and never get in the way of the fault tests. */
export const FUZZ_MODEL = 'chaos-fuzz';

/** Tiny text-to-video group (like tests/integration's), in a fixed cache dir so weights and stage ONNX are made once. */
export function tinyGroupConfig(): string {
  const dir = join(tmpdir(), 'uvit-chaos-model');
  mkdirSync(join(dir, 'data'), { recursive: true });
  const model = JSON.stringify(TINY_MODEL);
  const group = JSON.stringify(tinyGroup({
    model_id: 'uvit-chaos-tiny',
    video: { fps: 4, seconds: 1 },
    sampler: { solver: 'dpmpp-fast3', steps: 2, guidance: 1, cfg_mode: 'batch' },
    stages: [{ ep: 'cpu', threads: 1 }, { ep: 'cpu', threads: 1 }],
  }));
  // rewrite only on change, so the cached weights / export (keyed on mtime) stay valid
  const put = (f: string, s: string) => { if (!existsSync(f) || readFileSync(f, 'utf8') !== s) writeFileSync(f, s); };
  put(join(dir, 'model.json'), model);
  put(join(dir, 'group.json'), group);
  return join(dir, 'group.json');
}

export function fakeCatalogEntry(id = FAKE_MODEL): Record<string, unknown> {
  return {
    id, created: 1_764_000_000, owned_by: 'chaos', sizes: ['32x32'], max_seconds: 16, default_seconds: 1,
    fps: { default: 4, min: 1, max: 30 }, steps: { default: 2, min: 1, max: 200 }, guidance: { default: 1, min: 0, max: 30 },
  };
}

/** `inspector`: open the edge isolate's DevTools inspector on a free loopback port (heap tests only; off otherwise). */
export type ChaosStackOptions = { backend: boolean; edgeVars?: Record<string, string>; wranglerDebugLog?: boolean; inspector?: boolean };

/** Starts the stack (edge only, or edge + 2 stages + driver) on free ports; `stop()` removes its state dir. */
export async function startChaosStack(o: ChaosStackOptions): Promise<{ stack: Stack; dir: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'uvit-chaos-'));
  const opts: StackOptions = {
    ...defaultOptions(),
    config: tinyGroupConfig(),
    modelDir: join(tmpdir(), 'uvit-chaos-model', 'export'),
    stateDir: join(dir, 'state'),
    edgePort: await freePort(),
    stagePort: await freePortRange(2),
    metricsPort: await freePort(),
    inspectorPort: o.inspector ? await freePort() : undefined,
    wranglerDebugLog: o.wranglerDebugLog,
    stages: 2,
    backend: o.backend,
    // several job-store shards, so every chaos run also checks the guarantees across shards (lease sweep, routing)
    edgeVars: { LEASE_TTL_MS: '3000', MAX_ATTEMPTS: '3', JOB_SHARDS: '4', ...o.edgeVars },
    extraModels: [fakeCatalogEntry(), fakeCatalogEntry(IDLE_MODEL), fakeCatalogEntry(FUZZ_MODEL)],
    log: () => {},
    readyTimeoutMs: 120_000,
  };
  const stack = new Stack(opts);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await stack.start();
  } catch (e) {
    await stop();
    throw e;
  }
  return { stack, dir, stop };
}

// ------------------------------------------------------------------ HTTP with a hard timeout

export type Reply = { status: number; headers: Headers; text: string; json: unknown; ms: number };

export class HungRequest extends Error {}

/** One request; throws HungRequest when no complete answer (headers and body) comes within timeoutMs. */
export async function call(base: string, method: string, path: string, o: { key?: string; body?: RequestInit['body']; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<Reply> {
  const t0 = performance.now();
  const headers: Record<string, string> = { ...(o.key !== undefined ? { authorization: `Bearer ${o.key}` } : {}), ...o.headers };
  const timeoutMs = o.timeoutMs ?? 15_000;
  try {
    const r = await fetch(base + path, { method, headers, body: o.body ?? undefined, signal: AbortSignal.timeout(timeoutMs) });
    const text = await r.text();
    let json: unknown;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: r.status, headers: r.headers, text, json, ms: performance.now() - t0 };
  } catch (e) {
    if ((e as Error).name === 'TimeoutError' || (e as Error).name === 'AbortError') throw new HungRequest(`${method} ${path}: no answer within ${timeoutMs} ms`);
    throw e;
  }
}

export function jsonBody(v: unknown): { body: string; headers: Record<string, string> } {
  return { body: JSON.stringify(v), headers: { 'content-type': 'application/json' } };
}

export type VideoObj = { id: string; status: string; attempts: number; error: { code: string; message: string } | null; content_sha256: string | null; cdn_url: string | null; bytes: number | null; progress: number };

export async function getVideo(base: string, key: string, id: string): Promise<VideoObj> {
  const r = await call(base, 'GET', `/v1/videos/${id}`, { key });
  if (r.status !== 200) throw new Error(`GET /v1/videos/${id}: ${r.status} ${r.text.slice(0, 300)}`);
  return r.json as VideoObj;
}

export async function waitVideo(base: string, key: string, id: string, pred: (v: VideoObj) => boolean, timeoutMs: number, what = 'state'): Promise<VideoObj> {
  const deadline = Date.now() + timeoutMs;
  let last: VideoObj | undefined;
  let lastErr = '';
  for (;;) {
    try {
      last = await getVideo(base, key, id);
      if (pred(last)) return last;
    } catch (e) { lastErr = (e as Error).message; }
    if (Date.now() > deadline) throw new Error(`video ${id}: no ${what} within ${timeoutMs} ms; last ${JSON.stringify(last)} ${lastErr}`);
    await sleep(200);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ a fake backend group (the test is the backend)

export class FakeBackend {
  readonly base: string;
  readonly secret: string;
  readonly model: string;
  readonly group: string;

  constructor(base: string, secret: string, model = FAKE_MODEL, group = `chaos-fake-${randomBytes(4).toString('hex')}`) {
    this.base = base;
    this.secret = secret;
    this.model = model;
    this.group = group;
  }

  async lease(waitMs = 5000): Promise<LeaseGrant | undefined> {
    const r = await signedJsonFetch(this.base, this.secret, 'POST', LEASE_PATHS.lease, { group: this.group, model: this.model, capacity: 1, wait_ms: waitMs });
    if (r.status === 204) return undefined;
    const text = await r.text();
    if (r.status !== 200) throw new Error(`lease: ${r.status} ${text}`);
    return LeaseGrant.parse(JSON.parse(text));
  }

  async heartbeat(leaseId: string, progress: number): Promise<Reply> {
    return reply(await signedJsonFetch(this.base, this.secret, 'POST', LEASE_PATHS.heartbeat(leaseId), { progress }));
  }

  async fail(leaseId: string, reason: string, retryable: boolean, code?: string): Promise<Reply> {
    return reply(await signedJsonFetch(this.base, this.secret, 'POST', LEASE_PATHS.fail(leaseId), { reason, retryable, ...(code ? { code } : {}) }));
  }

  /** A proper upload: Content-Length and X-Content-SHA256 of `bytes`. */
  async upload(leaseId: string, bytes: Uint8Array, declaredSha = sha256(bytes)): Promise<Reply> {
    const path = LEASE_PATHS.result(leaseId);
    const sig = await signRequest({ secret: this.secret, method: 'PUT', path, bodySha256: declaredSha });
    const r = await fetch(this.base + path, {
      method: 'PUT',
      headers: { ...sig, 'content-type': 'video/mp4', 'content-length': String(bytes.length), [SIG_HEADERS.contentSha256]: declaredSha },
      body: bytes,
      signal: AbortSignal.timeout(15_000),
    });
    return reply(r);
  }

  /**
   * A torn upload over a raw socket: declares Content-Length and the hash of `full` but sends only `sendBytes` of
   * it, then half-closes (as a backend whose connection drops mid-upload). Resolves with the status line, or
   * 'closed' when the edge closed without answering.
   */
  async tornUpload(leaseId: string, full: Uint8Array, sendBytes: number): Promise<string> {
    const path = LEASE_PATHS.result(leaseId);
    const sha = sha256(full);
    const sig = await signRequest({ secret: this.secret, method: 'PUT', path, bodySha256: sha });
    const u = new URL(this.base);
    return new Promise((resolve, reject) => {
      const s = net.connect(Number(u.port), u.hostname);
      let got = '';
      const t = setTimeout(() => { s.destroy(); reject(new HungRequest(`torn upload: no answer within 15 s`)); }, 15_000);
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('error', () => {});
      s.on('close', () => { clearTimeout(t); resolve(got.split('\r\n')[0] || 'closed'); });
      s.on('connect', () => {
        const head = [`PUT ${path} HTTP/1.1`, `Host: ${u.host}`, 'Content-Type: video/mp4', `Content-Length: ${full.length}`,
          `${SIG_HEADERS.contentSha256}: ${sha}`, ...Object.entries(sig).map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''].join('\r\n');
        s.write(head);
        s.write(full.subarray(0, sendBytes));
        s.end(); // half-close: the body ends short of Content-Length
      });
    });
  }
}

async function reply(r: Response): Promise<Reply> {
  const text = await r.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json, ms: 0 };
}

export function sha256(b: Uint8Array | string): string {
  return createHash('sha256').update(b).digest('hex');
}

// ------------------------------------------------------------------ edge state (ground truth for the queue bound)

/**
 * Reads the JobStore SQLite files under the edge state dir (read-only, beside workerd; SQLite's locking makes that
 * safe): the real number of queued jobs, not a client-side estimate. With `JOB_SHARDS` > 1 each shard is its own
 * Durable Object with its own file; a shard's file appears when it is first used, so every sample looks for new ones.
 * `sample()` gives queued per file (a shard each, in the order first seen) and their sum; the files are read one after
 * another, so the sum is of near-simultaneous reads, not one snapshot.
 */
export async function queueProbe(stack: Stack): Promise<{ sample: () => { perShard: number[]; total: number }; files: () => number; close: () => void }> {
  const dir = join(stack.opts.stateDir, 'wrangler', 'v3', 'do', 'uvit-edge-JobStore');
  const { DatabaseSync } = await import('node:sqlite');
  type Db = InstanceType<typeof DatabaseSync>;
  const open = new Map<string, { db: Db; q: ReturnType<Db['prepare']> }>();
  const scan = () => {
    for (const f of readdirSync(dir)) {
      if (!f.endsWith('.sqlite') || f === 'metadata.sqlite' || open.has(f)) continue;
      const db = new DatabaseSync(join(dir, f), { readOnly: true });
      try {
        open.set(f, { db, q: db.prepare("SELECT count(*) AS n FROM jobs WHERE status = 'queued'") });
      } catch {
        db.close(); // a shard's file made but not migrated yet: next scan
      }
    }
  };
  scan();
  if (open.size === 0) throw new Error(`no JobStore SQLite file in ${dir}`);
  return {
    sample: () => {
      scan();
      const perShard = [...open.values()].map(({ q }) => Number((q.get() as { n: number }).n));
      return { perShard, total: perShard.reduce((a, b) => a + b, 0) };
    },
    files: () => open.size,
    close: () => { for (const { db } of open.values()) db.close(); },
  };
}

// ------------------------------------------------------------------ logs and memory

/** Every log file the stack wrote (process output of the edge, stages, driver, and wrangler's own logs). */
export function allLogs(stack: Stack): { file: string; text: string }[] {
  const dir = join(stack.opts.stateDir, 'logs');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((f) => ({ file: f, text: readFileSync(join(dir, f), 'latin1') }));
}

/** RSS per process of the stack (name/pid → bytes), children of each part included separately. */
export function sampleRss(stack: Stack): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of stack.procs) {
    if (!p.alive || p.pid === undefined) continue;
    for (const pid of groupPids(p.pid)) out.set(`${p.spec.name}/${commOf(pid)}/${pid}`, rssOf(pid));
  }
  return out;
}

/** The edge isolate's DevTools connection (its JS heap), through wrangler's inspector proxy. */
export function inspectEdge(stack: Stack): Promise<IsolateInspector> {
  if (stack.opts.inspectorPort === undefined) throw new Error('this stack was started without the inspector (startChaosStack({ inspector: true }))');
  return connectIsolate(stack.opts.inspectorPort);
}

/** Bytes of a fake "clip": deterministic per label, so tests can compare what they download. */
export function fakeClip(label: string, n = 4096): Uint8Array {
  const out = new Uint8Array(n);
  let h = createHash('sha256').update(label).digest();
  for (let i = 0; i < n; i += 32) {
    out.set(h.subarray(0, Math.min(32, n - i)), i);
    h = createHash('sha256').update(h).digest();
  }
  return out;
}

export { edgeCatalogEntry };
