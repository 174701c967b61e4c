// HMAC verification for /internal/v1 (backend groups). Signature over method, path+query, timestamp, nonce and the
// body hash (for PUT result: the declared X-Content-SHA256); ±60 s window; every nonce usable once (JobStore): it is
// remembered until its timestamp has left the window, plus one more window for clocks that differ between edge
// instances and the JobStore. Keeping it a fixed time after arrival let a request stamped in the future be replayed.
import { SIG_HEADERS, SIGNATURE_WINDOW_S, sha256Hex, verifySignature } from '../../shared/lease.ts';
import type { ProblemInit } from '../../shared/api/problem.ts';
import type { Env } from '../env.ts';
import { nonceStore } from '../env.ts';
import { readLimited } from '../http/body.ts';

export const INTERNAL_BODY_LIMIT = 64 * 1024;

type Checked = { ok: true; body: Uint8Array | null } | { ok: false; problem: ProblemInit };

/** Verifies a signed backend request. With `streamed`, the body is left unread and its declared hash is signed. */
export async function verifyBackend(req: Request, env: Env, streamed = false): Promise<Checked> {
  const secret = env.BACKEND_SECRET;
  if (!secret) return { ok: false, problem: { status: 503, code: 'backend_auth_unconfigured', detail: 'BACKEND_SECRET is not configured on this edge.' } };
  let bodySha: string;
  let body: Uint8Array | null = null;
  if (streamed) {
    bodySha = (req.headers.get(SIG_HEADERS.contentSha256) ?? '').toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(bodySha))
      return { ok: false, problem: { status: 400, code: 'invalid_content_sha256', detail: `${SIG_HEADERS.contentSha256} must be 64 hex characters.` } };
  } else {
    const r = await readLimited(req, INTERNAL_BODY_LIMIT);
    if (!r.ok) return r;
    body = r.bytes;
    bodySha = await sha256Hex(body);
  }
  const url = new URL(req.url);
  const v = await verifySignature(secret, req.method, url.pathname + url.search, req.headers, bodySha);
  if (!v.ok) return { ok: false, problem: { status: 401, code: 'invalid_signature', detail: `Backend signature rejected: ${v.reason}.` } };
  const keepMs = (v.timestamp + 2 * SIGNATURE_WINDOW_S + 1) * 1000 - Date.now();
  const fresh = await nonceStore(env, v.nonce).useNonce(v.nonce, keepMs);
  if (!fresh) return { ok: false, problem: { status: 401, code: 'replayed_request', detail: `Nonce ${v.nonce} was already used: replayed request refused.` } };
  return { ok: true, body };
}
