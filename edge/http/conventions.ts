// HTTP conventions of every response: x-request-id (the caller's when well-formed, else a fresh one; also in the
// log line of every 5xx), secure headers, and CORS where a browser page on another origin must read the response
// (a <video> playing a CDN URL, a tool loading /openapi.json). Cross-origin media needs
// Cross-Origin-Resource-Policy: cross-origin there and no CSP (a media document is a document).
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { randomHex } from '../auth/apiKey.ts';
import type { AppEnv } from './app.ts';

const SECURE: [string, string][] = [
  ['x-content-type-options', 'nosniff'],
  ['referrer-policy', 'no-referrer'],
  ['strict-transport-security', 'max-age=31536000; includeSubDomains'],
  ['x-frame-options', 'DENY'],
];
// JSON answers are never meant to be rendered: nothing may load from, or frame, them.
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/** Paths a page on any origin may fetch (credential-less, read-only). */
export function isPublicPath(path: string): boolean {
  return path.startsWith('/cdn/') || path === '/openapi.json';
}

export const publicCors = cors({
  origin: '*',
  allowMethods: ['GET', 'HEAD', 'OPTIONS'],
  allowHeaders: ['range', 'if-none-match', 'if-range'],
  exposeHeaders: ['content-length', 'content-range', 'accept-ranges', 'etag', 'x-request-id'],
  maxAge: 86_400,
});

export function requestIdOf(given: string | undefined): string {
  return given && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : `req_${randomHex(12)}`;
}

export const conventions: MiddlewareHandler<AppEnv> = async (c, next) => {
  const id = requestIdOf(c.req.header('x-request-id'));
  c.set('requestId', id);
  const t0 = Date.now();
  await next();
  let res = c.res;
  try {
    res.headers.set('x-request-id', id);
  } catch {
    // a response passed through unchanged (e.g. from fetch) has immutable headers
    res = c.res = new Response(res.body, res);
    res.headers.set('x-request-id', id);
  }
  for (const [k, v] of SECURE) if (!res.headers.has(k)) res.headers.set(k, v);
  const path = new URL(c.req.url).pathname;
  res.headers.set('cross-origin-resource-policy', isPublicPath(path) ? 'cross-origin' : 'same-origin');
  if (/json/.test(res.headers.get('content-type') ?? '') && !res.headers.has('content-security-policy'))
    res.headers.set('content-security-policy', API_CSP);
  // The route pattern, not the path: a CDN path is a capability and stays out of logs.
  if (res.status >= 500) console.error(`${id} ${c.req.method} ${c.req.routePath} → ${res.status} in ${Date.now() - t0} ms`);
};
