// Downloads: /v1/videos/:id/content (ETag, Range 206/416, 304) and the public /cdn URL through the Cache API.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../shared/api/keys.ts';
import { api, call, createVideo, expectProblem, lease, newKey, runOneJob, untilCached } from './helpers.ts';

describe('content and CDN', () => {
  let k: CreatedKey;
  let video: any;
  let bytes: Uint8Array;
  beforeAll(async () => {
    k = await newKey('viewer', { rate_limit_per_min: 10_000 });
    while (await lease(0, 'drain')) {}
    const v = await createVideo(k.key, { prompt: 'download me', size: '64x64', seed: 99 });
    await expectProblem(await api(k.key, `/v1/videos/${v.id}/content`), 409, 'video_not_ready');
    ({ bytes } = await runOneJob());
    video = await (await api(k.key, `/v1/videos/${v.id}`)).json();
  });
  const get = (range?: string, extra: Record<string, string> = {}) =>
    api(k.key, `/v1/videos/${video.id}/content`, { headers: { ...(range ? { range } : {}), ...extra } });

  it('serves the whole MP4 with ETag and length', async () => {
    const res = await get();
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"${video.content_sha256}"`);
    expect(res.headers.get('content-type')).toBe('video/mp4');
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(Number(res.headers.get('content-length'))).toBe(bytes.length);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
    expect(video.download_url).toBe(`http://edge.test/v1/videos/${video.id}/content`);
  });

  it.each([
    ['bytes=0-99', 0, 100],
    ['bytes=100-', 100, 4096 - 100],
    ['bytes=-16', 4096 - 16, 16],
    ['bytes=4000-999999', 4000, 96],
  ])('Range %s → 206', async (range, offset, length) => {
    const res = await get(range);
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes ${offset}-${offset + length - 1}/${bytes.length}`);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes.subarray(offset, offset + length));
  });

  it.each(['bytes=5000-6000', 'bytes=-0', 'bytes=abc', 'bytes=0-1,5-9', 'items=0-1', 'bytes=9-3'])('Range %s → 416', async (range) => {
    const res = await get(range);
    expect(res.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
    await expectProblem(res, 416, 'range_not_satisfiable');
  });

  it('honours If-None-Match and a stale If-Range', async () => {
    expect((await get(undefined, { 'if-none-match': `"${video.content_sha256}"` })).status).toBe(304);
    const res = await get('bytes=0-9', { 'if-range': '"something-else"' });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });

  it('serves the CDN URL until its expiry, from the Cache API on repeats, without auth or the job store', async () => {
    expect(video.cdn_url).toMatch(/^http:\/\/edge\.test\/cdn\/[A-Za-z0-9_-]{22}\/\d+\/[0-9a-f]{64}\.mp4$/);
    const path = new URL(video.cdn_url).pathname;
    expect(Number(path.split('/')[3])).toBe(video.expires_at);
    const maxAge = (res: Response) => Number(/^public, max-age=(\d+), immutable$/.exec(res.headers.get('cache-control') ?? '')?.[1]);
    const first = await call(path);
    expect(first.status).toBe(200);
    const left = video.expires_at - Date.now() / 1000;
    expect(maxAge(first)).toBeLessThanOrEqual(left);
    expect(maxAge(first)).toBeGreaterThan(left - 5);
    expect(first.headers.get('etag')).toBe(`"${video.content_sha256}"`);
    expect(first.headers.get('x-uvit-cache')).toBe('miss');
    expect(new Uint8Array(await first.arrayBuffer())).toEqual(bytes);
    await untilCached(path);
    // Remove the R2 object: a repeat must still succeed, from the cache alone.
    await env.RESULTS.delete(`videos/${video.content_sha256}.mp4`);
    const second = await call(path);
    expect(second.headers.get('x-uvit-cache')).toBe('hit');
    expect(maxAge(second)).toBeLessThanOrEqual(video.expires_at - Date.now() / 1000);
    expect(new Uint8Array(await second.arrayBuffer())).toEqual(bytes);
    const part = await call(path, { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(bytes.subarray(10, 20));
    await env.RESULTS.put(`videos/${video.content_sha256}.mp4`, bytes);
  });

  it.each(['bytes=999999-', 'bytes=abc', 'bytes=0-1,5-9', 'bytes=-0'])('CDN Range %s → 416 problem+json (miss or hit)', async (range) => {
    const path = new URL(video.cdn_url).pathname;
    await (await call(path)).arrayBuffer(); // cached
    await expectProblem(await call(path, { headers: { range } }), 416, 'range_not_satisfiable');
  });

  it('refuses guessed or altered CDN tokens', async () => {
    const [, , token, exp, file] = new URL(video.cdn_url).pathname.split('/');
    const wrong = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    await expectProblem(await call(`/cdn/${wrong}/${exp}/${file}`), 404, 'not_found');
    await expectProblem(await call(`/cdn/${token}/${exp}/${'0'.repeat(64)}.mp4`), 404, 'not_found');
    await expectProblem(await call(`/cdn/${token}/${Number(exp) + 86_400}/${file}`), 404, 'not_found'); // a longer life is not the signed one
    await expectProblem(await call(`/cdn/${token}/${exp}/x.mp4`), 404, 'not_found');
    await expectProblem(await call(`/cdn/${token}/${file}`), 404, 'not_found');
  });
});
