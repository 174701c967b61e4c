// Lease API for backend groups (/internal/v1), HMAC-signed (auth/backend.ts). Wire shapes: shared/lease.ts.
import { type Context, Hono } from 'hono';
import type { z } from 'zod';
import {
  ARTIFACT_NAME,
  type Artifact,
  type ArtifactContentType,
  CompleteRequest,
  ContentType,
  FailRequest,
  HeartbeatRequest,
  LEASE_PATHS,
  LeaseRequest,
  MAX_LEASE_WAIT_MS,
  MAX_PUT_BYTES,
  PRIMARY_ARTIFACT,
  SIG_HEADERS,
  UploadStart,
} from '../../shared/lease.ts';
import { randomHex } from '../auth/apiKey.ts';
import { finishUpload, stagingKey, streamPart } from '../cache/multipart.ts';
import type { StoredPart } from '../jobs/uploads.ts';
import { metricsGuard } from '../auth/admin.ts';
import { verifyBackend } from '../auth/backend.ts';
import { uploadVerified } from '../cache/upload.ts';
import { leaseStore } from '../env.ts';
import { leaseAcross, queueAcross } from '../jobs/fanout.ts';
import { intVar } from '../vars.ts';
import type { AppEnv } from '../http/app.ts';
import { parseJson } from '../http/body.ts';
import { problem, zodProblem } from '../http/problem.ts';
import { servedModel } from '../models.ts';

export const internal = new Hono<AppEnv>();

async function signedJson<T extends z.ZodType>(req: Request, env: AppEnv['Bindings'], schema: T, what: string) {
  const v = await verifyBackend(req, env);
  if (!v.ok) return { res: problem(v.problem) };
  const j = parseJson(v.body ?? new Uint8Array());
  if (!j.ok) return { res: problem(j.problem) };
  const p = schema.safeParse(j.value);
  if (!p.success) return { res: zodProblem(p.error, what) };
  return { data: p.data as z.infer<T> };
}

internal.post('/lease', async (c) => {
  const r = await signedJson(c.req.raw, c.env, LeaseRequest, 'lease request');
  if (!r.data) return r.res;
  if (!servedModel(c.env, r.data.model))
    return problem({ status: 422, code: 'unknown_model', detail: `Model ${JSON.stringify(r.data.model)} is not in this edge's catalog.` });
  const grant = await leaseAcross(c.env, r.data, Math.min(r.data.wait_ms ?? 20_000, MAX_LEASE_WAIT_MS));
  return grant ? c.json(grant) : c.body(null, 204);
});

internal.post('/leases/:lease/heartbeat', async (c) => {
  const r = await signedJson(c.req.raw, c.env, HeartbeatRequest, 'heartbeat');
  if (!r.data) return r.res;
  const h = await leaseStore(c.env, c.req.param('lease')).heartbeat(c.req.param('lease'), r.data);
  return h.ok ? c.json(h.value) : problem(h.problem);
});

internal.post('/leases/:lease/fail', async (c) => {
  const r = await signedJson(c.req.raw, c.env, FailRequest, 'fail request');
  if (!r.data) return r.res;
  const f = await leaseStore(c.env, c.req.param('lease')).failLease(c.req.param('lease'), r.data);
  return f.ok ? c.json(f.value) : problem(f.problem);
});

/** Checks the headers of a streamed PUT (artifact, result, part): signature, Content-Length within `max`. */
async function streamedPut(c: Context<AppEnv>, max: number, what: string): Promise<{ res: Response } | { length: number; sha: string }> {
  const v = await verifyBackend(c.req.raw, c.env, true);
  if (!v.ok) return { res: problem(v.problem) };
  const lenHeader = c.req.header('content-length');
  if (lenHeader === undefined || !/^\d+$/.test(lenHeader))
    return { res: problem({ status: 411, code: 'length_required', detail: `PUT ${what} needs a Content-Length header.` }) };
  const length = Number(lenHeader);
  if (length === 0) return { res: problem({ status: 400, code: 'empty_result', detail: `The ${what} body is empty.` }) };
  if (length > max) {
    const hint = length <= maxResult(c) ? ` Larger artifacts upload in parts: POST ${LEASE_PATHS.uploads(':lease', ':name')}.` : '';
    return { res: problem({ status: 413, code: 'result_too_large', detail: `A ${what} of ${length} bytes exceeds ${max} bytes.${hint}` }) };
  }
  return { length, sha: c.req.header(SIG_HEADERS.contentSha256)!.toLowerCase() };
}

const maxResult = (c: Context<AppEnv>) => intVar(c.env.MAX_RESULT_BYTES, 512 * 1024 * 1024);
const maxPut = (c: Context<AppEnv>) => Math.min(MAX_PUT_BYTES, maxResult(c));

const badName = (name: string) =>
  problem({ status: 400, code: 'invalid_artifact_name', detail: `Artifact name ${JSON.stringify(name.slice(0, 40))} must match ${ARTIFACT_NAME}.` });

/** Multipart part size: UPLOAD_PART_BYTES (tests), a multiple of 64 within R2's 5 MiB minimum and MAX_PUT_BYTES. */
function partSize(env: AppEnv['Bindings']): number {
  const b = intVar(env.UPLOAD_PART_BYTES, MAX_PUT_BYTES);
  return b % 64 === 0 && b >= 5 * 1024 * 1024 && b <= MAX_PUT_BYTES ? b : MAX_PUT_BYTES;
}

/** The artifact name of the path and the content type of the request, or the problem with them. */
function artifactOf(c: Context<AppEnv>): { name: string; contentType: ArtifactContentType } | { res: Response } {
  const name = c.req.param('name') ?? '';
  if (!ARTIFACT_NAME.test(name)) return { res: badName(name) };
  const type = (c.req.header('content-type') ?? '').split(';')[0].trim().toLowerCase();
  const t = ContentType.safeParse(type);
  if (!t.success)
    return { res: problem({ status: 415, code: 'unsupported_content_type', detail: `Content-Type ${JSON.stringify(type)} is not an artifact type; one of ${ContentType.options.join(', ')}.` }) };
  return { name, contentType: t.data };
}

/** A one-request upload (≤ MAX_PUT_BYTES) under a lease still held, streamed and verified into R2. */
async function putUnderLease(c: Context<AppEnv>, what: string, contentType: ArtifactContentType) {
  const put = await streamedPut(c, maxPut(c), what);
  if ('res' in put) return put;
  const leaseId = c.req.param('lease') ?? '';
  const store = leaseStore(c.env, leaseId);
  const held = await store.checkLease(leaseId);
  if (!held.ok) return { res: problem(held.problem) };
  return { store, leaseId, up: await uploadVerified(c.env.RESULTS, c.req.raw.body!, put.sha, put.length, contentType) };
}

// One artifact in one request: verified into R2, then recorded under the lease for its POST complete.
internal.put('/leases/:lease/artifacts/:name', async (c) => {
  const art = artifactOf(c);
  if ('res' in art) return art.res;
  const p = await putUnderLease(c, 'artifact', art.contentType);
  if ('res' in p) return p.res;
  const { store, leaseId, up } = p;
  if (!up.ok) return problem({ status: 422, code: 'artifact_corrupt', detail: `Artifact ${art.name}: ${up.reason}; nothing was stored, PUT it again.` });
  const a: Artifact = { name: art.name, sha256: up.sha256, bytes: up.bytes, content_type: art.contentType };
  const rec = await store.recordArtifact(leaseId, a);
  return rec.ok ? c.json(a) : problem(rec.problem);
});

internal.post('/leases/:lease/complete', async (c) => {
  const r = await signedJson(c.req.raw, c.env, CompleteRequest, 'complete request');
  if (!r.data) return r.res;
  const done = await leaseStore(c.env, c.req.param('lease')).complete(c.req.param('lease'), r.data.artifacts);
  if (!done.ok) return problem(done.problem);
  const { sha256, bytes } = done.value.primary;
  return c.json({ id: done.value.id, status: 'completed', sha256, bytes, artifacts: r.data.artifacts });
});

// Multipart, for artifacts above MAX_PUT_BYTES: POST …/uploads starts one with the whole artifact's hash, size and
// type; PUT …/parts/{n} sends parts 1…N in order, each verified by its own hash; POST …/complete checks the whole
// hash and only then stores it under its content key (cache/multipart.ts).
internal.post('/leases/:lease/artifacts/:name/uploads', async (c) => {
  const name = c.req.param('name');
  if (!ARTIFACT_NAME.test(name)) return badName(name);
  const r = await signedJson(c.req.raw, c.env, UploadStart, 'upload start');
  if (!r.data) return r.res;
  const { sha256, bytes, content_type } = r.data;
  if (bytes > maxResult(c)) return problem({ status: 413, code: 'result_too_large', detail: `An artifact of ${bytes} bytes exceeds ${maxResult(c)} bytes.` });
  const leaseId = c.req.param('lease');
  const store = leaseStore(c.env, leaseId);
  const held = await store.checkLease(leaseId);
  if (!held.ok) return problem(held.problem);
  const partBytes = partSize(c.env);
  const uploadId = `up_${randomHex(16)}`;
  const mp = await c.env.RESULTS.createMultipartUpload(stagingKey(uploadId));
  const upload = { upload_id: uploadId, lease_id: leaseId, name, sha256, bytes, content_type, r2_upload_id: mp.uploadId, part_bytes: partBytes, parts: Math.ceil(bytes / partBytes) };
  const s = await store.startUpload(upload);
  if (!s.ok) {
    await mp.abort();
    return problem(s.problem);
  }
  return c.json({ upload_id: upload.upload_id, part_bytes: partBytes, parts: upload.parts });
});

internal.put('/leases/:lease/artifacts/:name/uploads/:upload/parts/:part', async (c) => {
  const put = await streamedPut(c, MAX_PUT_BYTES, 'part');
  if ('res' in put) return put.res;
  const { lease: leaseId, name, upload: uploadId } = c.req.param();
  const n = Number(c.req.param('part'));
  const store = leaseStore(c.env, leaseId);
  const u = await store.upload(leaseId, name, uploadId);
  if (!u.ok) return problem(u.problem);
  const row = u.value;
  if (!Number.isInteger(n) || n < 1 || n > row.parts)
    return problem({ status: 400, code: 'invalid_part', detail: `Part ${JSON.stringify(c.req.param('part'))}: upload ${uploadId} has parts 1…${row.parts}.` });
  if (n < row.next_part) {
    // a retry of a part already stored (its answer was lost): the same bytes are acknowledged, others refused
    const prev = (JSON.parse(row.stored) as StoredPart[])[n - 1];
    if (prev.sha256 !== put.sha) return problem({ status: 409, code: 'part_out_of_order', detail: `Part ${n} is already stored with other bytes; part ${row.next_part} is expected next.` });
    await c.req.raw.body?.cancel();
    return c.json({ part: n, sha256: prev.sha256, bytes: put.length });
  }
  if (n > row.next_part) return problem({ status: 409, code: 'part_out_of_order', detail: `Part ${n} of upload ${uploadId}: part ${row.next_part} is expected next.` });
  const length = n < row.parts ? row.part_bytes : row.bytes - (row.parts - 1) * row.part_bytes;
  if (put.length !== length) return problem({ status: 400, code: 'wrong_part_length', detail: `Part ${n} of ${row.parts} must be ${length} bytes, Content-Length says ${put.length}.` });
  const mp = c.env.RESULTS.resumeMultipartUpload(stagingKey(uploadId), row.r2_upload_id);
  const out = await streamPart(mp, { n, length, sha256: put.sha }, c.req.raw.body!);
  if (!out.ok) return problem({ status: 422, code: 'part_corrupt', detail: `${out.reason}; nothing was recorded, PUT part ${n} again.` });
  const rec = await store.recordPart(leaseId, uploadId, { part: n, etag: out.etag, sha256: out.sha256 });
  return rec.ok ? c.json({ part: n, sha256: out.sha256, bytes: length }) : problem(rec.problem);
});

internal.post('/leases/:lease/artifacts/:name/uploads/:upload/complete', async (c) => {
  const v = await verifyBackend(c.req.raw, c.env);
  if (!v.ok) return problem(v.problem);
  const { lease: leaseId, name, upload: uploadId } = c.req.param();
  const store = leaseStore(c.env, leaseId);
  const u = await store.upload(leaseId, name, uploadId);
  if (!u.ok) return problem(u.problem);
  const row = u.value;
  if (row.next_part <= row.parts)
    return problem({ status: 409, code: 'upload_incomplete', detail: `Upload ${uploadId} has ${row.next_part - 1} of ${row.parts} parts; part ${row.next_part} is next.` });
  const parts = (JSON.parse(row.stored) as StoredPart[]).map((p) => ({ partNumber: p.part, etag: p.etag }));
  const f = await finishUpload(c.env.RESULTS, row, parts);
  if (!f.ok) {
    await store.dropUpload(uploadId);
    return problem({ status: 422, code: 'artifact_corrupt', detail: `Upload ${uploadId}: ${f.reason}; nothing was stored, start it again.` });
  }
  const a: Artifact = { name, sha256: row.sha256, bytes: row.bytes, content_type: row.content_type };
  const rec = await store.recordArtifact(leaseId, a, uploadId);
  return rec.ok ? c.json(a) : problem(rec.problem);
});

// The single-`video` shorthand of artifact + complete, for backends that predate artifacts. A corrupt body gives
// the job back to the queue, as it always did.
internal.put('/leases/:lease/result', async (c) => {
  const p = await putUnderLease(c, 'result', 'video/mp4');
  if ('res' in p) return p.res;
  const { store, leaseId, up } = p;
  if (!up.ok) {
    const f = await store.failLease(leaseId, { reason: `result upload rejected: ${up.reason}`, retryable: true, code: 'result_corrupt' });
    return problem({ status: 422, code: 'result_corrupt', detail: `${up.reason}; the job is ${f.ok ? f.value.status : 'no longer leased'}.` });
  }
  const video: Artifact = { name: PRIMARY_ARTIFACT, sha256: up.sha256, bytes: up.bytes, content_type: 'video/mp4' };
  const done = await store.complete(leaseId, [video], [video]);
  if (!done.ok) return problem(done.problem);
  return c.json({ id: done.value.id, status: 'completed', sha256: up.sha256, bytes: up.bytes });
});

// Read-only queue depth for autoscalers (KEDA metrics-api: valueLocation "queued"); METRICS_TOKEN or ADMIN_TOKEN.
internal.get('/queue', metricsGuard, async (c) => {
  const model = c.req.query('model') ?? null;
  if (model !== null && !servedModel(c.env, model))
    return problem({ status: 404, code: 'unknown_model', detail: `Model ${JSON.stringify(model)} is not in this edge's catalog.` });
  const stats = await queueAcross(c.env, model);
  if (model !== null) return c.json(stats[0]);
  const sum = (k: 'queued' | 'in_progress' | 'groups') => stats.reduce((a, s) => a + s[k], 0);
  return c.json({ queued: sum('queued'), in_progress: sum('in_progress'), groups: sum('groups'), models: stats });
});
