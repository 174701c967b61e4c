// bench:edge, part 2 — the job store's cost per request type, sharded: Durable Object calls ("hops") per request
// and their spread over the shards (from /admin/v1/shards), and CPU ms per request of the app's workerd process
// (the Worker and every Durable Object run in that one process locally), at JOB_SHARDS = 1 and 4. Then the
// capacity those hops give at 1, 4 and 16 shards against the documented per-object limit (docs/edge.md).
import { readFileSync } from 'node:fs';
import { LEASE_PATHS, SIG_HEADERS, sha256Hex, signedJsonFetch, signRequest, type LeaseGrant } from '../shared/lease.ts';
import type { CreatedKey } from '../shared/api/keys.ts';
import { createKey } from '../scripts/keys.ts';
import { wranglerWorkerds } from '../scripts/procMem.ts';
import { startEdge } from './edgeDev.ts';

const ADMIN = 'bench-admin';
const BACKEND = 'bench-backend';
const MODEL = 'uvit-t2v-demo';
/** Documented soft limit of one Durable Object (simple operations; 200–500/s with storage writes). */
export const OBJECT_LIMIT_RPS = 1000;

export interface TypeCost { type: string; hops: number; maxShardShare: number; cpuMs: number; n: number }

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (100 per second on Linux)
}

type ShardCalls = { calls: number; started: number }[];

async function shardCalls(url: string): Promise<ShardCalls> {
  const r = await fetch(`${url}/admin/v1/shards`, { headers: { authorization: `Bearer ${ADMIN}` } });
  if (r.status !== 200) throw new Error(`/admin/v1/shards → ${r.status}`);
  return ((await r.json()) as { data: ShardCalls }).data;
}

/** Calls per shard between two readings; a shard evicted in between (idle) counts from 0 again. */
function callsBetween(before: ShardCalls, after: ShardCalls): number[] {
  return after.map((a, i) => (a.started === before[i].started ? a.calls - before[i].calls : a.calls));
}

async function ok(res: Promise<Response>, what: string, want = [200]): Promise<Response> {
  const r = await res;
  if (!want.includes(r.status)) throw new Error(`${what} → ${r.status} ${await r.text()}`);
  return r;
}

async function uploadFake(url: string, grant: LeaseGrant): Promise<void> {
  const bytes = new TextEncoder().encode(`ftypisom fake clip ${grant.job.params_hash}`.repeat(64));
  const sha = await sha256Hex(bytes);
  const path = LEASE_PATHS.result(grant.lease_id);
  await ok(fetch(url + path, {
    method: 'PUT',
    headers: { ...(await signRequest({ secret: BACKEND, method: 'PUT', path, bodySha256: sha })), [SIG_HEADERS.contentSha256]: sha, 'content-length': String(bytes.length) },
    body: bytes,
  }), 'result upload');
}

/** Costs of each request type with `shards` job-store shards and `tenants` owners, `n` requests per type. */
export async function measureShards(shards: number, tenants: number, n: number, concurrency: number): Promise<TypeCost[]> {
  const edge = await startEdge({
    vars: { ADMIN_TOKEN: ADMIN, BACKEND_SECRET: BACKEND, CDN_SECRET: 'bench-cdn', JOB_SHARDS: String(shards), MAX_QUEUE: '1000000', PUBLIC_BASE_URL: 'http://bench.invalid' },
  });
  try {
    const pid = wranglerWorkerds(edge.child.pid!).user;
    if (!pid) throw new Error('the app workerd process was not found');
    const target = { baseUrl: edge.url, adminToken: ADMIN };
    const keys: CreatedKey[] = [];
    for (let t = 0; t < tenants; t++) keys.push(await createKey(target, { owner: `bench-${t}`, rate_limit_per_min: 1_000_000, max_active_jobs: 100_000 }));
    const auth = (t: number) => ({ authorization: `Bearer ${keys[t % tenants].key}` });
    const lease = (wait = 0) => signedJsonFetch(edge.url, BACKEND, 'POST', LEASE_PATHS.lease, { group: 'bench', model: MODEL, capacity: 1, wait_ms: wait });
    // one completed (seeded) video per tenant, for reads, cache hits and the CDN
    const done: { id: string; cdn: string }[] = [];
    for (let t = 0; t < tenants; t++) {
      const v = (await (await ok(fetch(`${edge.url}/v1/videos`, { method: 'POST', headers: { ...auth(t), 'content-type': 'application/json' }, body: JSON.stringify({ prompt: `bench ${t}`, size: '64x64', seed: t }) }), 'create')).json()) as { id: string };
      const g = (await (await ok(lease(5000), 'lease')).json()) as LeaseGrant;
      await uploadFake(edge.url, g);
      const full = (await (await ok(fetch(`${edge.url}/v1/videos/${v.id}`, { headers: auth(t) }), 'get')).json()) as { cdn_url: string };
      done.push({ id: v.id, cdn: new URL(full.cdn_url).pathname });
      await (await fetch(edge.url + done[t].cdn)).arrayBuffer(); // fill the CDN cache
    }
    let held: LeaseGrant | null = null;
    const types: [string, (i: number) => Promise<Response>][] = [
      ['GET /v1/videos/:id', (i) => ok(fetch(`${edge.url}/v1/videos/${done[i % tenants].id}`, { headers: auth(i) }), 'get')],
      ['GET /v1/videos (list)', (i) => ok(fetch(`${edge.url}/v1/videos?limit=10`, { headers: auth(i) }), 'list')],
      ['POST /v1/videos (seeded, cache hit)', (i) => ok(fetch(`${edge.url}/v1/videos`, { method: 'POST', headers: { ...auth(i), 'content-type': 'application/json' }, body: JSON.stringify({ prompt: `bench ${i % tenants}`, size: '64x64', seed: i % tenants }) }), 'create hit')],
      ['POST /internal/v1/lease (idle poll)', () => ok(lease(0), 'idle lease', [204])],
      ['POST /v1/videos (queued)', (i) => ok(fetch(`${edge.url}/v1/videos`, { method: 'POST', headers: { ...auth(i), 'content-type': 'application/json' }, body: JSON.stringify({ prompt: `queued ${i}`, size: '64x64' }) }), 'create queued')],
      ['POST /internal/v1/lease (claims a job)', () => ok(lease(0), 'claiming lease')],
      ['POST …/heartbeat', (i) => ok(signedJsonFetch(edge.url, BACKEND, 'POST', LEASE_PATHS.heartbeat(held!.lease_id), { progress: Math.min(99, i / 10) }), 'heartbeat')],
      ['GET /cdn/… (cached)', (i) => ok(fetch(edge.url + done[i % tenants].cdn), 'cdn')],
    ];
    const out: TypeCost[] = [];
    for (const [type, run] of types) {
      if (type.startsWith('POST …/heartbeat')) { // a job of its own to hold (the claims took every queued one)
        await ok(fetch(`${edge.url}/v1/videos`, { method: 'POST', headers: { ...auth(0), 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'held', size: '64x64' }) }), 'create');
        held = (await (await ok(lease(0), 'lease for heartbeats')).json()) as LeaseGrant;
      }
      const before = await shardCalls(edge.url);
      const cpu0 = cpuTicks(pid);
      let next = 0;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < n; i = next++) await (await run(i)).arrayBuffer();
      }));
      const cpu = (cpuTicks(pid) - cpu0) * 10; // ticks → ms
      const after = await shardCalls(edge.url);
      const d = callsBetween(before, after);
      const sum = d.reduce((a, b) => a + b, 0);
      out.push({ type, hops: sum / n, maxShardShare: sum ? Math.max(...d) / sum : 0, cpuMs: cpu / n, n });
    }
    return out;
  } finally {
    await edge.stop();
  }
}

/**
 * Requests/s the job store can carry for one request type, DO-bound, with `shards` shards: a request spends its
 * hops on its tenant's (or lease's, or nonce's) shard, so N evenly loaded shards carry N × limit / hops; an idle
 * backend poll spends one hop on every shard (the sweep) plus its nonce's, so polls do not scale with shards.
 */
export function capacity(c: TypeCost, shards: number): number {
  if (c.hops === 0) return Infinity;
  if (c.type.includes('idle poll')) return OBJECT_LIMIT_RPS / (1 + 1 / shards);
  return (shards * OBJECT_LIMIT_RPS) / c.hops;
}
