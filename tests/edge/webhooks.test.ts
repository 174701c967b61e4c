// Webhooks: signed (Standard Webhooks layout, HMAC-SHA256 with timestamp), retried with backoff until 2xx.
import { describe, expect, it } from 'vitest';
import { LEASE_PATHS } from '../../shared/lease.ts';
import { signWebhook, verifyWebhook } from '../../shared/api/webhooks.ts';
import { api, createVideo, expectProblem, fakeMp4, lease, newKey, runOneJob, signed, uploadResult } from './helpers.ts';

type Delivery = { url: string; headers: Record<string, string>; body: string; at: number };

async function deliveries(url: string, n: number, timeoutMs = 8000): Promise<Delivery[]> {
  const t0 = Date.now();
  for (;;) {
    const all = await (await fetch('http://hooks.test/__log')).json<Delivery[]>();
    const mine = all.filter((d) => d.url === url);
    if (mine.length >= n || Date.now() - t0 > timeoutMs) return mine;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('webhooks', () => {
  it('signs completion events and retries failed deliveries with backoff', async () => {
    const k = await newKey('hooked');
    while (await lease(0, 'drain')) {}
    const url = `http://hooks.test/fail-2/${crypto.randomUUID()}`;
    const v = await createVideo(k.key, { prompt: 'notify me', size: '64x64', webhook_url: url });
    await runOneJob();
    const got = await deliveries(url, 3);
    expect(got.length).toBe(3); // 500, 500, then 204
    const ids = new Set(got.map((d) => d.headers['webhook-id']));
    expect(ids.size).toBe(1); // same event id on every retry
    // WEBHOOK_BACKOFF_MS = 100 in tests: retries come ≥ 100 ms, then ≥ 200 ms apart
    expect(got[1].at - got[0].at).toBeGreaterThanOrEqual(90);
    expect(got[2].at - got[1].at).toBeGreaterThanOrEqual(190);
    const last = got[2];
    const h = new Headers(last.headers);
    expect(await verifyWebhook(k.webhook_secret, h, last.body)).toBe(true);
    expect(await verifyWebhook(k.webhook_secret, h, last.body.replace('completed', 'failed'))).toBe(false);
    expect(await verifyWebhook('whsec_' + btoa('another secret'), h, last.body)).toBe(false);
    const stale = new Headers(last.headers);
    stale.set('webhook-timestamp', String(Number(h.get('webhook-timestamp')) - 3600));
    stale.set('webhook-signature', await signWebhook(k.webhook_secret, h.get('webhook-id')!, Number(stale.get('webhook-timestamp')), last.body));
    expect(await verifyWebhook(k.webhook_secret, stale, last.body)).toBe(false);
    const event = JSON.parse(last.body);
    expect(event).toMatchObject({ object: 'event', type: 'video.completed', data: { id: v.id, status: 'completed' } });
  });

  it('sends video.failed for a job that fails', async () => {
    const k = await newKey('hooked2');
    while (await lease(0, 'drain')) {}
    const url = `http://hooks.test/ok/${crypto.randomUUID()}`;
    const v = await createVideo(k.key, { prompt: 'fail me', size: '64x64', webhook_url: url });
    const g = (await lease(1000))!;
    await signed('POST', LEASE_PATHS.fail(g.lease_id), { reason: 'out of memory', retryable: false });
    const [d] = await deliveries(url, 1);
    const event = JSON.parse(d.body);
    expect(event).toMatchObject({ type: 'video.failed', data: { id: v.id, status: 'failed', error: { message: 'out of memory' } } });
    expect(await verifyWebhook(k.webhook_secret, new Headers(d.headers), d.body)).toBe(true);
  });

  it('is verified by the openai SDK (webhooks.unwrap / verifySignature), and refused under another secret', async () => {
    const k = await newKey('sdk-hooked');
    while (await lease(0, 'drain')) {}
    const url = `http://hooks.test/ok/${crypto.randomUUID()}`;
    const v = await createVideo(k.key, { prompt: 'verify me with the sdk', size: '64x64', webhook_url: url });
    await runOneJob();
    await deliveries(url, 1);
    const verify = async (secret: string) =>
      (await fetch('http://hooks.test/__verify', { method: 'POST', body: JSON.stringify({ url, secret }) })).json<{ ok: boolean; event?: any; error?: string }>();
    const good = await verify(k.webhook_secret);
    expect(good.error).toBeUndefined();
    expect(good).toMatchObject({ ok: true, event: { type: 'video.completed', data: { id: v.id } } });
    const bad = await verify(`whsec_${btoa('not the secret of this key')}`);
    expect(bad).toMatchObject({ ok: false, error: expect.stringMatching(/signature does not match/) });
  });

  it('sends only completed and failed by default; in_progress and progress (rate-limited) on request', async () => {
    const k = await newKey('filtered');
    while (await lease(0, 'drain')) {}
    const quiet = `http://hooks.test/ok/${crypto.randomUUID()}`;
    await createVideo(k.key, { prompt: 'default events', size: '64x64', webhook_url: quiet });
    const g1 = (await lease(0))!;
    for (const p of [10, 50]) await signed('POST', LEASE_PATHS.heartbeat(g1.lease_id), { progress: p });
    await uploadResult(g1.lease_id, fakeMp4('default events'));
    const loud = `http://hooks.test/ok/${crypto.randomUUID()}`;
    await createVideo(k.key, { prompt: 'all events', size: '64x64', webhook_url: loud, webhook_events: ['video.in_progress', 'video.progress', 'video.completed'] });
    const g2 = (await lease(0))!;
    for (const p of [10, 20, 30, 40]) expect((await signed('POST', LEASE_PATHS.heartbeat(g2.lease_id), { progress: p })).status).toBe(200);
    await uploadResult(g2.lease_id, fakeMp4('all events'));
    const types = async (url: string, n: number) => (await deliveries(url, n)).map((d) => JSON.parse(d.body).type);
    // one progress event per 10 s; deliveries due together go out concurrently, so compare as a set
    expect((await types(loud, 3)).sort()).toEqual(['video.completed', 'video.in_progress', 'video.progress']);
    expect(await types(quiet, 1)).toEqual(['video.completed']);
    await new Promise((r) => setTimeout(r, 300));
    expect((await deliveries(loud, 4, 0)).length).toBe(3);
    expect((await deliveries(quiet, 2, 0)).length).toBe(1);
    const bad = await api(k.key, '/v1/videos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x', webhook_url: quiet, webhook_events: ['video.deleted'] }) });
    expect((await expectProblem(bad, 400, 'invalid_request')).errors[0].path).toBe('webhook_events.0');
  });
});
