// The job store split over 4 shards (JOB_SHARDS = 4): where calls land under a skewed many-tenant load, and the
// guarantees that must hold across shards (no stranded job, exactly one completion, lease expiry and requeue,
// bounded queue, content shared between shards, the opt-in shared index, webhooks, immediate revocation).
import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../../shared/api/keys.ts';
import { LEASE_PATHS } from '../../../shared/lease.ts';
import { shard } from '../../../edge/env.ts';
import { api, call, createVideo, expectProblem, fakeMp4, lease, newKey, runOneJob, signed, uploadResult } from '../helpers.ts';

const N = 4;
const shardOf = (keyId: string) => parseInt(keyId.slice(0, 2), 16);
const calls = () => Promise.all(Array.from({ length: N }, (_, i) => shard(env, i).stats()));
/** Calls per shard between two readings; a shard evicted in between (idle) counts from 0 again. */
const delta = (after: { calls: number; started: number }[], before: { calls: number; started: number }[]) =>
  after.map((a, i) => (a.started === before[i].started ? a.calls - before[i].calls : a.calls));
const admin = { authorization: 'Bearer test-admin-token' };

/** A key whose owner lands on shard `s` (owners are spread by hash). */
async function keyOn(s: number, tag: string, extra: Record<string, unknown> = {}): Promise<CreatedKey> {
  for (let i = 0; ; i++) {
    const k = await newKey(`${tag}-${i}`, { rate_limit_per_min: 10_000, ...extra });
    if (shardOf(k.id) === s) return k;
  }
}

async function drain(): Promise<void> {
  while (await lease(0, 'drain')) {}
}

describe('sharded job store', () => {
  it('puts each call of a skewed many-tenant load on its tenant\'s shard only, and spreads backend calls', async () => {
    const owners = Array.from({ length: 24 }, (_, i) => `tenant-${i}`);
    const keys = await Promise.all(owners.map((o) => newKey(o, { rate_limit_per_min: 10_000 })));
    for (const [i, k] of keys.entries()) expect(shardOf(k.id), owners[i]).toBeLessThan(N);
    expect(new Set(keys.map((k) => shardOf(k.id))).size).toBe(N); // 24 owners cover every shard
    // Zipf-like skew: tenant i makes ceil(40 / (i + 1)) requests
    const load = keys.map((_, i) => Math.ceil(40 / (i + 1)));
    const expected = Array(N).fill(0);
    for (const [i, k] of keys.entries()) expected[shardOf(k.id)] += load[i];
    const before = await calls();
    await Promise.all(keys.map(async (k, i) => {
      for (let j = 0; j < load[i]; j++) expect((await api(k.key, j % 2 ? '/v1/videos' : '/v1/models')).status).toBe(200);
    }));
    const tenantCalls = delta(await calls(), before);
    // exactly one call per request, on the tenant's shard and nowhere else: a shard carries only its tenants' share
    expect(tenantCalls).toEqual(expected);
    const total = load.reduce((a, b) => a + b, 0);
    expect(Math.max(...tenantCalls)).toBeLessThan(total); // no shard on every tenant's path

    // backends: every idle poll sweeps each shard once; nonces spread by hash
    const b2 = await calls();
    const polls = 40;
    for (let i = 0; i < polls; i++) expect(await lease(0, `poller-${i % 4}`)).toBeNull();
    const backend = delta(await calls(), b2);
    for (const c of backend) {
      expect(c).toBeGreaterThanOrEqual(polls); // one sweep call per poll on every shard
      expect(c).toBeLessThanOrEqual(polls + polls / 2 + 10); // plus its share of the nonces
    }
    const nonces = backend.map((c) => c - polls);
    expect(nonces.reduce((a, b) => a + b, 0)).toBe(polls);
  }, 60_000); // ~250 requests: slow on a busy machine, and speed is not what it checks

  it('leases every shard\'s jobs to one backend (none stranded) and completes each exactly once', async () => {
    await drain();
    const keys = await Promise.all(Array.from({ length: N }, (_, s) => keyOn(s, 'spread')));
    const made = new Set<string>();
    for (const k of keys) for (let j = 0; j < 2; j++) made.add((await createVideo(k.key, { prompt: `spread ${j}`, size: '64x64' })).id);
    const got = new Map<string, string>();
    for (let i = 0; i < made.size; i++) {
      const g = await lease(0);
      expect(g).not.toBeNull();
      got.set(g!.job.id, g!.lease_id);
    }
    expect(new Set(got.keys())).toEqual(made);
    expect(await lease(0)).toBeNull();
    for (const [, leaseId] of got) {
      const bytes = fakeMp4(leaseId);
      expect((await uploadResult(leaseId, bytes)).status).toBe(200);
      await expectProblem(await uploadResult(leaseId, bytes), 409, 'lease_lost');
    }
    for (const k of keys) {
      const list = await (await api(k.key, '/v1/videos')).json<{ data: { status: string }[] }>();
      expect(list.data.map((v) => v.status)).toEqual(['completed', 'completed']);
    }
  });

  it('wakes a parked long-poll for a job queued in any shard within one slice', async () => {
    await drain();
    const k = await keyOn(3, 'late');
    const t0 = Date.now();
    const poll = lease(10_000, 'parked');
    await new Promise((r) => setTimeout(r, 300));
    const v = await createVideo(k.key, { prompt: 'arrives late', size: '64x64' });
    const g = await poll;
    expect(g?.job.id).toBe(v.id);
    expect(Date.now() - t0).toBeLessThan(300 + 2000 + 1500); // the slice is 2 s
    await signed('POST', LEASE_PATHS.fail(g!.lease_id), { reason: 'done here', retryable: false });
  });

  it('requeues a job whose lease expired in its shard, and the sweep finds it again', async () => {
    await drain();
    const k = await keyOn(2, 'expiry');
    const v = await createVideo(k.key, { prompt: 'lease will lapse', size: '64x64' });
    const g = await lease(0);
    expect(g?.job.id).toBe(v.id);
    expect(g!.lease_id.slice('lease_'.length, 'lease_'.length + 2)).toBe('02');
    const stub = shard(env, 2);
    await runInDurableObject(stub, (_o, state) => {
      state.storage.sql.exec("UPDATE jobs SET lease_expires = ? WHERE status = 'in_progress'", Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await expectProblem(await signed('POST', LEASE_PATHS.heartbeat(g!.lease_id), { progress: 5 }), 409, 'lease_lost');
    const again = await lease(0);
    expect(again).toMatchObject({ attempt: 2, job: { id: v.id } });
    await runOneJobWith(again!.lease_id);
  });

  it('bounds the queue: each shard holds its share of MAX_QUEUE', async () => {
    await drain();
    const k = await keyOn(1, 'bounded', { max_active_jobs: 1000 });
    const share = Math.ceil(50 / N);
    for (let i = 0; i < share; i++) await createVideo(k.key, { prompt: `fill ${i}`, size: '64x64' });
    const over = await api(k.key, '/v1/videos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'one too many', size: '64x64' }) });
    await expectProblem(over, 429, 'queue_full');
    const q = await (await call('/internal/v1/queue', { headers: { authorization: 'Bearer test-metrics-token' } })).json<{ queued: number }>();
    expect(q.queued).toBe(share); // summed over shards
    await drain();
  });

  it('frees content two shards share only when the last reference in any shard goes', async () => {
    await drain();
    const a = await keyOn(0, 'same-a');
    const b = await keyOn(1, 'same-b');
    const body = { prompt: 'same bytes everywhere', size: '64x64', seed: 9 };
    const va = await createVideo(a.key, body);
    await runOneJob();
    const vb = await createVideo(b.key, body); // another owner: no reuse, a generation of its own…
    expect(vb.status).toBe('queued');
    await runOneJob(); // …that yields the same bytes (same params), stored once
    const sha = (await (await api(a.key, `/v1/videos/${va.id}`)).json<{ content_sha256: string }>()).content_sha256;
    expect((await (await api(b.key, `/v1/videos/${vb.id}`)).json<{ content_sha256: string }>()).content_sha256).toBe(sha);
    await api(a.key, `/v1/videos/${va.id}`, { method: 'DELETE' });
    expect(await env.RESULTS.head(`videos/${sha}.mp4`)).not.toBeNull(); // shard 1 still references it
    expect((await api(b.key, `/v1/videos/${vb.id}/content`)).status).toBe(200);
    await api(b.key, `/v1/videos/${vb.id}`, { method: 'DELETE' });
    expect(await env.RESULTS.head(`videos/${sha}.mp4`)).toBeNull();
  });

  it('shares results between opted-in keys of owners on different shards', async () => {
    await drain();
    const a = await keyOn(2, 'share-a', { share_results: true });
    const b = await keyOn(3, 'share-b', { share_results: true });
    const body = { prompt: 'shared across shards', size: '64x64', seed: 10 };
    await createVideo(a.key, body);
    await runOneJob();
    expect(await createVideo(b.key, body)).toMatchObject({ status: 'completed', cached: true });
  });

  it('delivers webhooks from any shard, and revokes a key at once', async () => {
    await drain();
    const k = await keyOn(3, 'hooks');
    const url = 'http://hooks.test/sharded/ok';
    const v = await createVideo(k.key, { prompt: 'hook me', size: '64x64', webhook_url: url });
    await runOneJob();
    const deliveries = async () => (await (await fetch('http://hooks.test/__log')).json<{ url: string; body: string }[]>()).filter((d) => d.url === url);
    for (let i = 0; i < 100 && (await deliveries()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(JSON.parse((await deliveries())[0].body)).toMatchObject({ type: 'video.completed', data: { id: v.id } });
    expect((await call(`/admin/v1/keys/${k.id}`, { method: 'DELETE', headers: admin })).status).toBe(200);
    await expectProblem(await api(k.key, '/v1/videos'), 401, 'invalid_api_key');
    const listed = await (await call('/admin/v1/keys', { headers: admin })).json<{ data: { id: string; revoked_at: number | null }[] }>();
    expect(listed.data.find((x) => x.id === k.id)?.revoked_at).not.toBeNull();
    expect(new Set(listed.data.map((x) => shardOf(x.id))).size).toBe(N); // the list spans every shard
  });
});

async function runOneJobWith(leaseId: string): Promise<void> {
  expect((await uploadResult(leaseId, fakeMp4(leaseId))).status).toBe(200);
}
