// The public CDN path: one canonical cache key (a query string hits it, other spellings are refused), background
// cache fill, expiry signed into the URL and bounding every cache lifetime, purge on DELETE, CORS for a <video>.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../shared/api/keys.ts';
import type { Video } from '../../shared/api/videos.ts';
import { api, call, createVideo, expectProblem, lease, newKey, runOneJob, untilCached } from './helpers.ts';

async function completed(key: string, prompt: string): Promise<{ video: Video; bytes: Uint8Array; path: string }> {
  while (await lease(0, 'drain')) {}
  const v = await createVideo(key, { prompt, size: '64x64', seed: 5 });
  const { bytes } = await runOneJob();
  const video = await (await api(key, `/v1/videos/${v.id}`)).json<Video>();
  return { video, bytes, path: new URL(video.cdn_url!).pathname };
}

const r2 = (sha: string) => `videos/${sha}.mp4`;

describe('CDN', () => {
  let k: CreatedKey;
  beforeAll(async () => {
    k = await newKey('cdn', { rate_limit_per_min: 10_000 });
  });

  it('answers N requests with different query strings from one cache entry (one R2 read)', async () => {
    const { video, bytes, path } = await completed(k.key, 'query strings');
    const first = await call(`${path}?t=0`);
    expect(first.headers.get('x-uvit-cache')).toBe('miss');
    expect(new Uint8Array(await first.arrayBuffer())).toEqual(bytes);
    await untilCached(path); // stored under the query-less key
    await env.RESULTS.delete(r2(video.content_sha256!)); // every further byte must come from the cache
    for (let i = 1; i <= 10; i++) {
      const res = await call(`${path}?t=${i}&cb=${'x'.repeat(i)}`);
      expect(res.headers.get('x-uvit-cache')).toBe('hit');
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
    }
    await env.RESULTS.put(r2(video.content_sha256!), bytes);
  });

  it('fills the cache after a ranged miss too', async () => {
    const { bytes, path } = await completed(k.key, 'ranged first');
    const part = await call(path, { headers: { range: 'bytes=0-9' } });
    expect(part.status).toBe(206);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(bytes.subarray(0, 10));
    await untilCached(path);
    expect((await call(path)).headers.get('x-uvit-cache')).toBe('hit');
  });

  it.each([
    ['percent-encoded token', (p: string) => p.replace(/^\/cdn\/(.)/, (_, ch: string) => `/cdn/%${ch.charCodeAt(0).toString(16).toUpperCase()}`)],
    ['percent-encoded hash', (p: string) => p.replace(/\/([0-9a-f])([0-9a-f]{63})\.mp4$/, (_, ch: string, rest: string) => `/%${ch.charCodeAt(0).toString(16)}${rest}.mp4`)],
    ['double slash', (p: string) => p.replace('/cdn/', '/cdn//')],
    ['upper-case extension', (p: string) => p.replace('.mp4', '.MP4')],
    ['trailing slash', (p: string) => `${p}/`],
  ])('refuses a non-canonical spelling (%s) with 404, cached or not', async (_name, spell) => {
    const { path } = await completed(k.key, `spelling ${_name}`);
    expect((await call(path)).status).toBe(200);
    await untilCached(path);
    const other = spell(path);
    expect(other).not.toBe(path);
    await expectProblem(await call(other), 404);
  });

  it('after DELETE, no spelling of the URL answers from the cache', async () => {
    const { video, path } = await completed(k.key, 'deleted');
    expect((await call(path)).status).toBe(200);
    await untilCached(path);
    expect((await api(k.key, `/v1/videos/${video.id}`, { method: 'DELETE' })).status).toBe(200);
    expect(await caches.default.match(`http://edge.test${path}`)).toBeUndefined();
    await expectProblem(await call(path), 404, 'content_missing');
    await expectProblem(await call(`${path}?x=1`), 404, 'content_missing');
    await expectProblem(await call(path.replace(/^\/cdn\/(.)/, (_, ch: string) => `/cdn/%${ch.charCodeAt(0).toString(16)}`)), 404, 'not_found');
    expect(await env.RESULTS.head(r2(video.content_sha256!))).toBeNull();
  });

  it('stops serving at the signed expiry even from the cache', async () => {
    // 5 s, not less: a response whose max-age has already fallen to 0 is never cached, and under load the
    // completion and the first GET can be seconds apart.
    const short = await newKey('cdn-short', { result_ttl_seconds: 5 });
    const { video, path } = await completed(short.key, 'short-lived');
    expect(video.expires_at! - video.completed_at!).toBeLessThanOrEqual(5);
    const res = await call(path);
    expect(res.headers.get('cache-control')).toMatch(/^public, max-age=[1-5], immutable$/);
    await res.arrayBuffer();
    await untilCached(path);
    await new Promise((r) => setTimeout(r, Math.max(0, video.expires_at! * 1000 - Date.now()) + 50));
    await expectProblem(await call(path), 404, 'not_found');
  });

  it('lets a page on another origin play it: CORS preflight and response headers, cross-origin CORP, no CSP', async () => {
    const { path } = await completed(k.key, 'cors');
    const pre = await call(path, {
      method: 'OPTIONS',
      headers: { origin: 'https://player.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'range' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-methods')).toContain('GET');
    expect(pre.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('range');
    const res = await call(path, { headers: { origin: 'https://player.example', range: 'bytes=0-99' } });
    expect(res.status).toBe(206);
    await res.arrayBuffer();
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-expose-headers')?.toLowerCase()).toContain('content-range');
    expect(res.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(res.headers.get('content-security-policy')).toBeNull();
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });
});
