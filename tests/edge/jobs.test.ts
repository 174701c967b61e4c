// Job semantics seen by API callers: idempotency, cache hits on seeded requests, listing, bounded queue.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../shared/api/keys.ts';
import { api, call, createVideo, expectProblem, lease, newKey, runOneJob } from './helpers.ts';

describe('jobs', () => {
  let k: CreatedKey;
  beforeAll(async () => {
    k = await newKey('jobs', { rate_limit_per_min: 10_000 });
  });

  it('honours Idempotency-Key: same body → same video, other body → 409', async () => {
    const body = { prompt: 'idem', size: '64x64', seconds: '2' };
    const a = await api(k.key, '/v1/videos', { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'abc-1' }, body: JSON.stringify(body) });
    const b = await api(k.key, '/v1/videos', { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'abc-1' }, body: JSON.stringify(body) });
    const va = await a.json<any>();
    expect((await b.json<any>()).id).toBe(va.id);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    const f = new FormData(); // same request as multipart → same canonical body → replay
    f.set('prompt', 'idem'); f.set('size', '64x64'); f.set('seconds', '2');
    const m = await api(k.key, '/v1/videos', { method: 'POST', headers: { 'idempotency-key': 'abc-1' }, body: f });
    expect((await m.json<any>()).id).toBe(va.id);
    const c = await api(k.key, '/v1/videos', { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'abc-1' }, body: JSON.stringify({ ...body, prompt: 'other' }) });
    expect((await expectProblem(c, 409, 'idempotency_key_reused')).detail).toContain(va.id);
    const other = await newKey('other-tenant'); // keys are scoped per API key
    const d = await api(other.key, '/v1/videos', { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'abc-1' }, body: JSON.stringify(body) });
    expect((await d.json<any>()).id).not.toBe(va.id);
  });

  it("answers a repeated seeded request from the cache at once, for the owner's keys, with its own id and expiry", async () => {
    while (await lease(0, 'drain')) {}
    const body = { prompt: 'cache me', size: '64x64', seconds: 2, seed: 1234, steps: 8 };
    const first = await createVideo(k.key, body);
    const { bytes } = await runOneJob();
    const done = await (await api(k.key, `/v1/videos/${first.id}`)).json<any>();
    expect(done.status).toBe('completed');
    const again = await createVideo(k.key, body);
    expect(again).toMatchObject({ status: 'completed', cached: true, progress: 100, content_sha256: done.content_sha256 });
    expect(again.id).not.toBe(first.id);
    expect(again.expires_at).toBeGreaterThanOrEqual(done.expires_at);
    const sibling = await newKey('jobs'); // another key of the same owner shares the owner's results
    const theirs = await createVideo(sibling.key, body);
    expect(theirs).toMatchObject({ status: 'completed', cached: true });
    const dl = await api(sibling.key, `/v1/videos/${theirs.id}/content`);
    expect(new Uint8Array(await dl.arrayBuffer())).toEqual(bytes);
    // different params or no seed → a real job
    expect((await createVideo(k.key, { ...body, seed: 1235 })).status).toBe('queued');
    const { seed: _s, ...unseeded } = body;
    expect((await createVideo(k.key, unseeded)).status).toBe('queued');
    // deleting one copy keeps the shared content for the others; deleting the last one removes it, CDN copy included
    const cdnPath = new URL(done.cdn_url).pathname;
    expect((await call(cdnPath)).status).toBe(200);
    await api(k.key, `/v1/videos/${first.id}`, { method: 'DELETE' });
    await api(k.key, `/v1/videos/${again.id}`, { method: 'DELETE' });
    expect((await api(sibling.key, `/v1/videos/${theirs.id}/content`)).status).toBe(200);
    const theirCdn = new URL(theirs.cdn_url!).pathname;
    expect((await call(theirCdn)).status).toBe(200);
    await api(sibling.key, `/v1/videos/${theirs.id}`, { method: 'DELETE' });
    await expectProblem(await call(theirCdn), 404, 'content_missing');
    await expectProblem(await call(cdnPath), 404, 'content_missing');
    expect(await env.RESULTS.head(`videos/${done.content_sha256}.mp4`)).toBeNull();
    expect((await createVideo(k.key, body)).status).toBe('queued'); // no cache hit on deleted content
  });

  it('lists own videos with cursor, limit and order', async () => {
    const me = await newKey('lister');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createVideo(me.key, { prompt: `clip ${i}`, size: '64x64' })).id);
    const p1 = await (await api(me.key, '/v1/videos?limit=2')).json<any>();
    expect(p1).toMatchObject({ object: 'list', has_more: true, first_id: ids[4], last_id: ids[3] });
    const p2 = await (await api(me.key, `/v1/videos?limit=2&after=${p1.last_id}`)).json<any>();
    expect(p2.data.map((v: any) => v.id)).toEqual([ids[2], ids[1]]);
    const p3 = await (await api(me.key, `/v1/videos?limit=2&after=${p2.last_id}`)).json<any>();
    expect(p3).toMatchObject({ has_more: false, first_id: ids[0], last_id: ids[0] });
    const asc = await (await api(me.key, '/v1/videos?order=asc&limit=100')).json<any>();
    expect(asc.data.map((v: any) => v.id)).toEqual(ids);
  });

  it('bounds work per key and overall with 429 + Retry-After', async () => {
    const small = await newKey('small', { max_active_jobs: 2 });
    await createVideo(small.key, { prompt: 'a', size: '64x64' });
    await createVideo(small.key, { prompt: 'b', size: '64x64' });
    const r = await api(small.key, '/v1/videos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'c', size: '64x64' }) });
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    await expectProblem(r, 429, 'too_many_active_jobs');

    while (await lease(0, 'drain')) {}
    const big = await newKey('big', { max_active_jobs: 1000, rate_limit_per_min: 10_000 });
    for (let i = 0; i < 50; i++) await createVideo(big.key, { prompt: `fill ${i}`, size: '64x64' }); // MAX_QUEUE = 50 in tests
    const full = await api(big.key, '/v1/videos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'one too many', size: '64x64' }) });
    expect(full.headers.get('retry-after')).toBe('30');
    expect((await expectProblem(full, 429, 'queue_full')).detail).toMatch(/50 of 50/);
    while (await lease(0, 'drain')) {}
  });

  it('reports queue depth per model to autoscalers (METRICS_TOKEN)', async () => {
    while (await lease(0, 'drain')) {}
    const q = await newKey('queue-depth', { rate_limit_per_min: 10_000 });
    for (let i = 0; i < 3; i++) await createVideo(q.key, { prompt: `depth ${i}`, size: '64x64' });
    await lease(0, 'depth-group');
    const res = await call('/internal/v1/queue?model=uvit-t2v-demo', { headers: { authorization: 'Bearer test-metrics-token' } });
    const s = await res.json<any>();
    expect(s).toMatchObject({ model: 'uvit-t2v-demo', queued: 2 });
    expect(s.in_progress).toBeGreaterThanOrEqual(1);
    expect(s.groups).toBeGreaterThanOrEqual(1);
    const all = await (await call('/internal/v1/queue', { headers: { authorization: 'Bearer test-admin-token' } })).json<any>();
    expect(all.queued).toBe(2);
    await expectProblem(await call('/internal/v1/queue', { headers: { authorization: 'Bearer nope' } }), 401, 'invalid_metrics_token');
    await expectProblem(await call('/internal/v1/queue?model=x', { headers: { authorization: 'Bearer test-metrics-token' } }), 404, 'unknown_model');
    while (await lease(0, 'drain')) {}
  });

  it('lists models with their limits', async () => {
    const m = await (await api(k.key, '/v1/models')).json<any>();
    expect(m.object).toBe('list');
    expect(m.data[0]).toMatchObject({ id: 'uvit-t2v-demo', object: 'model', max_seconds: 16 });
    expect(m.data[0].backend_groups).toBeGreaterThanOrEqual(1); // the drain group above polled within the minute
  });
});
