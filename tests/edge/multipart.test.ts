// Multipart artifact uploads (parts of UPLOAD_PART_BYTES = 5 MiB here): parts in order, each verified by its hash;
// the whole hash checked at the end; a bad part or a bad whole → problem+json and nothing stored.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { EMPTY_SHA256, LEASE_PATHS, SIG_HEADERS, sha256Hex, signRequest } from '../../shared/lease.ts';
import type { CreatedKey } from '../../shared/api/keys.ts';
import { api, BACKEND_SECRET, call, createVideo, expectProblem, lease, newKey, signed } from './helpers.ts';

const PART = 5 * 1024 * 1024;

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** PUT a part, after a heartbeat: on a loaded machine the parts take longer than a lease without one. */
async function putPart(leaseId: string, name: string, uploadId: string, n: number, bytes: Uint8Array, declared?: string): Promise<Response> {
  await (await signed('POST', LEASE_PATHS.heartbeat(leaseId), { progress: 99 })).body?.cancel();
  const sha = declared ?? (await sha256Hex(bytes));
  const path = LEASE_PATHS.part(leaseId, name, uploadId, n);
  const sig = await signRequest({ secret: BACKEND_SECRET, method: 'PUT', path, bodySha256: sha });
  return call(path, { method: 'PUT', headers: { ...sig, [SIG_HEADERS.contentSha256]: sha, 'content-length': String(bytes.byteLength) }, body: bytes });
}

async function finish(leaseId: string, name: string, uploadId: string): Promise<Response> {
  const path = LEASE_PATHS.uploadDone(leaseId, name, uploadId);
  const sig = await signRequest({ secret: BACKEND_SECRET, method: 'POST', path, bodySha256: EMPTY_SHA256 });
  return call(path, { method: 'POST', headers: sig });
}

const parts = (b: Uint8Array) => [b.subarray(0, PART), b.subarray(PART, 2 * PART), b.subarray(2 * PART)];

// Local R2 takes seconds per 5 MiB part on a loaded machine: each test gets two minutes.
describe('multipart artifact uploads', { timeout: 120_000 }, () => {
  let k: CreatedKey;
  const big = pattern(2 * PART + 123_457, 7); // three parts, the last not a whole number of hash blocks
  beforeAll(async () => {
    k = await newKey('multipart', { rate_limit_per_min: 10_000 });
    while (await lease(0, 'drain')) {}
  });

  it('stores parts in order, checks the whole hash, and completes the job with the artifact', async () => {
    const v = await createVideo(k.key, { prompt: 'multipart', size: '64x64' });
    const g = (await lease(1000))!;
    const sha256 = await sha256Hex(big);
    const start = await signed('POST', LEASE_PATHS.uploads(g.lease_id, 'video'), { sha256, bytes: big.byteLength, content_type: 'video/mp4' });
    expect(start.status).toBe(200);
    const up = await start.json<{ upload_id: string; part_bytes: number; parts: number }>();
    expect(up).toMatchObject({ part_bytes: PART, parts: 3 });
    const [p1, p2, p3] = parts(big);
    await expectProblem(await putPart(g.lease_id, 'video', up.upload_id, 2, p2), 409, 'part_out_of_order');
    await expectProblem(await putPart(g.lease_id, 'video', up.upload_id, 4, p2), 400, 'invalid_part');
    await expectProblem(await putPart(g.lease_id, 'video', up.upload_id, 1, p1.subarray(1)), 400, 'wrong_part_length');
    // a bad part: refused by its own hash, nothing recorded, and the same part number is sent again
    const bad = await expectProblem(await putPart(g.lease_id, 'video', up.upload_id, 1, p1, await sha256Hex(p2)), 422, 'part_corrupt');
    expect(bad.detail).toMatch(/part 1 of 5242880 bytes hashes to/);
    expect(await (await putPart(g.lease_id, 'video', up.upload_id, 1, p1)).json()).toEqual({ part: 1, sha256: await sha256Hex(p1), bytes: PART });
    // a retried part whose answer was lost is acknowledged; other bytes under its number are refused
    expect((await putPart(g.lease_id, 'video', up.upload_id, 1, p1)).status).toBe(200);
    await expectProblem(await putPart(g.lease_id, 'video', up.upload_id, 1, p2), 409, 'part_out_of_order');
    expect((await putPart(g.lease_id, 'video', up.upload_id, 2, p2)).status).toBe(200);
    await expectProblem(await finish(g.lease_id, 'video', up.upload_id), 409, 'upload_incomplete');
    expect(await env.RESULTS.head(`videos/${sha256}.mp4`)).toBeNull(); // nothing visible before the whole is checked
    expect(await env.RESULTS.head(`uploads/${up.upload_id}`)).toBeNull(); // parts are not an object yet
    expect((await putPart(g.lease_id, 'video', up.upload_id, 3, p3)).status).toBe(200);
    const done = await finish(g.lease_id, 'video', up.upload_id);
    expect(await done.json()).toEqual({ name: 'video', sha256, bytes: big.byteLength, content_type: 'video/mp4' });
    expect((await env.RESULTS.head(`videos/${sha256}.mp4`))?.size).toBe(big.byteLength);
    const complete = await signed('POST', LEASE_PATHS.complete(g.lease_id), { artifacts: [{ name: 'video', sha256, bytes: big.byteLength, content_type: 'video/mp4' }] });
    expect(complete.status).toBe(200);
    const res = await api(k.key, `/v1/videos/${v.id}/content`);
    expect(res.headers.get('content-length')).toBe(String(big.byteLength));
    expect(await sha256Hex(new Uint8Array(await res.arrayBuffer()))).toBe(sha256);
  });

  it('refuses a whole that does not hash to the declared sha256: nothing stored, the job not completed', async () => {
    const v = await createVideo(k.key, { prompt: 'bad whole', size: '64x64' });
    const g = (await lease(1000))!;
    const other = pattern(big.byteLength, 8);
    const declared = await sha256Hex(other); // the upload says one thing, every part (each self-consistent) another
    const up = await (await signed('POST', LEASE_PATHS.uploads(g.lease_id, 'video'), { sha256: declared, bytes: big.byteLength, content_type: 'video/mp4' })).json<any>();
    for (const [i, p] of parts(big).entries()) expect((await putPart(g.lease_id, 'video', up.upload_id, i + 1, p)).status).toBe(200);
    const res = await expectProblem(await finish(g.lease_id, 'video', up.upload_id), 422, 'artifact_corrupt');
    expect(res.detail).toMatch(/do not hash to the declared/);
    expect(await env.RESULTS.head(`videos/${declared}.mp4`)).toBeNull();
    expect(await env.RESULTS.head(`uploads/${up.upload_id}`)).toBeNull(); // the staging copy is gone too
    await expectProblem(await finish(g.lease_id, 'video', up.upload_id), 404, 'upload_not_found');
    await expectProblem(await signed('POST', LEASE_PATHS.complete(g.lease_id), { artifacts: [{ name: 'video', sha256: declared, bytes: big.byteLength, content_type: 'video/mp4' }] }), 422, 'artifacts_mismatch');
    expect((await (await api(k.key, `/v1/videos/${v.id}`)).json<any>()).status).toBe('in_progress');
  });

  it('refuses uploads of another lease, above MAX_RESULT_BYTES, and once the lease is over', async () => {
    await createVideo(k.key, { prompt: 'limits', size: '64x64' });
    const g = (await lease(1000))!;
    const sha256 = await sha256Hex(big);
    await expectProblem(await signed('POST', LEASE_PATHS.uploads(g.lease_id, 'video'), { sha256, bytes: 512 * 1024 * 1024 + 1, content_type: 'video/mp4' }), 413, 'result_too_large');
    await expectProblem(await signed('POST', LEASE_PATHS.uploads(g.lease_id, 'Video'), { sha256, bytes: 10, content_type: 'video/mp4' }), 400, 'invalid_artifact_name');
    const up = await (await signed('POST', LEASE_PATHS.uploads(g.lease_id, 'video'), { sha256, bytes: big.byteLength, content_type: 'video/mp4' })).json<any>();
    await expectProblem(await putPart('lease_00aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'video', up.upload_id, 1, parts(big)[0]), 409, 'lease_lost');
    await expectProblem(await putPart(g.lease_id, 'thumbnail', up.upload_id, 1, parts(big)[0]), 404, 'upload_not_found');
    expect((await signed('POST', LEASE_PATHS.fail(g.lease_id), { reason: 'gave up', retryable: false })).status).toBe(200);
    await expectProblem(await putPart(g.lease_id, 'video', up.upload_id, 1, parts(big)[0]), 409, 'lease_lost');
  });
});
