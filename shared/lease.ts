// Lease API between the edge (JobStore) and backend groups: wire schemas + the request-signing helper.
// Runtime-agnostic (WebCrypto + zod only): imported by the Workers edge and by the Node backend driver.
import * as z from 'zod';

// ---------------------------------------------------------------- paths and headers

export const LEASE_PATHS = {
  lease: '/internal/v1/lease',
  heartbeat: (leaseId: string) => `/internal/v1/leases/${encodeURIComponent(leaseId)}/heartbeat`,
  /** the single-`video` shorthand of artifact + complete (backends that predate artifacts) */
  result: (leaseId: string) => `/internal/v1/leases/${encodeURIComponent(leaseId)}/result`,
  fail: (leaseId: string) => `/internal/v1/leases/${encodeURIComponent(leaseId)}/fail`,
  /** PUT one artifact in one request (≤ MAX_PUT_BYTES) */
  artifact: (leaseId: string, name: string) => `/internal/v1/leases/${encodeURIComponent(leaseId)}/artifacts/${name}`,
  /** POST: start a multipart upload of a larger artifact */
  uploads: (leaseId: string, name: string) => `/internal/v1/leases/${encodeURIComponent(leaseId)}/artifacts/${name}/uploads`,
  /** PUT part `part` (1-based, in order) of a multipart upload */
  part: (leaseId: string, name: string, uploadId: string, part: number) =>
    `/internal/v1/leases/${encodeURIComponent(leaseId)}/artifacts/${name}/uploads/${uploadId}/parts/${part}`,
  /** POST: finish a multipart upload (the whole hash is checked) */
  uploadDone: (leaseId: string, name: string, uploadId: string) =>
    `/internal/v1/leases/${encodeURIComponent(leaseId)}/artifacts/${name}/uploads/${uploadId}/complete`,
  /** POST: complete the job with the artifacts uploaded under this lease */
  complete: (leaseId: string) => `/internal/v1/leases/${encodeURIComponent(leaseId)}/complete`,
} as const;

/** Headers of a signed backend request (lower-case, as Headers normalises them). */
export const SIG_HEADERS = {
  timestamp: 'x-uvit-timestamp', // unix seconds
  nonce: 'x-uvit-nonce', // 16+ random bytes, hex or base64url; usable once (the edge remembers it past the window)
  signature: 'x-uvit-signature', // hex HMAC-SHA256 over canonicalString()
  contentSha256: 'x-content-sha256', // PUT result / artifact / part: hex sha256 of the body (also the signed body hash)
} as const;

/** Accepted clock skew between backend and edge, in seconds, either way. */
export const SIGNATURE_WINDOW_S = 60;
/** Longest long-poll the edge will hold a lease request open. */
export const MAX_LEASE_WAIT_MS = 25_000;

// ---------------------------------------------------------------- wire schemas

const Id = z.string().min(1).max(128).regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only');

/** POST /internal/v1/lease — a backend group asks for one job for `model`. */
export const LeaseRequest = z.object({
  group: Id.describe('backend group id; a group is one pipeline (driver + stages) for one model'),
  model: Id,
  capacity: z.number().int().min(1).max(1024).describe('jobs the group can run at once (for the pool view)'),
  stages: z.number().int().min(1).max(64).optional(),
  wait_ms: z.number().int().min(0).max(MAX_LEASE_WAIT_MS).optional().describe('long-poll bound, default 20000'),
});
export type LeaseRequest = z.infer<typeof LeaseRequest>;

/** Most images one image job makes (OpenAI's images API allows n up to 10). */
export const MAX_IMAGES_PER_JOB = 10;

/** Canonical generation parameters handed to the backend: everything needed to reproduce the clip bit for bit. */
export const JobSpec = z.object({
  id: z.string(), // video id (`video_…`), for logs only; results are keyed by lease
  model: z.string(),
  prompt: z.string(),
  seconds: z.number().positive(), // clip duration
  fps: z.number().int().positive(),
  num_frames: z.number().int().positive(), // = round(seconds * fps)
  size: z.string().regex(/^\d+x\d+$/), // "WxH"
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  seed: z.number().int().min(0).max(2 ** 32 - 1), // always set (the edge draws one when the caller gave none)
  steps: z.number().int().positive(),
  guidance: z.number().min(0),
  params_hash: z.string(), // sha256 of the canonical params: the dedup key
  // Image jobs (POST /v1/images/generations). Absent kind = 'video', so rows and backends from before images keep
  // working. An image job is one still frame per image: num_frames 1, fps 1, seconds 1; width/height are the image's.
  kind: z.enum(['video', 'image']).optional(),
  n: z.number().int().min(1).max(MAX_IMAGES_PER_JOB).optional(), // images to make (image jobs; absent = 1)
  class_label: z.number().int().min(0).optional(), // class-conditional image models: the class index
});
export type JobSpec = z.infer<typeof JobSpec>;

/** Artifact names of an image job's PNGs, uploaded as image/png: image-0 … image-{n-1}. */
export function imageArtifactName(i: number): string {
  return `image-${i}`;
}

/** 200 answer to a lease request (204 with no body when the long-poll ran out). */
export const LeaseGrant = z.object({
  lease_id: z.string(),
  job: JobSpec,
  attempt: z.number().int().min(1), // 1 for the first lease of this job
  expires_at: z.number().int(), // unix ms; heartbeat before then or the job is requeued
  heartbeat_interval_ms: z.number().int().positive(),
});
export type LeaseGrant = z.infer<typeof LeaseGrant>;

/** POST .../heartbeat: progress in percent; extends the lease. */
export const HeartbeatRequest = z.object({
  progress: z.number().min(0).max(100),
  message: z.string().max(500).optional(),
});
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;

/** Heartbeat answer. `cancel: true` = the caller cancelled or deleted the job: stop and drop the lease. */
export const HeartbeatResponse = z.object({
  expires_at: z.number().int(),
  cancel: z.boolean(),
});
export type HeartbeatResponse = z.infer<typeof HeartbeatResponse>;

/** POST .../fail. retryable → requeued until the attempt limit, then `failed` with this reason. */
export const FailRequest = z.object({
  reason: z.string().min(1).max(2000),
  retryable: z.boolean(),
  code: z.string().max(64).optional(),
});
export type FailRequest = z.infer<typeof FailRequest>;

/** PUT .../result answer (the upload completes the job). */
export const ResultResponse = z.object({
  id: z.string(),
  status: z.literal('completed'),
  sha256: z.string(),
  bytes: z.number().int(),
});
export type ResultResponse = z.infer<typeof ResultResponse>;

// ---------------------------------------------------------------- artifacts (a job's result files)

/** Artifact names: `video`, `thumbnail`, `spritesheet`, `image-0`, `image-1`, … */
export const ARTIFACT_NAME = /^[a-z0-9-]{1,32}$/;
/** Content types an artifact may have, and the file extension its R2 key and CDN path end in. */
export const ARTIFACT_TYPES = { 'video/mp4': 'mp4', 'image/webp': 'webp', 'image/jpeg': 'jpg', 'image/png': 'png' } as const;
export type ArtifactContentType = keyof typeof ARTIFACT_TYPES;
/** The artifact whose content is the job's `content_sha256`/`bytes`/`cdn_url` when listed; else the first listed. */
export const PRIMARY_ARTIFACT = 'video';
/**
 * Largest body of one PUT (artifact, result or multipart part), under the 100 MB request-body limit of the smaller
 * Workers plans; larger artifacts go multipart, in parts of this size (R2 wants all parts but the last the same size
 * and ≥ 5 MiB; a multiple of 64 bytes lets the edge carry its whole-object hash from part to part).
 */
export const MAX_PUT_BYTES = 64 * 1024 * 1024;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, '64 lower-case hex characters');
export const ArtifactName = z.string().regex(ARTIFACT_NAME, 'lower-case letters, digits and -, 1-32 characters');
export const ContentType = z.enum(Object.keys(ARTIFACT_TYPES) as [ArtifactContentType, ...ArtifactContentType[]]);

/** One stored artifact: the answer to its upload, and an entry of POST .../complete. */
export const Artifact = z.object({
  name: ArtifactName,
  sha256: Sha256,
  bytes: z.number().int().min(1),
  content_type: ContentType,
});
export type Artifact = z.infer<typeof Artifact>;

/** POST .../complete: every artifact of the result, each uploaded under this lease first. */
export const CompleteRequest = z.object({
  artifacts: z.array(Artifact).min(1).max(64).refine((a) => new Set(a.map((x) => x.name)).size === a.length, 'artifact names must be unique'),
});
export type CompleteRequest = z.infer<typeof CompleteRequest>;

/** POST .../complete answer: ResultResponse of the primary artifact, and all of them. */
export const CompleteResponse = ResultResponse.extend({ artifacts: z.array(Artifact) });
export type CompleteResponse = z.infer<typeof CompleteResponse>;

/** POST .../artifacts/{name}/uploads: the whole artifact as it will be. */
export const UploadStart = Artifact.omit({ name: true });
export type UploadStart = z.infer<typeof UploadStart>;

/** Answer: upload id, part size, and the number of parts to PUT (1 … parts, in order). */
export const UploadStarted = z.object({
  upload_id: z.string().regex(/^up_[0-9a-f]{32}$/),
  part_bytes: z.number().int().positive(),
  parts: z.number().int().positive(),
});
export type UploadStarted = z.infer<typeof UploadStarted>;

/** PUT .../parts/{n} answer. */
export const PartStored = z.object({ part: z.number().int().min(1), sha256: Sha256, bytes: z.number().int().min(1) });
export type PartStored = z.infer<typeof PartStored>;

// ---------------------------------------------------------------- signing

const enc = new TextEncoder();

function toHex(buf: ArrayBuffer | Uint8Array): string {
  const b = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, '0');
  return s;
}

/** Hex SHA-256 of bytes or a UTF-8 string. */
export async function sha256Hex(data: string | Uint8Array | ArrayBuffer): Promise<string> {
  const bytes = typeof data === 'string' ? enc.encode(data) : data instanceof Uint8Array ? data : new Uint8Array(data);
  return toHex(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
}

/**
 * The dedup key of a seeded request: the hash of its canonical params and, when the catalog gives one, the model's
 * revision, so that new weights or sampler settings under the same model id generate anew instead of answering with
 * the old model's result. Without a revision the key is the canonical params' hash alone.
 */
export function paramsHash(canonical: string, revision?: string): Promise<string> {
  return sha256Hex(revision === undefined ? canonical : JSON.stringify([canonical, revision]));
}

/** Hex SHA-256 of the empty body (GET/DELETE and bodiless POSTs). */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** The string that is signed. `path` is the URL path plus query string exactly as sent (e.g. `/internal/v1/lease`). */
export function canonicalString(method: string, path: string, timestamp: number, nonce: string, bodySha256: string): string {
  return `${method.toUpperCase()}\n${path}\n${timestamp}\n${nonce}\n${bodySha256.toLowerCase()}`;
}

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return toHex(await crypto.subtle.sign('HMAC', key, enc.encode(message)));
}

function randomNonce(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return toHex(b);
}

export interface SignInput {
  secret: string;
  method: string;
  /** path + query, e.g. `/internal/v1/leases/abc/heartbeat` */
  path: string;
  /** exactly the bytes sent; or give bodySha256 for a streamed upload (PUT result: the X-Content-SHA256 value) */
  body?: string | Uint8Array;
  bodySha256?: string;
  /** unix seconds; default now */
  timestamp?: number;
  nonce?: string;
}

/** Headers to add to a backend → edge request. For PUT result also send Content-Length and X-Content-SHA256. */
export async function signRequest(input: SignInput): Promise<Record<string, string>> {
  const timestamp = input.timestamp ?? Math.floor(Date.now() / 1000);
  const nonce = input.nonce ?? randomNonce();
  const bodySha =
    input.bodySha256 ?? (input.body === undefined || input.body.length === 0 ? EMPTY_SHA256 : await sha256Hex(input.body));
  const sig = await hmacHex(input.secret, canonicalString(input.method, input.path, timestamp, nonce, bodySha));
  return { [SIG_HEADERS.timestamp]: String(timestamp), [SIG_HEADERS.nonce]: nonce, [SIG_HEADERS.signature]: sig };
}

export type VerifyResult = { ok: true; nonce: string; timestamp: number } | { ok: false; reason: string };

/** Constant-time comparison of two equal-length hex strings (false when lengths differ). */
export function timingSafeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Checks signature and timestamp window. Nonce replay is the caller's job (it needs a consistent store):
 * remember `nonce` until `timestamp` + 2 × SIGNATURE_WINDOW_S (a fixed time after arrival would let a request stamped
 * in the future be replayed while its timestamp still passes) and reject a second use.
 */
export async function verifySignature(
  secret: string,
  method: string,
  path: string,
  headers: { get(name: string): string | null },
  bodySha256: string,
  nowS: number = Math.floor(Date.now() / 1000),
): Promise<VerifyResult> {
  const ts = headers.get(SIG_HEADERS.timestamp);
  const nonce = headers.get(SIG_HEADERS.nonce);
  const sig = headers.get(SIG_HEADERS.signature);
  if (!ts || !nonce || !sig) return { ok: false, reason: `missing ${[!ts && SIG_HEADERS.timestamp, !nonce && SIG_HEADERS.nonce, !sig && SIG_HEADERS.signature].filter(Boolean).join(', ')}` };
  if (!/^\d{1,12}$/.test(ts)) return { ok: false, reason: `${SIG_HEADERS.timestamp} must be unix seconds, got ${JSON.stringify(ts.slice(0, 32))}` };
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(nonce)) return { ok: false, reason: `${SIG_HEADERS.nonce} must be 16-128 chars of [A-Za-z0-9_-]` };
  const timestamp = Number(ts);
  if (Math.abs(nowS - timestamp) > SIGNATURE_WINDOW_S)
    return { ok: false, reason: `timestamp ${timestamp} is outside ±${SIGNATURE_WINDOW_S} s of server time ${nowS}` };
  const expected = await hmacHex(secret, canonicalString(method, path, timestamp, nonce, bodySha256));
  if (!timingSafeEqualHex(expected, sig.toLowerCase())) return { ok: false, reason: 'signature mismatch' };
  return { ok: true, nonce, timestamp };
}

/**
 * Convenience for backends: sends one signed JSON request (or a bodiless one) and returns the Response.
 * For the streamed PUT result, call signRequest({bodySha256}) yourself and add Content-Length + X-Content-SHA256.
 */
export async function signedJsonFetch(
  baseUrl: string,
  secret: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  fetchFn: typeof fetch = fetch,
): Promise<Response> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const sig = await signRequest({ secret, method, path, body: text });
  return fetchFn(new URL(path, baseUrl).toString(), {
    method,
    headers: { ...sig, ...(text ? { 'content-type': 'application/json' } : {}) },
    body: text || undefined,
  });
}
