// npm run bench:soak — whose is the memory that workerd gains under load: this edge's, or the runtime's?
// Three phases, same client (CONCURRENCY requests in flight for SOAK_SECONDS each), RSS sampled every SOAK_SAMPLE_S:
//   1. workerd alone (`workerd serve`, a hello-world module, no wrangler): the runtime with nothing else
//   2. `wrangler dev` running a hello-world worker: + wrangler's proxy workerd and its dev tooling
//   3. `wrangler dev` running this edge under an API mix (authenticated GET, list, create until the queue bound → 429)
// For 2 and 3 also the app isolate's live JS heap from a heap snapshot (DevTools protocol via wrangler's inspector
// proxy), objects and V8 code apart: an app leak shows there, allocator caches of the runtime do not. Prints each
// series, and per process the peak of the middle third vs the last third (levelled off or still climbing).
// Env: SOAK_SECONDS (per phase, default 120), SOAK_SAMPLE_S (default 10), BENCH_CONCURRENCY (default 8).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKey } from '../scripts/keys.ts';
import { plateau, rssOf, wranglerWorkerds } from '../scripts/procMem.ts';
import { connectIsolate, type IsolateInspector } from '../scripts/workerdInspector.ts';
import { freePort, startEdge } from './edgeDev.ts';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 120);
const SAMPLE_S = Number(process.env.SOAK_SAMPLE_S ?? 10);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const HELLO = 'export default { fetch() { return new Response("hello"); } };\n';
const MiB = 2 ** 20;

interface Series { name: string; bytes: number[] }
interface PhaseResult { phase: string; requests: number; rps: number; series: Series[] }

/** Drives `next()` with CONCURRENCY loops for SECONDS, sampling `probe()` every SAMPLE_S (and once before and after). */
async function drive(next: () => Promise<void>, probe: () => Promise<Map<string, number>>): Promise<{ requests: number; rps: number; series: Series[] }> {
  const samples: Map<string, number>[] = [await probe()];
  let requests = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  let sampling = Promise.resolve();
  const timer = setInterval(() => { sampling = sampling.then(async () => { samples.push(await probe()); }); }, SAMPLE_S * 1000);
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) {
      await next();
      requests++;
    }
  }));
  clearInterval(timer);
  await sampling;
  samples.push(await probe());
  const names = [...new Set(samples.flatMap((m) => [...m.keys()]))];
  return { requests, rps: requests / ((performance.now() - t0) / 1000), series: names.map((name) => ({ name, bytes: samples.map((m) => m.get(name) ?? 0) })) };
}

async function get(url: string, headers: Record<string, string> = {}): Promise<void> {
  const r = await fetch(url, { headers });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`GET ${url} → ${r.status}`);
}

async function workerdAlone(): Promise<PhaseResult> {
  const dir = mkdtempSync(join(tmpdir(), 'uvit-soak-'));
  const port = await freePort();
  writeFileSync(join(dir, 'index.js'), HELLO);
  writeFileSync(join(dir, 'config.capnp'), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .w)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const w :Workerd.Worker = (modules = [(name = "index.js", esModule = embed "index.js")], compatibilityDate = "2025-01-01");
`);
  // workerd comes with wrangler (not a direct dependency of this package)
  const bin = (createRequire(createRequire(import.meta.url).resolve('wrangler/package.json'))('workerd') as { default: string }).default;
  const child = spawn(bin, ['serve', join(dir, 'config.capnp')], { stdio: 'ignore' });
  try {
    const url = `http://127.0.0.1:${port}/`;
    for (let i = 0; ; i++) {
      try { await get(url); break; } catch (e) { if (i > 100) throw e; await new Promise((r) => setTimeout(r, 100)); }
    }
    const r = await drive(() => get(url), async () => new Map([['workerd RSS', rssOf(child.pid!)]]));
    return { phase: '1. workerd alone, hello world', ...r };
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** RSS of wrangler's two workerd processes and the app isolate's live JS heap. */
function wranglerProbe(pgid: number, inspector: IsolateInspector): () => Promise<Map<string, number>> {
  return async () => {
    const w = wranglerWorkerds(pgid);
    const heap = await inspector.liveHeap();
    return new Map([
      ['proxy workerd RSS', w.proxy ? rssOf(w.proxy) : 0],
      ['app workerd RSS', w.user ? rssOf(w.user) : 0],
      ['app live JS objects', heap.totalBytes - heap.codeBytes],
      ['app V8 code', heap.codeBytes],
    ]);
  };
}

async function wranglerHello(): Promise<PhaseResult> {
  const dir = mkdtempSync(join(tmpdir(), 'uvit-soak-'));
  writeFileSync(join(dir, 'index.js'), HELLO);
  writeFileSync(join(dir, 'wrangler.toml'), 'name = "soak-hello"\nmain = "index.js"\ncompatibility_date = "2026-10-01"\n');
  const edge = await startEdge({ config: join(dir, 'wrangler.toml') });
  const inspector = await connectIsolate(edge.inspectorPort);
  try {
    const r = await drive(() => get(`${edge.url}/`), wranglerProbe(edge.child.pid!, inspector));
    return { phase: '2. wrangler dev, hello world', ...r };
  } finally {
    inspector.close();
    await edge.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function wranglerEdge(): Promise<PhaseResult> {
  const ADMIN = 'soak-admin';
  // a small queue bound so that the create path reaches 429 within the phase
  const edge = await startEdge({ vars: { ADMIN_TOKEN: ADMIN, BACKEND_SECRET: 'soak-backend', CDN_SECRET: 'soak-cdn', MAX_QUEUE: '300' } });
  const inspector = await connectIsolate(edge.inspectorPort);
  try {
    const { key } = await createKey({ baseUrl: edge.url, adminToken: ADMIN }, { owner: 'soak', rate_limit_per_min: 1_000_000, max_active_jobs: 100_000 });
    const auth = { authorization: `Bearer ${key}` };
    const ids: string[] = [];
    let n = 0;
    const create = async () => {
      const r = await fetch(`${edge.url}/v1/videos`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: `soak ${n}`, size: '64x64', seconds: 2, seed: n }),
      });
      const body = (await r.json()) as { id?: string };
      if (r.status === 200 && body.id) ids.push(body.id);
      else if (r.status !== 429) throw new Error(`POST /v1/videos → ${r.status}`);
    };
    await create();
    const r = await drive(async () => {
      const k = n++ % 10;
      if (k === 0) await create();
      else if (k === 1) await get(`${edge.url}/v1/videos?limit=20`, auth);
      else await get(`${edge.url}/v1/videos/${ids[n % ids.length]}`, auth);
    }, wranglerProbe(edge.child.pid!, inspector));
    return { phase: `3. wrangler dev, this edge (API mix; ${ids.length} jobs created, then 429 at the bound)`, ...r };
  } finally {
    inspector.close();
    await edge.stop();
  }
}

function report(r: PhaseResult): void {
  console.log(`\n${r.phase}: ${r.requests} requests, ${r.rps.toFixed(0)} req/s`);
  for (const s of r.series) {
    const xs = s.bytes.filter((x) => x > 0);
    if (xs.length < 3) continue;
    const p = plateau(xs);
    console.log(`  ${s.name.padEnd(26)} ${(xs[0] / MiB).toFixed(1)} → peak ${(Math.max(...xs) / MiB).toFixed(1)} MiB; middle-third peak ${(p.head / MiB).toFixed(1)} → last-third peak ${(p.tail / MiB).toFixed(1)} (${p.grew >= 0 ? '+' : ''}${(p.grew / MiB).toFixed(1)} MiB)`);
    console.log(`    series MiB: ${xs.map((x) => (x / MiB).toFixed(s.name.startsWith('app live') || s.name.includes('code') ? 2 : 0)).join(' ')}`);
  }
}

async function main(): Promise<void> {
  console.log(`bench:soak — ${SECONDS} s per phase, ${CONCURRENCY} in flight, a sample every ${SAMPLE_S} s`);
  for (const phase of [workerdAlone, wranglerHello, wranglerEdge]) report(await phase());
}

main().catch((e: Error) => {
  console.error(`bench:soak: ${e.message}`);
  process.exit(1);
});
