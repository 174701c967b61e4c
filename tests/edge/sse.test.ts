// SSE progress: GET /v1/videos/:id/events pushes queued → in_progress → progress → completed, then closes.
import { env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { JobStore } from '../../edge/jobs/JobStore.ts';
import type { SseHub } from '../../edge/jobs/sse.ts';
import { LEASE_PATHS } from '../../shared/lease.ts';
import { api, createVideo, expectProblem, fakeMp4, lease, newKey, signed, uploadResult } from './helpers.ts';

async function* events(res: Response): AsyncGenerator<{ event: string; data: any }> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buf += value;
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = /^event: (.*)$/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (ev && data) yield { event: ev, data: JSON.parse(data) };
    }
  }
}

describe('SSE', () => {
  it('streams the lifecycle and ends after the terminal event', async () => {
    const k = await newKey('watcher');
    while (await lease(0, 'drain')) {}
    const v = await createVideo(k.key, { prompt: 'watch me', size: '64x64' });
    const res = await api(k.key, `/v1/videos/${v.id}/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const it = events(res);
    const next = async () => (await it.next()).value!;
    expect((await next()).event).toBe('video.queued');
    const g = (await lease(1000))!;
    expect((await next()).event).toBe('video.in_progress');
    await signed('POST', LEASE_PATHS.heartbeat(g.lease_id), { progress: 55.4 });
    const p = await next();
    expect(p).toMatchObject({ event: 'video.in_progress', data: { progress: 55 } });
    expect((await uploadResult(g.lease_id, fakeMp4('sse'))).status).toBe(200);
    const done = await next();
    expect(done.event).toBe('video.completed');
    expect(done.data.cdn_url).toMatch(/^http:\/\/edge\.test\/cdn\//);
    expect((await it.next()).done).toBe(true);
  });

  it('sends one terminal event for a finished video, and 404 to other keys', async () => {
    const k = await newKey('w2');
    const v = await createVideo(k.key, { prompt: 'quick', size: '64x64' });
    await api(k.key, `/v1/videos/${v.id}/cancel`, { method: 'POST' });
    const all = [];
    const stream = await api(k.key, `/v1/videos/${v.id}/events`);
    expect(stream.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(Number(stream.headers.get('x-ratelimit-limit'))).toBeGreaterThan(0);
    for await (const e of events(stream)) all.push(e.event);
    expect(all).toEqual(['video.cancelled']);
    const other = await newKey('w3');
    // the refusal is the store's own problem+json response with its status, not a private code the route rewrites
    const refused = await api(other.key, `/v1/videos/${v.id}/events`);
    expect(Number(refused.headers.get('x-ratelimit-limit'))).toBeGreaterThan(0);
    await expectProblem(refused, 404, 'video_not_found');
  });
});

describe('SSE subscribers', () => {
  const stub = () => env.JOBS.get(env.JOBS.idFromName('global')) as DurableObjectStub<JobStore>;
  const open = () => runInDurableObject(stub(), (o) => (o as unknown as { sse: SseHub }).sse.size());

  it('are dropped when the client disconnects while the job stays queued', async () => {
    const k = await newKey('leaver');
    const v = await createVideo(k.key, { prompt: 'nobody waits for me', size: '64x64' });
    const before = await open();
    const streams = await Promise.all([0, 1, 2].map(() => api(k.key, `/v1/videos/${v.id}/events`)));
    const readers = streams.map((r) => r.body!.getReader());
    for (const r of readers) expect((await r.read()).done).toBe(false); // the opening frame
    expect(await open()).toBe(before + 3);
    for (const r of readers) await r.cancel();
    let n = await open();
    for (let i = 0; i < 50 && n > before; i++) {
      await new Promise((r) => setTimeout(r, 20));
      n = await open();
    }
    expect(n).toBe(before);
    await api(k.key, `/v1/videos/${v.id}/cancel`, { method: 'POST' });
  });
});
