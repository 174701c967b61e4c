// Unguessable, stateless CDN paths: /cdn/<token>/<expires>/<sha256>.mp4 with token = HMAC(CDN_SECRET, sha256 and
// expiry), 128 bits. Serving needs no job-store lookup: the secret makes the URL a capability, and the signed expiry
// (unix seconds, the video's expires_at) lets the route refuse it, and bound every cache lifetime, without state.
const enc = new TextEncoder();

async function token(secret: string, sha256: string, expires: number): Promise<string> {
  const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(`cdn:${sha256}:${expires}`)));
  let s = '';
  for (const b of mac.subarray(0, 16)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** `expires` in unix seconds. */
export async function cdnPath(secret: string, sha256: string, expires: number): Promise<string> {
  return `/cdn/${await token(secret, sha256, expires)}/${expires}/${sha256}.mp4`;
}

/**
 * The one spelling of a CDN path, matched against the raw (undecoded) pathname: a percent-encoded or otherwise
 * different spelling of the same object is not a second cache entry, it is no CDN path at all.
 */
const CANONICAL = /^\/cdn\/([A-Za-z0-9_-]{22})\/([1-9]\d{0,11})\/([0-9a-f]{64})\.mp4$/;

export function parseCdnPath(rawPath: string): { token: string; expires: number; sha256: string } | null {
  const m = CANONICAL.exec(rawPath);
  return m ? { token: m[1], expires: Number(m[2]), sha256: m[3] } : null;
}

/** Constant-time check of a presented token. */
export async function verifyCdnToken(secret: string, sha256: string, expires: number, presented: string): Promise<boolean> {
  const expected = enc.encode(await token(secret, sha256, expires));
  const got = enc.encode(presented);
  if (expected.length !== got.length) return false;
  return crypto.subtle.timingSafeEqual(expected, got);
}

export function r2Key(sha256: string): string {
  return `videos/${sha256}.mp4`;
}
