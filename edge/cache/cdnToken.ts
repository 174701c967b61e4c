// Unguessable, stateless CDN paths: /cdn/<token>/<sha256>.mp4 with token = HMAC(CDN_SECRET, sha256), 128 bits.
// Serving needs no job-store lookup; the secret makes the URL a capability.
const enc = new TextEncoder();

async function token(secret: string, sha256: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(`cdn:${sha256}`)));
  let s = '';
  for (const b of mac.subarray(0, 16)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export async function cdnPath(secret: string, sha256: string): Promise<string> {
  return `/cdn/${await token(secret, sha256)}/${sha256}.mp4`;
}

/** Constant-time check of a presented token. */
export async function verifyCdnToken(secret: string, sha256: string, presented: string): Promise<boolean> {
  const expected = enc.encode(await token(secret, sha256));
  const got = enc.encode(presented);
  if (expected.length !== got.length) return false;
  return crypto.subtle.timingSafeEqual(expected, got);
}

export function r2Key(sha256: string): string {
  return `videos/${sha256}.mp4`;
}
