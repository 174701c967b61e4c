// npm run bench:edge — one local workerd (wrangler dev), same client:
//   1. three routes: bare Hono hello-world (/bench/hello), authenticated GET /v1/videos/:id, cached /cdn/… .mp4;
//      p50/p99 latency (sequential requests), requests/s (CONCURRENCY in flight), and the ratio to the bare route;
//   2. per request type: Durable Object calls per request and their spread over the shards, CPU ms per request,
//      at JOB_SHARDS = 1 and 4 (bench/edgeShards.ts), and the capacity that gives at 1, 4 and 16 shards.
// Env: BENCH_SECONDS (per route and phase, default 3), BENCH_CONCURRENCY (default 8), BENCH_MP4_BYTES (default 262144),
//      BENCH_REQUESTS (per request type in part 2, default 300), BENCH_TENANTS (owners in part 2, default 16).
import { LEASE_PATHS, SIG_HEADERS, sha256Hex, signedJsonFetch, signRequest, type LeaseGrant } from '../shared/lease.ts';
import { createKey } from '../scripts/keys.ts';
import { startEdge } from './edgeDev.ts';
import { capacity, measureShards, OBJECT_LIMIT_RPS, type TypeCost } from './edgeShards.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const MP4_BYTES = Number(process.env.BENCH_MP4_BYTES ?? 256 * 1024);
const ADMIN = 'bench-admin';
const BACKEND = 'bench-backend';
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 300);
const TENANTS = Number(process.env.BENCH_TENANTS ?? 16);

interface Stats { p50: number; p99: number; mean: number; n: number; rps: number }

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function once(url: string, headers: Record<string, string>): Promise<void> {
  const r = await fetch(url, { headers });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`${url} → ${r.status}`);
}

/**
 * Interleaved so that every route sees the same machine load (this box is shared): latency = round-robin sequential
 * requests, one per route per round; throughput = alternating 0.5 s slices per route with CONCURRENCY in flight.
 */
async function measureAll(routes: { url: string; headers: Record<string, string> }[]): Promise<Stats[]> {
  for (const r of routes) for (let i = 0; i < 50; i++) await once(r.url, r.headers); // warm-up (JIT, connections, cache)
  const lat: number[][] = routes.map(() => []);
  const end = performance.now() + SECONDS * 1000 * routes.length;
  while (performance.now() < end) {
    for (let k = 0; k < routes.length; k++) {
      const t = performance.now();
      await once(routes[k].url, routes[k].headers);
      lat[k].push(performance.now() - t);
    }
  }
  const done = routes.map(() => 0);
  const busy = routes.map(() => 0);
  for (let slice = 0; slice < SECONDS * 2; slice++) {
    for (let k = 0; k < routes.length; k++) {
      const t0 = performance.now();
      const stop = t0 + 500;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (performance.now() < stop) {
            await once(routes[k].url, routes[k].headers);
            done[k]++;
          }
        }),
      );
      busy[k] += performance.now() - t0;
    }
  }
  return lat.map((l, k) => {
    l.sort((a, b) => a - b);
    return { p50: pct(l, 50), p99: pct(l, 99), mean: l.reduce((a, b) => a + b, 0) / l.length, n: l.length, rps: done[k] / (busy[k] / 1000) };
  });
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const edge = await startEdge({ vars: { ADMIN_TOKEN: ADMIN, BACKEND_SECRET: BACKEND, CDN_SECRET: 'bench-cdn' } });
  try {
    console.log(`edge up at ${edge.url} in ${Date.now() - t0} ms (state ${edge.persistTo})`);
    const key = await createKey({ baseUrl: edge.url, adminToken: ADMIN }, { owner: 'bench', rate_limit_per_min: 1_000_000 });
    const auth = { authorization: `Bearer ${key.key}` };
    const created = await fetch(`${edge.url}/v1/videos`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'bench clip', size: '64x64', seconds: 2, seed: 7 }),
    }).then((r) => r.json() as Promise<{ id: string }>);
    // Play the backend: lease, upload a fake MP4, complete.
    const lease = await signedJsonFetch(edge.url, BACKEND, 'POST', LEASE_PATHS.lease, { group: 'bench', model: 'uvit-t2v-demo', capacity: 1, wait_ms: 5000 });
    const grant = (await lease.json()) as LeaseGrant;
    const bytes = new Uint8Array(MP4_BYTES).map((_, i) => (i * 31) & 0xff);
    const sha = await sha256Hex(bytes);
    const path = LEASE_PATHS.result(grant.lease_id);
    const up = await fetch(edge.url + path, {
      method: 'PUT',
      headers: { ...(await signRequest({ secret: BACKEND, method: 'PUT', path, bodySha256: sha })), [SIG_HEADERS.contentSha256]: sha, 'content-length': String(bytes.length) },
      body: bytes,
    });
    if (up.status !== 200) throw new Error(`result upload failed: ${up.status} ${await up.text()}`);
    const video = (await fetch(`${edge.url}/v1/videos/${created.id}`, { headers: auth }).then((r) => r.json())) as { status: string; cdn_url: string };
    if (video.status !== 'completed') throw new Error(`video is ${video.status}`);

    const routes: [string, string, Record<string, string>][] = [
      ['bare Hono hello (/bench/hello)', `${edge.url}/bench/hello`, {}],
      ['GET /v1/videos/:id (auth + DO)', `${edge.url}/v1/videos/${created.id}`, auth],
      [`GET /cdn/… cached (${MP4_BYTES} B)`, new URL(video.cdn_url, edge.url).toString(), {}],
    ];
    const stats = await measureAll(routes.map(([, url, headers]) => ({ url, headers })));
    const results: [string, Stats][] = routes.map(([name], k) => [name, stats[k]]);
    const base = results[0][1];
    console.log(`\nbench:edge — wrangler dev (workerd) on loopback, routes interleaved; latency: sequential, n per route = ${results[0][1].n}; req/s: ${CONCURRENCY} in flight`);
    console.log('route'.padEnd(40) + 'p50 ms'.padStart(9) + 'p99 ms'.padStart(9) + 'mean ms'.padStart(9) + 'req/s'.padStart(9) + '  p50 ÷ bare');
    for (const [name, s] of results)
      console.log(name.padEnd(40) + s.p50.toFixed(3).padStart(9) + s.p99.toFixed(3).padStart(9) + s.mean.toFixed(3).padStart(9) + s.rps.toFixed(0).padStart(9) + `  ${(s.p50 / base.p50).toFixed(2)}×`);
    const ratio = results[1][1].p50 / base.p50;
    console.log(`\nGET /v1/videos/:id p50 is ${ratio.toFixed(2)}× the bare route's (goal ≤ 2×): ${ratio <= 2 ? 'met' : 'NOT met'}`);
  } finally {
    await edge.stop();
  }
  await shardCosts();
}

async function shardCosts(): Promise<void> {
  const fmt = (x: number) => (x === Infinity ? '∞ (no DO)' : x >= 10_000 ? `${(x / 1000).toFixed(0)}k` : x.toFixed(0));
  const runs: { shards: number; costs: TypeCost[] }[] = [];
  for (const shards of [1, 4]) runs.push({ shards, costs: await measureShards(shards, TENANTS, REQUESTS, CONCURRENCY) });
  console.log(`\njob-store cost per request type — ${TENANTS} owners, ${REQUESTS} requests per type, ${CONCURRENCY} in flight; hops = Durable Object calls per request; CPU = the app workerd process (Worker + all Durable Objects) per request`);
  console.log('request type'.padEnd(40) + runs.map((r) => `hops@${r.shards}`.padStart(9) + 'busiest'.padStart(9) + `CPU ms@${r.shards}`.padStart(11)).join(''));
  for (let k = 0; k < runs[0].costs.length; k++) {
    let line = runs[0].costs[k].type.padEnd(40);
    for (const r of runs) {
      const c = r.costs[k];
      line += c.hops.toFixed(2).padStart(9) + `${(c.maxShardShare * 100).toFixed(0)}%`.padStart(9) + c.cpuMs.toFixed(2).padStart(11);
    }
    console.log(line);
  }
  // hops measured with 1 shard for the 1-shard column, with 4 for the 4- and 16-shard ones
  console.log(`\nDO-bound capacity (req/s) at ${OBJECT_LIMIT_RPS} req/s per object, tenants spread evenly: shards × ${OBJECT_LIMIT_RPS} ÷ hops (idle polls: ${OBJECT_LIMIT_RPS} ÷ (1 + 1/shards))`);
  console.log('request type'.padEnd(40) + [1, 4, 16].map((n) => `${n} shard${n > 1 ? 's' : ''}`.padStart(11)).join(''));
  for (let k = 0; k < runs[0].costs.length; k++)
    console.log(runs[0].costs[k].type.padEnd(40) + [1, 4, 16].map((n) => fmt(capacity(runs[n === 1 ? 0 : 1].costs[k], n)).padStart(11)).join(''));
}

main().catch((e: Error) => {
  console.error(`bench:edge: ${e.message}`);
  process.exit(1);
});
