// Accepting a job: idempotent replay, dedup cache hit on seeded params, per-key and global queue bounds, insert.
import type { JobSpec } from '../../shared/lease.ts';
import { randomHex } from '../auth/apiKey.ts';
import type { JobRow, KeyRow } from './schema.ts';
import { fail, type CreateInput, type Result } from './types.ts';

/**
 * The result-index scopes a key reads and writes: its owner's, and the shared one only when the key opts in. So a
 * `cached: true` answer (or a faster one) never tells a tenant that another tenant made the same seeded request.
 */
export function resultScopes(key: KeyRow): string[] {
  return key.share_results === 1 ? [`owner:${key.owner}`, 'shared'] : [`owner:${key.owner}`];
}

export type ResultHit = { sha256: string; bytes: number };

/** The stored result of these params that this key may reuse, if any. */
export function findResult(sql: SqlStorage, key: KeyRow, paramsHash: string): ResultHit | undefined {
  const scopes = resultScopes(key);
  return sql.exec<ResultHit>(
    `SELECT sha256, bytes FROM result_index WHERE params_hash = ? AND scope IN (${scopes.map(() => '?').join(',')}) LIMIT 1`,
    paramsHash, ...scopes).toArray()[0];
}

export function recordResult(sql: SqlStorage, key: KeyRow, paramsHash: string, hit: ResultHit, now: number): void {
  for (const scope of resultScopes(key))
    sql.exec(
      `INSERT INTO result_index (scope, params_hash, sha256, bytes, created_at) VALUES (?,?,?,?,?)
       ON CONFLICT(scope, params_hash) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes`,
      scope, paramsHash, hit.sha256, hit.bytes, now);
}

/**
 * `reuse`: a result found (and its CDN path signed) before this synchronous step; it is used only if the index
 * still holds it, so content released in between is never referenced again.
 */
export function createJob(
  sql: SqlStorage, key: KeyRow, input: CreateInput, maxQueue: number, now: number,
  reuse: { hit: ResultHit; cdnPath: string | null; expiresAt: number } | null,
): Result<{ row: JobRow; replayed: boolean; queued: boolean }> {
  const row = (id: string) => sql.exec<JobRow>('SELECT * FROM jobs WHERE id = ?', id).one();
  if (input.idemKey) {
    const prev = sql.exec<JobRow>('SELECT * FROM jobs WHERE key_id = ? AND idem_key = ?', key.id, input.idemKey).toArray()[0];
    if (prev) {
      if (prev.idem_hash !== input.idemHash)
        return fail(409, 'idempotency_key_reused', `Idempotency-Key ${JSON.stringify(input.idemKey)} was already used with a different request body (video ${prev.id}).`);
      return { ok: true, value: { row: prev, replayed: true, queued: false } };
    }
  }
  const id = `video_${randomHex(16)}`;
  const spec: JobSpec = { ...input.spec, id };
  // Only a caller-chosen seed makes a request reproducible, so only then may it be answered from the cache.
  const hit = input.seedGiven && reuse ? findResult(sql, key, spec.params_hash) : undefined;
  if (hit && reuse && hit.sha256 === reuse.hit.sha256) {
    sql.exec(
      `INSERT INTO jobs (id, key_id, status, progress, model, spec, params_hash, webhook_url, created_at, completed_at,
         content_sha256, bytes, cdn_path, cached, idem_key, idem_hash, expires_at) VALUES (?,?,'completed',100,?,?,?,?,?,?,?,?,?,1,?,?,?)`,
      id, key.id, spec.model, JSON.stringify(spec), spec.params_hash, input.webhookUrl, now, now,
      hit.sha256, hit.bytes, reuse.cdnPath, input.idemKey, input.idemHash, reuse.expiresAt,
    );
    return { ok: true, value: { row: row(id), replayed: false, queued: false } };
  }
  const active = sql.exec<{ n: number }>("SELECT count(*) AS n FROM jobs WHERE key_id = ? AND status IN ('queued','in_progress')", key.id).one().n;
  if (active >= key.max_active)
    return fail(429, 'too_many_active_jobs', `This key already has ${active} queued or running videos (limit ${key.max_active}).`, 30);
  const queued = sql.exec<{ n: number }>("SELECT count(*) AS n FROM jobs WHERE status = 'queued'").one().n;
  if (queued >= maxQueue) return fail(429, 'queue_full', `The queue is full (${queued} of ${maxQueue} jobs waiting); retry later.`, 30);
  sql.exec(
    `INSERT INTO jobs (id, key_id, status, model, spec, params_hash, webhook_url, created_at, idem_key, idem_hash)
     VALUES (?,?,'queued',?,?,?,?,?,?,?)`,
    id, key.id, spec.model, JSON.stringify(spec), spec.params_hash, input.webhookUrl, now, input.idemKey, input.idemHash,
  );
  return { ok: true, value: { row: row(id), replayed: false, queued: true } };
}
