// Webhooks: signed (Standard Webhooks layout, HMAC-SHA256 with timestamp), retried with backoff until 2xx.
import { describe, expect, it } from 'vitest';
import { LEASE_PATHS } from '../../shared/lease.ts';
import { signWebhook, verifyWebhook } from '../../shared/api/webhooks.ts';
import { createVideo, lease, newKey, runOneJob, signed } from './helpers.ts';

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
});
