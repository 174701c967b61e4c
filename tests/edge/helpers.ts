// Shared helpers for the workerd edge tests: keys, signed backend calls, a fake backend that completes a job.
import { SELF } from 'cloudflare:test';
import { type Artifact, LEASE_PATHS, SIG_HEADERS, sha256Hex, signRequest, type LeaseGrant } from '../../shared/lease.ts';
import type { CreatedKey } from '../../shared/api/keys.ts';
import type { Video } from '../../shared/api/videos.ts';

export const BASE = 'http://edge.test';
export const BACKEND_SECRET = 'test-backend-secret';
export const MODEL = 'uvit-t2v-demo';

export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(BASE + path, init);
}

export async function newKey(owner = 'alice', extra: Record<string, unknown> = {}): Promise<CreatedKey> {
  const res = await call('/admin/v1/keys', {
    method: 'POST',
    headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' },
    body: JSON.stringify({ owner, ...extra }),
  });
  if (res.status !== 201) throw new Error(`key creation failed: ${res.status} ${await res.text()}`);
  return res.json();
}

export function api(key: string, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${key}`);
  return call(path, { ...init, headers });
}

export async function createVideo(key: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Video> {
  const res = await api(key, '/v1/videos', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  return res.json();
}

export async function signed(method: string, path: string, body?: unknown, secret = BACKEND_SECRET): Promise<Response> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const sig = await signRequest({ secret, method, path, body: text });
  return call(path, { method, headers: { ...sig, 'content-type': 'application/json' }, body: text || undefined });
}

export async function lease(waitMs = 0, group = 'g1'): Promise<LeaseGrant | null> {
  const res = await signed('POST', LEASE_PATHS.lease, { group, model: MODEL, capacity: 1, wait_ms: waitMs });
  if (res.status === 204) return null;
  if (res.status !== 200) throw new Error(`lease failed: ${res.status} ${await res.text()}`);
  return res.json();
}

/** A fake MP4 whose bytes depend on the job's params (enough for content addressing). */
export function fakeMp4(seed: string, size = 4096): Uint8Array {
  const out = new Uint8Array(size);
  const tag = new TextEncoder().encode(`ftypisom${seed}`);
  for (let i = 0; i < size; i++) out[i] = tag[i % tag.length] ^ (i & 0xff);
  return out;
}

export async function uploadResult(leaseId: string, bytes: Uint8Array, opts: { declaredSha?: string; secret?: string } = {}): Promise<Response> {
  const sha = opts.declaredSha ?? (await sha256Hex(bytes));
  const path = LEASE_PATHS.result(leaseId);
  const sig = await signRequest({ secret: opts.secret ?? BACKEND_SECRET, method: 'PUT', path, bodySha256: sha });
  return call(path, {
    method: 'PUT',
    headers: { ...sig, [SIG_HEADERS.contentSha256]: sha, 'content-length': String(bytes.byteLength), 'content-type': 'video/mp4' },
    body: bytes,
  });
}

/** PUT one artifact of a lease (signed over its declared hash). */
export async function putArtifact(leaseId: string, name: string, bytes: Uint8Array, contentType: string, declaredSha?: string): Promise<Response> {
  const sha = declaredSha ?? (await sha256Hex(bytes));
  const path = LEASE_PATHS.artifact(leaseId, name);
  const sig = await signRequest({ secret: BACKEND_SECRET, method: 'PUT', path, bodySha256: sha });
  return call(path, {
    method: 'PUT',
    headers: { ...sig, [SIG_HEADERS.contentSha256]: sha, 'content-length': String(bytes.byteLength), 'content-type': contentType },
    body: bytes,
  });
}

/** The artifact entry (name, sha256, bytes, content_type) of bytes, for POST complete. */
export async function artifactOf(name: string, bytes: Uint8Array, contentType: string): Promise<Artifact> {
  return { name, sha256: await sha256Hex(bytes), bytes: bytes.byteLength, content_type: contentType as Artifact['content_type'] };
}

/** Leases the next job and completes it with fake bytes. */
export async function runOneJob(): Promise<{ grant: LeaseGrant; bytes: Uint8Array }> {
  const grant = await lease(2000);
  if (!grant) throw new Error('no job to lease');
  const bytes = fakeMp4(grant.job.params_hash);
  const res = await uploadResult(grant.lease_id, bytes);
  if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  return { grant, bytes };
}

/** Leases the next job and completes it with a video, a thumbnail and a spritesheet (fake bytes, real protocol). */
export async function runOneJobWithVariants(): Promise<{ grant: LeaseGrant; files: Record<'video' | 'thumbnail' | 'spritesheet', Uint8Array> }> {
  const grant = await lease(2000);
  if (!grant) throw new Error('no job to lease');
  const h = grant.job.params_hash;
  const files = { video: fakeMp4(h), thumbnail: fakeMp4(`thumb ${h}`, 300), spritesheet: fakeMp4(`sheet ${h}`, 900) };
  const types = { video: 'video/mp4', thumbnail: 'image/webp', spritesheet: 'image/jpeg' } as const;
  const artifacts: Artifact[] = [];
  for (const [name, bytes] of Object.entries(files) as [keyof typeof files, Uint8Array][]) {
    const res = await putArtifact(grant.lease_id, name, bytes, types[name]);
    if (res.status !== 200) throw new Error(`artifact ${name} failed: ${res.status} ${await res.text()}`);
    artifacts.push(await res.json());
  }
  const done = await signed('POST', LEASE_PATHS.complete(grant.lease_id), { artifacts });
  if (done.status !== 200) throw new Error(`complete failed: ${done.status} ${await done.text()}`);
  return { grant, files };
}

export async function expectProblem(res: Response, status: number, code?: string): Promise<Record<string, any>> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${text}`);
  if (!res.headers.get('content-type')?.startsWith('application/problem+json')) throw new Error(`not problem+json: ${res.headers.get('content-type')}`);
  const body = JSON.parse(text);
  if (code && body.code !== code) throw new Error(`expected code ${code}, got ${body.code}: ${body.detail}`);
  if (/\bat .*\(.*:\d+:\d+\)/.test(text)) throw new Error(`stack trace leaked: ${text}`);
  return body;
}

/** Waits until the Cache API holds the CDN path (a miss fills it in the background, after the response). */
export async function untilCached(path: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await caches.default.match(BASE + path)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${path} never reached the cache`);
}
