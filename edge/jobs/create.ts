// Accepting a job: idempotent replay, dedup cache hit on seeded params, per-key and global queue bounds, insert.
import type { JobSpec } from '../../shared/lease.ts';
import { randomHex } from '../auth/apiKey.ts';
import type { JobRow, KeyRow } from './schema.ts';
import { fail, type CreateInput, type Result } from './types.ts';

export function createJob(
  sql: SqlStorage, key: KeyRow, input: CreateInput, maxQueue: number, now: number,
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
  const hit = input.seedGiven
    ? sql.exec<{ sha256: string; bytes: number; cdn_path: string | null }>(
        `SELECT r.sha256, r.bytes, (SELECT cdn_path FROM jobs j WHERE j.content_sha256 = r.sha256 AND j.cdn_path IS NOT NULL LIMIT 1) AS cdn_path
         FROM results r WHERE r.params_hash = ?`, spec.params_hash).toArray()[0]
    : undefined;
  if (hit) {
    sql.exec(
      `INSERT INTO jobs (id, key_id, status, progress, model, spec, params_hash, webhook_url, created_at, completed_at,
         content_sha256, bytes, cdn_path, cached, idem_key, idem_hash) VALUES (?,?,'completed',100,?,?,?,?,?,?,?,?,?,1,?,?)`,
      id, key.id, spec.model, JSON.stringify(spec), spec.params_hash, input.webhookUrl, now, now,
      hit.sha256, hit.bytes, hit.cdn_path, input.idemKey, input.idemHash,
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
