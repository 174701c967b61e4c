// A job's result files (synchronous SQL). An artifact verified into R2 under a lease is recorded in lease_artifacts;
// POST complete checks the backend's list against those rows and moves them to job_artifacts in the same
// transaction as the status change. job_artifacts is what references content: retention and DELETE free an R2
// object when no row of any shard names its hash.
import { type Artifact, PRIMARY_ARTIFACT } from '../../shared/lease.ts';
import { extOf, r2Key } from '../cache/cdnToken.ts';

/** Artifacts of a lease's uploads, kept until the job completes or the lease ends. */
export function recordUpload(sql: SqlStorage, leaseId: string, a: Artifact): void {
  sql.exec(
    `INSERT INTO lease_artifacts (lease_id, name, sha256, bytes, content_type) VALUES (?,?,?,?,?)
     ON CONFLICT(lease_id, name) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes, content_type = excluded.content_type`,
    leaseId, a.name, a.sha256, a.bytes, a.content_type);
}

/** Why `declared` cannot complete the lease (an artifact not uploaded under it, or uploaded with other bytes); null when it can. */
export function mismatch(sql: SqlStorage, leaseId: string, declared: Artifact[]): string | null {
  const have = new Map(
    sql.exec<Artifact>('SELECT name, sha256, bytes, content_type FROM lease_artifacts WHERE lease_id = ?', leaseId).toArray().map((a) => [a.name, a]));
  const problems: string[] = [];
  for (const d of declared) {
    const h = have.get(d.name);
    if (!h) problems.push(`${d.name}: not uploaded under this lease`);
    else if (h.sha256 !== d.sha256 || h.bytes !== d.bytes || h.content_type !== d.content_type)
      problems.push(`${d.name}: declared ${d.bytes} bytes ${d.content_type} sha256 ${d.sha256.slice(0, 12)}…, uploaded ${h.bytes} bytes ${h.content_type} sha256 ${h.sha256.slice(0, 12)}…`);
  }
  return problems.length ? problems.join('; ') : null;
}

/** The artifact that stands for the whole result (content_sha256, bytes, cdn_url of the video object). */
export function primary(list: Artifact[]): Artifact {
  return list.find((a) => a.name === PRIMARY_ARTIFACT) ?? list[0];
}

export function setJobArtifacts(sql: SqlStorage, jobId: string, list: Artifact[]): void {
  for (const a of list)
    sql.exec('INSERT OR REPLACE INTO job_artifacts (job_id, name, sha256, bytes, content_type) VALUES (?,?,?,?,?)',
      jobId, a.name, a.sha256, a.bytes, a.content_type);
}

export function jobArtifacts(sql: SqlStorage, jobId: string): Artifact[] {
  return sql.exec<Artifact>('SELECT name, sha256, bytes, content_type FROM job_artifacts WHERE job_id = ? ORDER BY name', jobId).toArray();
}

export function jobArtifact(sql: SqlStorage, jobId: string, name: string): Artifact | undefined {
  return sql.exec<Artifact>('SELECT name, sha256, bytes, content_type FROM job_artifacts WHERE job_id = ? AND name = ?', jobId, name).toArray()[0];
}

/** Removes a job's artifact rows; returns the R2 keys they named (to release when nothing else references them). */
export function dropJobArtifacts(sql: SqlStorage, jobId: string): ContentRef[] {
  const refs = jobArtifacts(sql, jobId).map(contentRef);
  sql.exec('DELETE FROM job_artifacts WHERE job_id = ?', jobId);
  return refs;
}

/** Stored content: its hash (what references count) and its R2 key. */
export type ContentRef = { sha256: string; key: string };

export function contentRef(a: Pick<Artifact, 'sha256' | 'content_type'>): ContentRef {
  return { sha256: a.sha256, key: r2Key(a.sha256, extOf(a.content_type)) };
}

/** Whether a job, or an upload waiting for its lease's complete, names the content. */
export function referenced(sql: SqlStorage, sha256: string): boolean {
  return sql.exec('SELECT 1 FROM job_artifacts WHERE sha256 = ? UNION ALL SELECT 1 FROM lease_artifacts WHERE sha256 = ? LIMIT 1', sha256, sha256)
    .toArray().length > 0;
}

/**
 * Upload rows (artifacts and multipart uploads) of leases that no longer hold a running job: completed, requeued,
 * failed or deleted. An unfinished R2 multipart upload is aborted by the bucket's lifecycle rule (7 days by default).
 */
export function pruneUploads(sql: SqlStorage): number {
  const ended = `lease_id NOT IN (SELECT lease_id FROM jobs WHERE status = 'in_progress' AND lease_id IS NOT NULL)`;
  return sql.exec(`DELETE FROM lease_artifacts WHERE ${ended}`).rowsWritten + sql.exec(`DELETE FROM uploads WHERE ${ended}`).rowsWritten;
}
