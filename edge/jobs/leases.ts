// Queue and lease transitions on the jobs table (synchronous SQL; the JobStore adds notifications and alarms).
import type { JobSpec, LeaseGrant, LeaseRequest } from '../../shared/lease.ts';
import { randomHex } from '../auth/apiKey.ts';
import type { JobRow } from './schema.ts';
import { shardPrefix } from './shards.ts';
import type { QueueStats } from './types.ts';

export function registerGroup(sql: SqlStorage, req: LeaseRequest, now: number): void {
  sql.exec(
    `INSERT INTO groups (group_id, model, capacity, stages, last_seen) VALUES (?,?,?,?,?)
     ON CONFLICT(group_id) DO UPDATE SET model = excluded.model, capacity = excluded.capacity, stages = excluded.stages, last_seen = excluded.last_seen`,
    req.group, req.model, req.capacity, req.stages ?? null, now);
}

/** Oldest queued job of the model → in_progress under a fresh lease; null when none is queued. */
export function claim(sql: SqlStorage, req: LeaseRequest, ttlMs: number, now: number, shard: number): { grant: LeaseGrant; row: JobRow } | null {
  const r = sql.exec<JobRow>("SELECT * FROM jobs WHERE model = ? AND status = 'queued' ORDER BY seq LIMIT 1", req.model).toArray()[0];
  if (!r) return null;
  const leaseId = `lease_${shardPrefix(shard)}${randomHex(15)}`; // its shard first: see shards.ts
  const expires = now + ttlMs;
  sql.exec(
    "UPDATE jobs SET status = 'in_progress', attempts = attempts + 1, lease_id = ?, lease_group = ?, lease_expires = ?, progress = 0 WHERE id = ?",
    leaseId, req.group, expires, r.id);
  return {
    row: r,
    grant: {
      lease_id: leaseId,
      job: { ...(JSON.parse(r.spec) as JobSpec), id: r.id },
      attempt: r.attempts + 1,
      expires_at: expires,
      heartbeat_interval_ms: Math.max(500, Math.floor(ttlMs / 3)),
    },
  };
}

/** Retryable and attempts left → queued again (lease dropped); otherwise failed with the reason, kept until `expiresAt`. */
export function requeueOrFail(
  sql: SqlStorage, r: JobRow, reason: string, retryable: boolean, maxAttempts: number, now: number, expiresAt: number, code?: string,
): 'queued' | 'failed' {
  if (retryable && r.attempts < maxAttempts) {
    sql.exec("UPDATE jobs SET status = 'queued', lease_id = NULL, lease_group = NULL, lease_expires = NULL, progress = 0, error_message = ? WHERE id = ?", reason, r.id);
    return 'queued';
  }
  const message = retryable ? `failed after ${r.attempts} attempts; last: ${reason}` : reason;
  sql.exec(
    "UPDATE jobs SET status = 'failed', lease_expires = NULL, completed_at = ?, expires_at = ?, error_code = ?, error_message = ? WHERE id = ?",
    now, expiresAt, code ?? (retryable ? 'max_attempts_exceeded' : 'generation_failed'), message, r.id);
  return 'failed';
}

export function expiredLeases(sql: SqlStorage, now: number): JobRow[] {
  return sql.exec<JobRow>("SELECT * FROM jobs WHERE status = 'in_progress' AND lease_expires <= ?", now).toArray();
}

/** Retention runs at most this often: expiry is not urgent, so rows that expire close together share one alarm. */
export const RETENTION_TICK_MS = 60_000;

/** When the alarm must next run: the earliest lease expiry, pending webhook or row expiry; null when nothing waits. */
export function nextWakeup(sql: SqlStorage): number | null {
  const lease = sql.exec<{ t: number | null }>("SELECT min(lease_expires) AS t FROM jobs WHERE status = 'in_progress'").one().t;
  const hook = sql.exec<{ t: number | null }>("SELECT min(next_at) AS t FROM webhooks WHERE status = 'pending'").one().t;
  const expiry = sql.exec<{ t: number | null }>('SELECT min(expires_at) AS t FROM jobs WHERE expires_at IS NOT NULL').one().t;
  const retention = expiry === null ? null : Math.ceil(expiry / RETENTION_TICK_MS) * RETENTION_TICK_MS;
  const next = Math.min(lease ?? Infinity, hook ?? Infinity, retention ?? Infinity);
  return next === Infinity ? null : next;
}

/** Queue depth per model, with the backend groups that polled for it in the last minute. */
export function queueStats(sql: SqlStorage, model: string | null, now: number): QueueStats[] {
  const rows = sql.exec<{ model: string; queued: number; in_progress: number }>(
    `SELECT model, sum(status = 'queued') AS queued, sum(status = 'in_progress') AS in_progress FROM jobs
     WHERE status IN ('queued', 'in_progress') GROUP BY model`).toArray();
  const groups = sql.exec<{ model: string; n: number; capacity: number }>(
    'SELECT model, count(*) AS n, sum(capacity) AS capacity FROM groups WHERE last_seen > ? GROUP BY model', now - 60_000).toArray();
  const models = new Set([...rows.map((r) => r.model), ...groups.map((g) => g.model), ...(model ? [model] : [])]);
  return [...models].filter((m) => model === null || m === model).sort().map((m) => {
    const r = rows.find((x) => x.model === m);
    const g = groups.find((x) => x.model === m);
    return { model: m, queued: r?.queued ?? 0, in_progress: r?.in_progress ?? 0, groups: g?.n ?? 0, capacity: g?.capacity ?? 0 };
  });
}
