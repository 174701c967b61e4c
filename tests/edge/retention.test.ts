// Retention over a simulated week: the store's sweep runs at day boundaries after "now"; finished rows go at their
// expires_at, content goes with its last reference, live (queued) work and referenced content stay.
import { env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { LEASE_PATHS, sha256Hex } from '../../shared/lease.ts';
import type { Video } from '../../shared/api/videos.ts';
import { shard } from '../../edge/env.ts';
import type { JobStore } from '../../edge/jobs/JobStore.ts';
import { api, createVideo, lease, newKey, runOneJob, runOneJobWithVariants, signed } from './helpers.ts';

const DAY = 86_400_000;

async function count(table: string, where = '1'): Promise<number> {
  return runInDurableObject(shard(env, 0), (_: JobStore, state) =>
    state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`).one().n);
}

describe('retention', () => {
  it('a simulated week: rows, R2 objects and CDN links end at expires_at; nothing live or referenced is deleted', async () => {
    while (await lease(0, 'drain')) {}
    const day1 = await newKey('retention', { result_ttl_seconds: 86_400 });
    const day3 = await newKey('retention', { result_ttl_seconds: 3 * 86_400 }); // same owner: reuses day1's result
    const week = await newKey('retention-week', { result_ttl_seconds: 7 * 86_400 });
    const seeded = { prompt: 'kept a day', size: '64x64', seed: 31 };
    const a = await createVideo(day1.key, seeded);
    await runOneJob();
    const b = await createVideo(day3.key, seeded); // cache hit: same content, its own expiry
    expect(b.cached).toBe(true);
    const c = await createVideo(week.key, { prompt: 'kept a week', size: '64x64', seed: 32, webhook_url: 'http://hooks.test/retention' });
    const { files } = await runOneJobWithVariants(); // its thumbnail and spritesheet go with it
    const f = await createVideo(week.key, { prompt: 'fails', size: '64x64' });
    const g = await lease(0);
    expect((await signed('POST', LEASE_PATHS.fail(g!.lease_id), { reason: 'boom', retryable: false })).status).toBe(200);
    const q = await createVideo(week.key, { prompt: 'still queued', size: '64x64' }); // never leased: no expiry
    const get = async (key: string, id: string) => (await api(key, `/v1/videos/${id}`)).json<Video>();
    const va = await get(day1.key, a.id);
    const vc = await get(week.key, c.id);
    const vf = await get(week.key, f.id);
    const t0 = Date.now();
    expect(va.expires_at! * 1000 - t0).toBeLessThanOrEqual(DAY);
    expect(va.expires_at! * 1000 - t0).toBeGreaterThan(DAY - 60_000);
    expect(b.expires_at! - va.expires_at!).toBeGreaterThanOrEqual(2 * 86_400 - 60);
    expect(vf.status).toBe('failed');
    expect(vf.expires_at).not.toBeNull();
    expect(q.expires_at).toBeNull();
    // the CDN link carries the same expiry: it is refused after it (tests/edge/cdn.test.ts runs that in real time)
    expect(new URL(va.cdn_url!).pathname.split('/')[3]).toBe(String(va.expires_at));
    const sha = (v: Video) => `videos/${v.content_sha256}.mp4`;
    const status = async (key: string, id: string) => (await api(key, `/v1/videos/${id}`)).status;

    const store = shard(env, 0); // JOB_SHARDS = 1 here
    for (let day = 0; day <= 8; day++) {
      const swept = await store.retain(t0 + day * DAY + 1000);
      const alive = { a: await status(day1.key, a.id), b: await status(day3.key, b.id), c: await status(week.key, c.id), f: await status(week.key, f.id) };
      expect(alive).toEqual({ a: day >= 1 ? 404 : 200, b: day >= 3 ? 404 : 200, c: day >= 7 ? 404 : 200, f: day >= 7 ? 404 : 200 });
      // a's content outlives a while b references it
      expect((await env.RESULTS.head(sha(va))) !== null).toBe(day < 3);
      expect((await env.RESULTS.head(sha(vc))) !== null).toBe(day < 7);
      expect((await env.RESULTS.head(`images/${await sha256Hex(files.thumbnail)}.webp`)) !== null).toBe(day < 7);
      expect((await env.RESULTS.head(`images/${await sha256Hex(files.spritesheet)}.jpg`)) !== null).toBe(day < 7);
      if (day < 7) expect((await api(week.key, `/v1/videos/${c.id}/content?variant=spritesheet`)).status).toBe(200);
      expect(await status(week.key, q.id)).toBe(200);
      if (day === 1) expect(swept.jobs).toBeGreaterThanOrEqual(1);
      if (day === 3) expect(swept.objects).toBeGreaterThanOrEqual(1);
    }
    expect((await get(week.key, q.id)).status).toBe('queued');
    expect(await count('webhooks', `job_id = '${c.id}'`)).toBe(0); // its delivered webhook row went too
    expect(await count('nonces')).toBe(0); // every signed request's nonce is past its window a week later
    expect(await count('result_index', `sha256 = '${va.content_sha256}'`)).toBe(0); // no reuse of freed content
    expect(await count('job_artifacts')).toBe(0); // every artifact row went with its job (q, still queued, has none)
    expect((await createVideo(day1.key, seeded)).status).toBe('queued');
  });
});
