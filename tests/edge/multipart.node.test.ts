// A result above the Workers request-body limit (100 MB on the smaller plans) through the real edge (wrangler dev,
// workerd): the backend's uploader (gpu-backend/serve/upload.ts) sends it multipart from a stream, spooled to disk,
// in 64 MiB parts, each streamed from the file; its live memory stays far below one part, and the
// stored object hashes to what was sent.
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEdge, type EdgeHandle } from '../../bench/edgeDev.ts';
import { LEASE_PATHS, type LeaseGrant, signedJsonFetch } from '../../shared/lease.ts';
import { uploadArtifacts } from '../../gpu-backend/serve/upload.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SECRET = 'multipart-backend-secret';
const ADMIN = 'multipart-admin';
const SIZE = 110 * 1000 * 1000 + 12_345; // above 100 MB, two parts of 64 MiB

/** SIZE random bytes, made 1 MiB at a time (never all in memory), hashed as they go. */
async function* bytes(hash: ReturnType<typeof createHash>): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < SIZE; off += 1 << 20) {
    const c = randomFillSync(new Uint8Array(Math.min(1 << 20, SIZE - off)));
    hash.update(c);
    yield c;
  }
}

describe('a 110 MB result through the real edge', { timeout: 600_000 }, () => {
  let edge: EdgeHandle;
  let work: string;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'uvit-multipart-'));
    edge = await startEdge({ vars: { ADMIN_TOKEN: ADMIN, BACKEND_SECRET: SECRET, CDN_SECRET: 'c', LEASE_TTL_MS: '600000' } });
  }, 180_000);
  afterAll(async () => {
    await edge?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('uploads it multipart without holding a part in memory; the stored video hashes right', async () => {
    const key = await (await fetch(`${edge.url}/admin/v1/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: '{"owner":"big"}' })).json() as { key: string };
    const auth = { authorization: `Bearer ${key.key}` };
    const video = await (await fetch(`${edge.url}/v1/videos`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"prompt":"large"}' })).json() as { id: string; model: string };
    const g = await (await signedJsonFetch(edge.url, SECRET, 'POST', LEASE_PATHS.lease, { group: 'big', model: video.model, capacity: 1, wait_ms: 5000 })).json() as LeaseGrant;
    const expected = createHash('sha256');

    // Live memory (JS heap + array buffers, after a full GC) sampled through the upload: the uploading side must not
    // hold the result (110 MB) or a part (64 MiB). RSS is logged too, but it also counts garbage not yet collected.
    const live = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const base = live();
    const rss0 = process.memoryUsage().rss;
    let peak = base;
    let rssPeak = rss0;
    const timer = setInterval(() => {
      peak = Math.max(peak, live());
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }, 100);
    let beats = 0;
    const t0 = performance.now();
    const heartbeat = async () => {
      beats++;
      expect((await signedJsonFetch(edge.url, SECRET, 'POST', LEASE_PATHS.heartbeat(g.lease_id), { progress: 99 })).status).toBe(200);
    };
    const done = await uploadArtifacts({ edge: edge.url, secret: SECRET, fetch, workDir: work, heartbeat }, g.lease_id,
      [{ name: 'video', content_type: 'video/mp4', stream: bytes(expected) }]);
    const sha256 = expected.digest('hex');
    const ms = performance.now() - t0;
    clearInterval(timer);
    const grew = (peak - base) / 2 ** 20;
    console.log(`multipart upload of ${SIZE} bytes: ${(ms / 1000).toFixed(1)} s, uploader live memory +${grew.toFixed(1)} MiB at peak ` +
      `(base ${(base / 2 ** 20).toFixed(0)} MiB), RSS +${((rssPeak - rss0) / 2 ** 20).toFixed(1)} MiB`);
    expect(done).toMatchObject({ id: video.id, status: 'completed', sha256, bytes: SIZE });
    expect(beats).toBe(2); // one heartbeat before each part
    // Flat: no part (64 MiB) is held, each is streamed from the spool file in 256 KiB reads. Before the uploader's
    // requests refused redirects, fetch's tee of each part's body held a whole part: +62.9 MiB at peak here. Since,
    // +2.8 to +26.3 MiB over four runs (not traced further; it varies with collection timing). The bound
    // says what was fixed: no part, nor most of one, is held.
    expect(grew).toBeLessThan(40);

    const res = await fetch(`${edge.url}/v1/videos/${video.id}/content`, { headers: auth });
    expect(res.status).toBe(200);
    expect(Number(res.headers.get('content-length'))).toBe(SIZE);
    const got = createHash('sha256');
    for await (const c of res.body!) got.update(c);
    expect(got.digest('hex')).toBe(sha256);
  });
});
