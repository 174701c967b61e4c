// Public CDN: /cdn/<token>/<expires>/<sha256>.<ext> (an artifact: mp4, webp, jpg, png), served through the Cache
// API so repeats never reach R2 or the job store. The token (HMAC of hash and expiry under CDN_SECRET) is the
// capability; no lookup is needed to check it.
// One cache entry per object: the canonical path with no query string. Other spellings are refused (404), a query
// string (a player's cache-buster) is ignored, and nothing is cached or served past the signed expiry.
import { Hono } from 'hono';
import { parseCdnPath, r2Key, verifyCdnToken } from '../cache/cdnToken.ts';
import { parseRange } from '../cache/range.ts';
import { serveObject } from '../cache/serve.ts';
import type { AppEnv } from '../http/app.ts';
import { problem } from '../http/problem.ts';

export const cdn = new Hono<AppEnv>();

/** The Cache API key of a CDN path: the only key it is stored, looked up and purged under. */
export function cdnCacheKey(origin: string, path: string): string {
  return origin + path;
}

/** Cache lifetime that ends when the object does (never a promise beyond its expiry). */
export function cdnCacheControl(expires: number, nowMs: number): string {
  return `public, max-age=${Math.max(0, Math.floor(expires - nowMs / 1000))}, immutable`;
}

// The Cache API answers a bad Range itself (a bare 416 without a body, or multipart/byteranges for several ranges);
// answer like /content does instead: one range only, and a problem+json 416 (found by tests/chaos fuzz).
function rangeProblem(detail: string, contentRange: string | null): Response {
  const res = problem({ status: 416, code: 'range_not_satisfiable', detail });
  if (contentRange) res.headers.set('content-range', contentRange);
  return res;
}

function tagged(res: Response, tag: string, cacheControl: string): Response {
  if (res.status === 416) return rangeProblem('The Range is not satisfiable for this object.', res.headers.get('content-range'));
  const out = new Response(res.body, res);
  out.headers.set('x-uvit-cache', tag);
  if (res.status < 400) out.headers.set('cache-control', cacheControl);
  return out;
}

cdn.get('/*', async (c) => {
  const url = new URL(c.req.url);
  const p = parseCdnPath(url.pathname);
  const now = Date.now();
  const secret = c.env.CDN_SECRET;
  if (!secret || !p || p.expires * 1000 <= now || !(await verifyCdnToken(secret, p.sha256, p.expires, p.token)))
    return problem({ status: 404, code: 'not_found', detail: 'No such CDN object (or its link has expired).' });
  const range = c.req.header('range');
  const r = range === undefined ? undefined : parseRange(range, Number.MAX_SAFE_INTEGER);
  if (r?.kind === 'invalid') return rangeProblem(r.reason, null);
  const cacheControl = cdnCacheControl(p.expires, now);
  const cache = caches.default;
  const key = cdnCacheKey(url.origin, url.pathname);
  const hit = await cache.match(new Request(key, { headers: c.req.raw.headers }));
  if (hit) return tagged(hit, 'hit', cacheControl);
  const res = await serveObject(c.env.RESULTS, r2Key(p.sha256, p.ext), c.req.raw, p.sha256, { 'cache-control': cacheControl });
  if (c.req.method !== 'GET' || res.status >= 400) return res;
  // Answer from R2 at once and fill the cache in the background, so the first byte of a miss does not wait for the
  // whole object to be stored. A ranged or conditional miss fills it with a full read of its own.
  if (res.status === 200 && res.body) {
    const [toClient, toCache] = res.body.tee();
    c.executionCtx.waitUntil(cache.put(key, new Response(toCache, res)));
    return tagged(new Response(toClient, res), 'miss', cacheControl);
  }
  c.executionCtx.waitUntil(
    serveObject(c.env.RESULTS, r2Key(p.sha256, p.ext), new Request(key), p.sha256, { 'cache-control': cacheControl }).then((full) =>
      full.status === 200 ? cache.put(key, full) : full.body?.cancel()),
  );
  return tagged(res, 'miss', cacheControl);
});
