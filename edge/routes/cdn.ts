// Public CDN: /cdn/<token>/<sha256>.mp4, immutable, served through the Cache API so repeats never reach R2 or
// the job store. The token (HMAC of the hash under CDN_SECRET) is the capability; no lookup is needed to check it.
import { Hono } from 'hono';
import { r2Key, verifyCdnToken } from '../cache/cdnToken.ts';
import { parseRange } from '../cache/range.ts';
import { serveObject } from '../cache/serve.ts';
import type { AppEnv } from '../http/app.ts';
import { problem } from '../http/problem.ts';

export const IMMUTABLE = 'public, max-age=31536000, immutable';

export const cdn = new Hono<AppEnv>();

// The Cache API answers a bad Range itself (a bare 416 without a body, or multipart/byteranges for several ranges);
// answer like /content does instead: one range only, and a problem+json 416 (G: found by tests/chaos fuzz).
function rangeProblem(detail: string, contentRange: string | null): Response {
  const res = problem({ status: 416, code: 'range_not_satisfiable', detail });
  if (contentRange) res.headers.set('content-range', contentRange);
  return res;
}

function fromCache(res: Response, tag: string): Response {
  if (res.status === 416) return rangeProblem('The Range is not satisfiable for this object.', res.headers.get('content-range'));
  const out = new Response(res.body, res);
  out.headers.set('x-uvit-cache', tag);
  return out;
}

cdn.get('/:token/:file', async (c) => {
  const secret = c.env.CDN_SECRET;
  const m = /^([0-9a-f]{64})\.mp4$/.exec(c.req.param('file'));
  const notFound = () => problem({ status: 404, code: 'not_found', detail: 'No such CDN object.' });
  if (!secret || !m || !(await verifyCdnToken(secret, m[1], c.req.param('token')))) return notFound();
  const range = c.req.header('range');
  const r = range === undefined ? undefined : parseRange(range, Number.MAX_SAFE_INTEGER);
  if (r?.kind === 'invalid') return rangeProblem(r.reason, null);
  const cache = caches.default;
  const cacheKey = new Request(new URL(c.req.url).origin + new URL(c.req.url).pathname, { method: 'GET' });
  const hit = await cache.match(c.req.raw);
  if (hit) return fromCache(hit, 'hit');
  const sha = m[1];
  const full = await serveObject(c.env.RESULTS, r2Key(sha), new Request(cacheKey), sha, { 'cache-control': IMMUTABLE });
  if (full.status !== 200) return full;
  await cache.put(cacheKey, full);
  // Serve from the cache entry just written, so Range / If-None-Match are handled the same way as on a hit.
  const again = await cache.match(c.req.raw);
  if (again) return fromCache(again, 'miss');
  const res = await serveObject(c.env.RESULTS, r2Key(sha), c.req.raw, sha, { 'cache-control': IMMUTABLE });
  res.headers.set('x-uvit-cache', 'bypass');
  return res;
});
