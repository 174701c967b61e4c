// HTTP conventions clients expect: x-request-id everywhere, x-ratelimit-*, x-should-retry: false on final 409s,
// secure headers, CORS on /openapi.json, result privacy between tenants, and what revoking a key stops.
import { describe, expect, it } from 'vitest';
import { LEASE_PATHS } from '../../shared/lease.ts';
import { api, call, createVideo, expectProblem, lease, newKey, runOneJob, signed, uploadResult, fakeMp4 } from './helpers.ts';

const admin = { authorization: 'Bearer test-admin-token' };

describe('HTTP conventions', () => {
  it('puts an x-request-id on every response: the caller\'s when well-formed, else a fresh one', async () => {
    const k = await newKey('rid');
    const responses = [
      await call('/healthz'),
      await call('/nope'),
      await call('/v1/videos'),
      await api(k.key, '/v1/videos/video_missing'),
      await call('/cdn/x/1/y.mp4'),
      await call('/openapi.json'),
      await signed('POST', LEASE_PATHS.heartbeat('lease_unknown'), { progress: 1 }),
    ];
    const ids = responses.map((r) => r.headers.get('x-request-id'));
    for (const id of ids) expect(id).toMatch(/^req_[0-9a-f]{24}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect((await call('/healthz', { headers: { 'x-request-id': 'trace-abc.123:1' } })).headers.get('x-request-id')).toBe('trace-abc.123:1');
    for (const bad of ['has space', 'x'.repeat(129), 'semi;colon'])
      expect((await call('/healthz', { headers: { 'x-request-id': bad } })).headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('reports the key\'s rate limit in x-ratelimit-limit / -remaining / -reset, and 429s with Retry-After', async () => {
    const k = await newKey('rate-headers', { rate_limit_per_min: 3 });
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await api(k.key, '/v1/videos');
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBe('3');
      seen.push(Number(res.headers.get('x-ratelimit-remaining')));
      expect(Number(res.headers.get('x-ratelimit-reset'))).toBeGreaterThan(0);
    }
    expect(seen).toEqual([2, 1, 0]);
    const limited = await api(k.key, '/v1/videos/video_x');
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    await expectProblem(limited, 429, 'rate_limited');
  });

  it('marks final 409s x-should-retry: false (the openai SDK retries 409 by default), not a not-yet-ready video', async () => {
    const k = await newKey('final-409', { rate_limit_per_min: 1000 });
    const post = (idem: string, prompt: string) =>
      api(k.key, '/v1/videos', { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': idem }, body: JSON.stringify({ prompt, size: '64x64' }) });
    await (await post('same', 'a')).arrayBuffer();
    const reused = await post('same', 'b');
    expect(reused.headers.get('x-should-retry')).toBe('false');
    await expectProblem(reused, 409, 'idempotency_key_reused');
    const v = await createVideo(k.key, { prompt: 'not yet', size: '64x64' });
    const notReady = await api(k.key, `/v1/videos/${v.id}/content`);
    expect(notReady.headers.get('x-should-retry')).toBeNull();
    await expectProblem(notReady, 409, 'video_not_ready');
    await (await api(k.key, `/v1/videos/${v.id}/cancel`, { method: 'POST' })).arrayBuffer();
    const again = await api(k.key, `/v1/videos/${v.id}/cancel`, { method: 'POST' });
    expect(again.headers.get('x-should-retry')).toBe('false');
    await expectProblem(again, 409, 'video_not_cancellable');
  });

  it('sends secure headers; JSON is same-origin with a locking CSP, /openapi.json is readable cross-origin', async () => {
    const res = await call('/v1/videos');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(res.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const doc = await call('/openapi.json', { headers: { origin: 'https://docs.example' } });
    expect(doc.status).toBe(200);
    expect(doc.headers.get('access-control-allow-origin')).toBe('*');
    expect(doc.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    const pre = await call('/openapi.json', { method: 'OPTIONS', headers: { origin: 'https://docs.example', 'access-control-request-method': 'GET' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('result privacy between tenants', () => {
  it("does not answer tenant B's identical seeded request from tenant A's result: B waits for its own generation", async () => {
    while (await lease(0, 'drain')) {}
    const a = await newKey('tenant-a');
    const b = await newKey('tenant-b');
    const body = { prompt: 'private result', size: '64x64', seed: 4242 };
    await createVideo(a.key, body);
    await runOneJob();
    expect((await createVideo(a.key, body)).cached).toBe(true); // A's own repeat is a hit
    const vb = await createVideo(b.key, body);
    expect(vb).toMatchObject({ status: 'queued', cached: false, content_sha256: null, cdn_url: null });
    // B's answer is only as fast as a generation: a backend has to lease and run B's job
    const g = await lease(0);
    expect(g?.job.id).toBe(vb.id);
    expect((await uploadResult(g!.lease_id, fakeMp4(g!.job.params_hash))).status).toBe(200);
    expect((await (await api(b.key, `/v1/videos/${vb.id}`)).json<any>()).cached).toBe(false);
  });

  it('shares results across owners only between keys that opt in', async () => {
    while (await lease(0, 'drain')) {}
    const a = await newKey('share-a', { share_results: true });
    const b = await newKey('share-b', { share_results: true });
    const c = await newKey('share-c');
    const body = { prompt: 'shared result', size: '64x64', seed: 77 };
    await createVideo(a.key, body);
    await runOneJob();
    expect(await createVideo(b.key, body)).toMatchObject({ status: 'completed', cached: true });
    expect(await createVideo(c.key, body)).toMatchObject({ status: 'queued', cached: false });
  });
});

describe('revoking a key', () => {
  it('cancels its queued and running jobs: the driver is told at its next heartbeat, its upload is refused', async () => {
    while (await lease(0, 'drain')) {}
    const k = await newKey('to-revoke', { rate_limit_per_min: 1000 });
    const running = await createVideo(k.key, { prompt: 'running', size: '64x64' });
    const g = await lease(0);
    expect(g?.job.id).toBe(running.id);
    const queued = await createVideo(k.key, { prompt: 'queued', size: '64x64' });
    expect((await call(`/admin/v1/keys/${k.id}`, { method: 'DELETE', headers: admin })).status).toBe(200);
    const hb = await signed('POST', LEASE_PATHS.heartbeat(g!.lease_id), { progress: 50 });
    expect(await hb.json()).toMatchObject({ cancel: true });
    await expectProblem(await uploadResult(g!.lease_id, fakeMp4('revoked')), 409, 'lease_lost');
    expect(await lease(0)).toBeNull(); // the queued one is gone from the queue
    const list = await call('/internal/v1/queue', { headers: { authorization: 'Bearer test-metrics-token' } });
    expect((await list.json<any>()).queued).toBe(0);
    expect(queued.status).toBe('queued');
  });

  it('drops its undelivered webhooks', async () => {
    while (await lease(0, 'drain')) {}
    const k = await newKey('revoke-hooks');
    const url = 'http://hooks.test/fail-100/revoked';
    await createVideo(k.key, { prompt: 'hooked', size: '64x64', webhook_url: url });
    await runOneJob();
    const deliveries = async () => (await (await fetch('http://hooks.test/__log')).json<{ url: string }[]>()).filter((d) => d.url === url).length;
    for (let i = 0; i < 100 && (await deliveries()) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await deliveries()).toBeGreaterThan(0); // the first attempt failed; retries are due every 100·2^n ms
    await call(`/admin/v1/keys/${k.id}`, { method: 'DELETE', headers: admin });
    const after = await deliveries();
    await new Promise((r) => setTimeout(r, 800));
    expect(await deliveries()).toBe(after);
  });
});
