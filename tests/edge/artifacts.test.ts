// Multi-artifact results: PUT …/artifacts/{name} for each file, then POST …/complete with their list, which completes
// the job all at once or not at all; each stored artifact is served as a content variant, and the video object lists
// each variant's signed CDN URL.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { LEASE_PATHS, MAX_PUT_BYTES, sha256Hex } from '../../shared/lease.ts';
import type { CreatedKey } from '../../shared/api/keys.ts';
import { cdnPath } from '../../edge/cache/cdnToken.ts';
import type { Video, VideoList } from '../../shared/api/videos.ts';
import { api, artifactOf, call, createVideo, expectProblem, fakeMp4, lease, newKey, putArtifact, runOneJob, runOneJobWithVariants, signed, untilCached } from './helpers.ts';

const status = async (key: string, id: string) => (await api(key, `/v1/videos/${id}`)).json<any>();

describe('artifacts and complete', () => {
  let k: CreatedKey;
  beforeAll(async () => {
    k = await newKey('artifacts', { rate_limit_per_min: 10_000 });
    while (await lease(0, 'drain')) {}
  });

  it('stores each artifact, completes the job with all of them, and serves each as a variant', async () => {
    const v = await createVideo(k.key, { prompt: 'three files', size: '64x64', seed: 5 });
    const g = (await lease(1000))!;
    const mp4 = fakeMp4('video-bytes', 5000);
    const thumb = fakeMp4('thumb-bytes', 700);
    const sheet = fakeMp4('sheet-bytes', 1900);
    const put = await putArtifact(g.lease_id, 'thumbnail', thumb, 'image/webp');
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual(await artifactOf('thumbnail', thumb, 'image/webp'));
    expect((await putArtifact(g.lease_id, 'video', mp4, 'video/mp4')).status).toBe(200);
    expect((await putArtifact(g.lease_id, 'spritesheet', sheet, 'image/jpeg')).status).toBe(200);
    // uploaded is not completed
    expect((await status(k.key, v.id)).status).toBe('in_progress');
    const artifacts = [await artifactOf('video', mp4, 'video/mp4'), await artifactOf('thumbnail', thumb, 'image/webp'), await artifactOf('spritesheet', sheet, 'image/jpeg')];
    const done = await signed('POST', LEASE_PATHS.complete(g.lease_id), { artifacts });
    expect(done.status).toBe(200);
    expect(await done.json()).toEqual({ id: v.id, status: 'completed', sha256: artifacts[0].sha256, bytes: 5000, artifacts });
    const s = await status(k.key, v.id);
    expect(s).toMatchObject({ status: 'completed', content_sha256: artifacts[0].sha256, bytes: 5000 });
    for (const [variant, bytes, type, ext] of [['video', mp4, 'video/mp4', 'mp4'], ['thumbnail', thumb, 'image/webp', 'webp'], ['spritesheet', sheet, 'image/jpeg', 'jpg']] as const) {
      const res = await api(k.key, `/v1/videos/${v.id}/content?variant=${variant}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${v.id}${variant === 'video' ? '' : `-${variant}`}.${ext}"`);
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
    }
    const part = await api(k.key, `/v1/videos/${v.id}/content?variant=thumbnail`, { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(thumb.subarray(10, 20));
    await expectProblem(await api(k.key, `/v1/videos/${v.id}/content?variant=image-0`), 404, 'variant_not_found');
    await expectProblem(await api(k.key, `/v1/videos/${v.id}/content?variant=Thumbnail!`), 400, 'invalid_variant');
    // the lease is over: no second completion, no more uploads
    await expectProblem(await signed('POST', LEASE_PATHS.complete(g.lease_id), { artifacts }), 409, 'lease_lost');
    await expectProblem(await putArtifact(g.lease_id, 'thumbnail', thumb, 'image/webp'), 409, 'lease_lost');
  });

  it('lists the signed CDN URL of each variant, expiring with the video; each serves its bytes and type without a key', async () => {
    const seeded = { prompt: 'variant urls', size: '64x64', seed: 31 };
    const v = await createVideo(k.key, seeded);
    expect(v.variant_cdn_urls).toBeNull(); // not completed yet
    const { files } = await runOneJobWithVariants();
    const twin = await createVideo(k.key, seeded); // a cache hit: the same artifacts, its own expiry and signatures
    expect(twin.cached).toBe(true);
    const listed = (await (await api(k.key, '/v1/videos?limit=100')).json<VideoList>()).data;
    const types = { thumbnail: ['image/webp', 'webp'], spritesheet: ['image/jpeg', 'jpg'] } as const;
    for (const video of [(await status(k.key, v.id)) as Video, twin, listed.find((x) => x.id === v.id)!]) {
      const urls = video.variant_cdn_urls!;
      expect(Object.keys(urls).sort()).toEqual(['spritesheet', 'thumbnail']);
      for (const [name, [type, ext]] of Object.entries(types) as [keyof typeof types, (typeof types)[keyof typeof types]][]) {
        const sha = await sha256Hex(files[name]);
        // the video's own URL scheme: absolute, signed with the video's expires_at, the variant's hash and extension
        expect(urls[name]).toBe(`http://edge.test${await cdnPath('test-cdn-secret', sha, video.expires_at!, ext)}`);
        const sent = Date.now(); // the worker's clock reads the request's start, no earlier than this
        const res = await call(new URL(urls[name]).pathname);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe(type);
        expect(res.headers.get('etag')).toBe(`"${sha}"`);
        const maxAge = Number(/max-age=(\d+)/.exec(res.headers.get('cache-control') ?? '')?.[1]);
        expect(maxAge).toBeLessThanOrEqual(video.expires_at! - sent / 1000);
        expect(new Uint8Array(await res.arrayBuffer())).toEqual(files[name]);
      }
    }
  });

  it('lists no variant URLs for a video without variants', async () => {
    const v = await createVideo(k.key, { prompt: 'just the mp4', size: '64x64' });
    await runOneJob(); // PUT …/result: the MP4 alone
    const done = await status(k.key, v.id);
    expect(done.status).toBe('completed');
    expect(done.cdn_url).toMatch(/\.mp4$/);
    expect(done.variant_cdn_urls).toEqual({});
    await expectProblem(await api(k.key, `/v1/videos/${v.id}/content?variant=thumbnail`), 404, 'variant_not_found');
  });

  it('DELETE frees every artifact (R2 objects and CDN copies) unless another video still references it', async () => {
    const seeded = { prompt: 'delete variants', size: '64x64', seed: 77 };
    const v = await createVideo(k.key, seeded);
    const { files } = await runOneJobWithVariants();
    const twin = await createVideo(k.key, seeded); // the owner's cached copy: the same artifacts
    expect(twin.cached).toBe(true);
    const keys = [`videos/${await sha256Hex(files.video)}.mp4`, `images/${await sha256Hex(files.thumbnail)}.webp`, `images/${await sha256Hex(files.spritesheet)}.jpg`];
    // the thumbnail's CDN path, signed with the video's expiry as the edge signs them
    const thumbCdn = await cdnPath('test-cdn-secret', await sha256Hex(files.thumbnail), (await status(k.key, v.id)).expires_at, 'webp');
    const cdnRes = await call(thumbCdn);
    expect(cdnRes.status).toBe(200);
    expect(cdnRes.headers.get('content-type')).toBe('image/webp');
    expect(new Uint8Array(await cdnRes.arrayBuffer())).toEqual(files.thumbnail);
    await untilCached(thumbCdn);
    const twinThumb = await api(k.key, `/v1/videos/${twin.id}/content?variant=thumbnail`);
    expect(new Uint8Array(await twinThumb.arrayBuffer())).toEqual(files.thumbnail);
    expect((await api(k.key, `/v1/videos/${v.id}`, { method: 'DELETE' })).status).toBe(200);
    for (const key of keys) expect(await env.RESULTS.head(key)).not.toBeNull(); // the twin still references them
    expect(await caches.default.match(`http://edge.test${thumbCdn}`)).toBeUndefined(); // the deleted video's CDN copies are purged
    expect((await api(k.key, `/v1/videos/${twin.id}`, { method: 'DELETE' })).status).toBe(200);
    for (const key of keys) expect(await env.RESULTS.head(key)).toBeNull();
  });

  it('refuses a complete that names a missing or different artifact, and completes nothing', async () => {
    const v = await createVideo(k.key, { prompt: 'mismatch', size: '64x64' });
    const g = (await lease(1000))!;
    const mp4 = fakeMp4('mismatch-video', 3000);
    const thumb = fakeMp4('mismatch-thumb', 300);
    expect((await putArtifact(g.lease_id, 'video', mp4, 'video/mp4')).status).toBe(200);
    const video = await artifactOf('video', mp4, 'video/mp4');
    const missing = await expectProblem(await signed('POST', LEASE_PATHS.complete(g.lease_id), { artifacts: [video, await artifactOf('thumbnail', thumb, 'image/webp')] }), 422, 'artifacts_mismatch');
    expect(missing.detail).toMatch(/thumbnail: not uploaded under this lease/);
    const wrong = await expectProblem(await signed('POST', LEASE_PATHS.complete(g.lease_id), { artifacts: [{ ...video, bytes: 2999 }] }), 422, 'artifacts_mismatch');
    expect(wrong.detail).toMatch(/video: declared 2999 bytes/);
    const retyped = await expectProblem(await signed('POST', LEASE_PATHS.complete(g.lease_id), { artifacts: [{ ...video, content_type: 'image/png' }] }), 422, 'artifacts_mismatch');
    expect(retyped.detail).toMatch(/uploaded 3000 bytes video\/mp4/);
    await expectProblem(await signed('POST', LEASE_PATHS.complete(g.lease_id), { artifacts: [video, video] }), 400, 'invalid_request');
    await expectProblem(await signed('POST', LEASE_PATHS.complete(g.lease_id), { artifacts: [] }), 400, 'invalid_request');
    expect((await status(k.key, v.id)).status).toBe('in_progress');
    // a different lease's upload does not count for this one
    const other = await createVideo(k.key, { prompt: 'other lease', size: '64x64' });
    const g2 = (await lease(1000))!;
    expect((await putArtifact(g2.lease_id, 'thumbnail', thumb, 'image/webp')).status).toBe(200);
    await expectProblem(await signed('POST', LEASE_PATHS.complete(g.lease_id), { artifacts: [video, await artifactOf('thumbnail', thumb, 'image/webp')] }), 422, 'artifacts_mismatch');
    // and the lease still completes with what it did upload
    expect((await signed('POST', LEASE_PATHS.complete(g.lease_id), { artifacts: [video] })).status).toBe(200);
    expect((await status(k.key, v.id)).status).toBe('completed');
    expect((await status(k.key, other.id)).status).toBe('in_progress');
  });

  it('checks an artifact upload: name, content type, length, hash (nothing stored on a mismatch)', async () => {
    await createVideo(k.key, { prompt: 'checks', size: '64x64' });
    const g = (await lease(1000))!;
    const png = fakeMp4('png', 1000);
    await expectProblem(await putArtifact(g.lease_id, 'Image_0', png, 'image/png'), 400, 'invalid_artifact_name');
    await expectProblem(await putArtifact(g.lease_id, 'x'.repeat(33), png, 'image/png'), 400, 'invalid_artifact_name');
    await expectProblem(await putArtifact(g.lease_id, 'image-0', png, 'image/gif'), 415, 'unsupported_content_type');
    const declared = await sha256Hex(fakeMp4('something else', 1000));
    const bad = await expectProblem(await putArtifact(g.lease_id, 'image-0', png, 'image/png', declared), 422, 'artifact_corrupt');
    expect(bad.detail).toMatch(/checksum you specified did not match/);
    expect(await env.RESULTS.head(`images/${declared}.png`)).toBeNull();
    await expectProblem(await signed('POST', LEASE_PATHS.complete(g.lease_id), { artifacts: [{ name: 'image-0', sha256: declared, bytes: 1000, content_type: 'image/png' }] }), 422, 'artifacts_mismatch');
    // the lease survives a corrupt artifact: PUT it again
    expect((await putArtifact(g.lease_id, 'image-0', png, 'image/png')).status).toBe(200);
    expect(await env.RESULTS.head(`images/${await sha256Hex(png)}.png`)).not.toBeNull();
    // one PUT carries at most MAX_PUT_BYTES: larger goes multipart (checked from Content-Length, before any byte is read)
    const path = LEASE_PATHS.artifact(g.lease_id, 'video');
    const { signRequest, SIG_HEADERS } = await import('../../shared/lease.ts');
    const sig = await signRequest({ secret: 'test-backend-secret', method: 'PUT', path, bodySha256: 'ab'.repeat(32) });
    const big = await expectProblem(await fetchWithLength(path, sig, SIG_HEADERS.contentSha256, MAX_PUT_BYTES + 1), 413, 'result_too_large');
    expect(big.detail).toMatch(/upload in parts/);
  });
});

/** A PUT that declares `length` bytes but sends a stream that would end early (the edge refuses from the header). */
async function fetchWithLength(path: string, sig: Record<string, string>, shaHeader: string, length: number): Promise<Response> {
  const { SELF } = await import('cloudflare:test');
  const body = new ReadableStream({ start(c) { c.enqueue(new Uint8Array(16)); c.close(); } });
  return SELF.fetch(`http://edge.test${path}`, {
    method: 'PUT',
    headers: { ...sig, [shaHeader]: 'ab'.repeat(32), 'content-length': String(length), 'content-type': 'video/mp4' },
    body,
    duplex: 'half',
  } as RequestInit);
}
