// API key format, generation and hashing. Keys are `uvit_sk_<id:16 hex>_<secret:43 base64url>`; only the SHA-256
// of the whole key is stored. The id lets the store find the row; the hash is then compared in constant time.
import { sha256Hex } from '../../shared/lease.ts';

const KEY_RE = /^uvit_sk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface PresentedKey {
  keyId: string; // '' when the key is malformed: the store still runs the full compare against a dummy
  keyHash: string; // hex sha256 of the presented string
}

export async function presentKey(raw: string): Promise<PresentedKey> {
  const m = KEY_RE.exec(raw);
  return { keyId: m ? m[1] : '', keyHash: await sha256Hex(raw) };
}

function b64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

/** `idPrefix` (hex, even length): fixed leading digits of the id, e.g. the job-store shard of the key. */
export async function newKey(idPrefix = ''): Promise<{ id: string; key: string; hash: string; webhookSecret: string }> {
  const id = idPrefix + randomHex(8 - idPrefix.length / 2);
  const key = `uvit_sk_${id}_${b64url(crypto.getRandomValues(new Uint8Array(32)))}`;
  const webhookSecret = `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(24))))}`;
  return { id, key, hash: await sha256Hex(key), webhookSecret };
}

/** Hex → bytes for timingSafeEqual (64 hex chars → 32 bytes; anything else → 32 zero bytes, never equal to a hash). */
export function hashBytes(hex: string): Uint8Array {
  const out = new Uint8Array(32);
  if (!/^[0-9a-f]{64}$/.test(hex)) return out;
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
