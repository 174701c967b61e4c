// API key table operations inside the JobStore (strongly consistent: a revocation is seen by the next request).
import type { ProblemInit } from '../../shared/api/problem.ts';
import type { ApiKeyInfo, CreateKeyRequest, CreatedKey } from '../../shared/api/keys.ts';
import { hashBytes, newKey, type PresentedKey } from '../auth/apiKey.ts';
import type { KeyRow } from './schema.ts';

// Compared against when no row matches, so a miss costs the same compare as a hit.
const DUMMY_HASH = hashBytes('0'.repeat(64));

export function keyInfo(r: KeyRow): ApiKeyInfo {
  return {
    id: r.id,
    owner: r.owner,
    scopes: JSON.parse(r.scopes),
    rate_limit_per_min: r.rate_per_min,
    max_active_jobs: r.max_active,
    share_results: r.share_results === 1,
    result_ttl_seconds: r.result_ttl_s,
    created_at: Math.floor(r.created_at / 1000),
    revoked_at: r.revoked_at === null ? null : Math.floor(r.revoked_at / 1000),
  };
}

/**
 * One code path for every outcome: always one indexed lookup and one constant-time compare of 32 bytes; the
 * outcome is decided only after both. Unknown, wrong and revoked keys get the same 401.
 */
export function verifyKey(sql: SqlStorage, p: PresentedKey, scope: string): { ok: true; key: KeyRow } | { ok: false; problem: ProblemInit } {
  const row = sql.exec<KeyRow>('SELECT * FROM keys WHERE id = ?', p.keyId).toArray()[0];
  const stored = row ? hashBytes(row.hash) : DUMMY_HASH;
  const equal = crypto.subtle.timingSafeEqual(stored, hashBytes(p.keyHash));
  if (!(row !== undefined && equal && row.revoked_at === null))
    return { ok: false, problem: { status: 401, code: 'invalid_api_key', detail: 'The API key is invalid or has been revoked.' } };
  if (!(JSON.parse(row.scopes) as string[]).includes(scope))
    return { ok: false, problem: { status: 403, code: 'insufficient_scope', detail: `This API key lacks the "${scope}" scope.` } };
  return { ok: true, key: row };
}

/** `idPrefix`: the shard's two hex digits, the first byte of the key id (shards.ts). */
export async function createKey(sql: SqlStorage, req: CreateKeyRequest, now: number, idPrefix: string): Promise<CreatedKey> {
  const k = await newKey(idPrefix);
  sql.exec(
    `INSERT INTO keys (id, hash, owner, scopes, rate_per_min, max_active, webhook_secret, created_at, share_results, result_ttl_s)
     VALUES (?,?,?,?,?,?,?,?,?,?)`,
    k.id, k.hash, req.owner, JSON.stringify(req.scopes), req.rate_limit_per_min, req.max_active_jobs, k.webhookSecret, now,
    req.share_results ? 1 : 0, req.result_ttl_seconds,
  );
  const row = sql.exec<KeyRow>('SELECT * FROM keys WHERE id = ?', k.id).one();
  return { ...keyInfo(row), key: k.key, webhook_secret: k.webhookSecret };
}

export function revokeKey(sql: SqlStorage, id: string, now: number): ApiKeyInfo | null {
  sql.exec('UPDATE keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?', now, id);
  const row = sql.exec<KeyRow>('SELECT * FROM keys WHERE id = ?', id).toArray()[0];
  return row ? keyInfo(row) : null;
}

export function listKeys(sql: SqlStorage): ApiKeyInfo[] {
  return sql.exec<KeyRow>('SELECT * FROM keys ORDER BY created_at').toArray().map(keyInfo);
}
