// Retention: rows past their expires_at go (with their settled webhook rows), spent nonces and old settled
// webhook rows are pruned. Synchronous SQL; the JobStore then releases the content the dropped rows referenced.
/** Settled outbox rows are kept this long for inspection. */
export const WEBHOOK_KEEP_MS = 86_400_000;
/** Rows dropped per sweep, so one alarm stays short; the next alarm follows at once while more are due. */
const SWEEP_LIMIT = 500;

export interface Swept {
  jobs: { id: string; content_sha256: string | null }[];
  nonces: number;
  webhooks: number;
}

export function sweepExpired(sql: SqlStorage, now: number): Swept {
  const jobs = sql.exec<{ id: string; content_sha256: string | null }>(
    'SELECT id, content_sha256 FROM jobs WHERE expires_at <= ? ORDER BY expires_at LIMIT ?', now, SWEEP_LIMIT).toArray();
  for (const j of jobs) {
    sql.exec('DELETE FROM jobs WHERE id = ?', j.id);
    // a pending delivery carries its own copy of the event and still goes out
    sql.exec("DELETE FROM webhooks WHERE job_id = ? AND status != 'pending'", j.id);
  }
  const nonces = sql.exec('DELETE FROM nonces WHERE expires < ?', now).rowsWritten;
  const webhooks = sql.exec("DELETE FROM webhooks WHERE status != 'pending' AND next_at < ?", now - WEBHOOK_KEEP_MS).rowsWritten;
  return { jobs, nonces, webhooks };
}
