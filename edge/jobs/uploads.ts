// Multipart uploads of large artifacts (synchronous SQL): one row per upload while its parts arrive, in order, each
// verified by its own hash; the row carries the R2 upload and the parts stored so far.
import type { Artifact } from '../../shared/lease.ts';
import { fail, type Result } from './types.ts';

export type StoredPart = { part: number; etag: string; sha256: string };

export type UploadRow = {
  upload_id: string;
  lease_id: string;
  name: string;
  sha256: string; // declared hash of the whole artifact
  bytes: number;
  content_type: Artifact['content_type'];
  r2_upload_id: string; // of the staging key (cache/multipart.ts)
  part_bytes: number;
  parts: number; // how many parts the artifact has
  next_part: number; // 1-based: the part expected next; parts + 1 when all are in
  stored: string; // JSON StoredPart[]
};

export type NewUpload = Omit<UploadRow, 'next_part' | 'stored'>;

export function insertUpload(sql: SqlStorage, u: NewUpload): void {
  sql.exec(
    `INSERT INTO uploads (upload_id, lease_id, name, sha256, bytes, content_type, r2_upload_id, part_bytes, parts, next_part, stored)
     VALUES (?,?,?,?,?,?,?,?,?,1,'[]')`,
    u.upload_id, u.lease_id, u.name, u.sha256, u.bytes, u.content_type, u.r2_upload_id, u.part_bytes, u.parts);
}

/** The upload `uploadId` of artifact `name` under `leaseId`. */
export function findUpload(sql: SqlStorage, leaseId: string, name: string, uploadId: string): Result<UploadRow> {
  const u = sql.exec<UploadRow>('SELECT * FROM uploads WHERE upload_id = ? AND lease_id = ? AND name = ?', uploadId, leaseId, name).toArray()[0];
  return u ? { ok: true, value: u } : fail(404, 'upload_not_found', `No upload ${uploadId} of artifact ${name} under lease ${leaseId}.`);
}

/**
 * Records part `part`, stored and verified. Only the part expected next is taken: another request that stored it
 * meanwhile wins, and this one is told so.
 */
export function recordPart(sql: SqlStorage, uploadId: string, p: StoredPart): Result<{ next: number }> {
  const u = sql.exec<UploadRow>('SELECT * FROM uploads WHERE upload_id = ?', uploadId).toArray()[0];
  if (!u) return fail(404, 'upload_not_found', `Upload ${uploadId} is gone (its lease ended).`);
  if (u.next_part !== p.part) return fail(409, 'part_out_of_order', `Part ${p.part} of upload ${uploadId}: part ${u.next_part} is expected next.`);
  const stored = [...(JSON.parse(u.stored) as StoredPart[]), p];
  sql.exec('UPDATE uploads SET next_part = ?, stored = ? WHERE upload_id = ?', p.part + 1, JSON.stringify(stored), uploadId);
  return { ok: true, value: { next: p.part + 1 } };
}
