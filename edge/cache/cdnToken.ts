// Unguessable, stateless CDN paths: /cdn/<token>/<expires>/<sha256>.<ext> with token = HMAC(CDN_SECRET, sha256 and
// expiry), 128 bits; <ext> is the artifact's (mp4, webp, jpg, png), and with the hash names its R2 key. Serving needs no job-store lookup: the secret makes the URL a capability, and the signed expiry
// (unix seconds, the video's expires_at) lets the route refuse it, and bound every cache lifetime, without state.
import { ARTIFACT_TYPES, type ArtifactContentType } from '../../shared/lease.ts';

const enc = new TextEncoder();

export type Ext = (typeof ARTIFACT_TYPES)[ArtifactContentType];
const EXTS = Object.values(ARTIFACT_TYPES) as Ext[];

async function token(secret: string, sha256: string, expires: number): Promise<string> {
  const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(`cdn:${sha256}:${expires}`)));
  let s = '';
  for (const b of mac.subarray(0, 16)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** `expires` in unix seconds. */
export async function cdnPath(secret: string, sha256: string, expires: number, ext: Ext = 'mp4'): Promise<string> {
  return `/cdn/${await token(secret, sha256, expires)}/${expires}/${sha256}.${ext}`;
}

/**
 * The one spelling of a CDN path, matched against the raw (undecoded) pathname: a percent-encoded or otherwise
 * different spelling of the same object is not a second cache entry, it is no CDN path at all.
 */
const CANONICAL = new RegExp(`^/cdn/([A-Za-z0-9_-]{22})/([1-9]\\d{0,11})/([0-9a-f]{64})\\.(${EXTS.join('|')})$`);

export function parseCdnPath(rawPath: string): { token: string; expires: number; sha256: string; ext: Ext } | null {
  const m = CANONICAL.exec(rawPath);
  return m ? { token: m[1], expires: Number(m[2]), sha256: m[3], ext: m[4] as Ext } : null;
}

/** Constant-time check of a presented token. */
export async function verifyCdnToken(secret: string, sha256: string, expires: number, presented: string): Promise<boolean> {
  const expected = enc.encode(await token(secret, sha256, expires));
  const got = enc.encode(presented);
  if (expected.length !== got.length) return false;
  return crypto.subtle.timingSafeEqual(expected, got);
}

/** Content-addressed R2 key: videos under videos/, images under images/. */
export function r2Key(sha256: string, ext: Ext = 'mp4'): string {
  return `${ext === 'mp4' ? 'videos' : 'images'}/${sha256}.${ext}`;
}

export function extOf(contentType: ArtifactContentType): Ext {
  return ARTIFACT_TYPES[contentType];
}
