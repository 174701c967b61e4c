// Accepting a job: idempotent replay, dedup cache hit on seeded params, per-key and global queue bounds, insert.
import type { Artifact, JobSpec } from '../../shared/lease.ts';
import { randomHex } from '../auth/apiKey.ts';
import { setJobArtifacts } from './artifacts.ts';
import type { JobRow, KeyRow } from './schema.ts';
import { fail, type CreateInput, type Result } from './types.ts';

/**
 * The owner's scope of the result index: a `cached: true` answer (or a faster one) never tells a tenant that another
 * tenant made the same seeded request. Keys that opt in (share_results) also use the 'shared' scope, which lives
 * in the shard the params hash picks.
 */
export function ownerScope(key: KeyRow): string {
  return `owner:${key.owner}`;
}
export const SHARED_SCOPE = 'shared';

/** A reusable result: its primary content and every artifact (a reuse gets them all). */
export type ResultHit = { sha256: string; bytes: number; artifacts: Artifact[] };

export function findResult(sql: SqlStorage, scope: string, paramsHash: string): ResultHit | undefined {
  const r = sql.exec<{ sha256: string; bytes: number; artifacts: string | null }>(
    'SELECT sha256, bytes, artifacts FROM result_index WHERE scope = ? AND params_hash = ?', scope, paramsHash).toArray()[0];
  if (!r) return undefined;
  // entries recorded before artifacts existed hold just the MP4
  const artifacts = r.artifacts ? (JSON.parse(r.artifacts) as Artifact[]) : [{ name: 'video', sha256: r.sha256, bytes: r.bytes, content_type: 'video/mp4' as const }];
  return { sha256: r.sha256, bytes: r.bytes, artifacts };
}

export function recordResult(sql: SqlStorage, scope: string, paramsHash: string, hit: ResultHit, now: number): void {
  sql.exec(
    `INSERT INTO result_index (scope, params_hash, sha256, bytes, created_at, artifacts) VALUES (?,?,?,?,?,?)
     ON CONFLICT(scope, params_hash) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes, artifacts = excluded.artifacts`,
    scope, paramsHash, hit.sha256, hit.bytes, now, JSON.stringify(hit.artifacts));
}

/**
 * `reuse`: a result found (and its CDN paths signed) before this synchronous step. One from this shard's index is
 * used only if the index still holds it with the same artifacts (the ones signed), so content released in between
 * is never referenced again; one from the shared index was checked against R2 just before.
 */
export function createJob(
  sql: SqlStorage, key: KeyRow, input: CreateInput, maxQueue: number, now: number,
  reuse: { hit: ResultHit; local: boolean; cdnPath: string | null; variantCdn: string | null; expiresAt: number } | null,
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
  const id = `${input.spec.kind === 'image' ? 'img' : 'video'}_${randomHex(16)}`;
  const spec: JobSpec = { ...input.spec, id };
  const events = input.webhookEvents ? JSON.stringify(input.webhookEvents) : null;
  // Only a caller-chosen seed makes a request reproducible, so only then may it be answered from the cache.
  const hit = input.seedGiven && reuse ? (reuse.local ? findResult(sql, ownerScope(key), spec.params_hash) : reuse.hit) : undefined;
  if (hit && reuse && JSON.stringify(hit.artifacts) === JSON.stringify(reuse.hit.artifacts)) {
    sql.exec(
      `INSERT INTO jobs (id, key_id, status, progress, model, spec, params_hash, webhook_url, webhook_events, created_at, completed_at,
         content_sha256, bytes, cdn_path, variant_cdn, cached, idem_key, idem_hash, expires_at) VALUES (?,?,'completed',100,?,?,?,?,?,?,?,?,?,?,?,1,?,?,?)`,
      id, key.id, spec.model, JSON.stringify(spec), spec.params_hash, input.webhookUrl, events, now, now,
      hit.sha256, hit.bytes, reuse.cdnPath, reuse.variantCdn, input.idemKey, input.idemHash, reuse.expiresAt,
    );
    setJobArtifacts(sql, id, hit.artifacts);
    return { ok: true, value: { row: row(id), replayed: false, queued: false } };
  }
  const active = sql.exec<{ n: number }>("SELECT count(*) AS n FROM jobs WHERE key_id = ? AND status IN ('queued','in_progress')", key.id).one().n;
  if (active >= key.max_active)
    return fail(429, 'too_many_active_jobs', `This key already has ${active} queued or running videos (limit ${key.max_active}).`, 30);
  const queued = sql.exec<{ n: number }>("SELECT count(*) AS n FROM jobs WHERE status = 'queued'").one().n;
  if (queued >= maxQueue) return fail(429, 'queue_full', `The queue is full (${queued} of ${maxQueue} jobs waiting); retry later.`, 30);
  sql.exec(
    `INSERT INTO jobs (id, key_id, status, model, spec, params_hash, webhook_url, webhook_events, created_at, idem_key, idem_hash)
     VALUES (?,?,'queued',?,?,?,?,?,?,?,?)`,
    id, key.id, spec.model, JSON.stringify(spec), spec.params_hash, input.webhookUrl, events, now, input.idemKey, input.idemHash,
  );
  return { ok: true, value: { row: row(id), replayed: false, queued: true } };
}
