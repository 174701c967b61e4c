// Retention: rows past their expires_at go (with their settled webhook rows), spent nonces and old settled
// webhook rows are pruned. Synchronous SQL; the JobStore then releases the content the dropped rows referenced.
import { type ContentRef, dropJobArtifacts, pruneUploads } from './artifacts.ts';

/** Settled outbox rows are kept this long for inspection. */
export const WEBHOOK_KEEP_MS = 86_400_000;
/** Rows dropped per sweep, so one alarm stays short; the next alarm follows at once while more are due. */
const SWEEP_LIMIT = 500;

export interface Swept {
  jobs: { id: string; content: ContentRef[] }[];
  nonces: number;
  webhooks: number;
}

export function sweepExpired(sql: SqlStorage, now: number): Swept {
  const ids = sql.exec<{ id: string }>('SELECT id FROM jobs WHERE expires_at <= ? ORDER BY expires_at LIMIT ?', now, SWEEP_LIMIT).toArray();
  const jobs = ids.map((j) => ({ id: j.id, content: dropJobArtifacts(sql, j.id) }));
  for (const j of jobs) {
    sql.exec('DELETE FROM jobs WHERE id = ?', j.id);
    // a pending delivery carries its own copy of the event and still goes out
    sql.exec("DELETE FROM webhooks WHERE job_id = ? AND status != 'pending'", j.id);
  }
  const nonces = sql.exec('DELETE FROM nonces WHERE expires < ?', now).rowsWritten;
  const webhooks = sql.exec("DELETE FROM webhooks WHERE status != 'pending' AND next_at < ?", now - WEBHOOK_KEEP_MS).rowsWritten;
  pruneUploads(sql);
  return { jobs, nonces, webhooks };
}
