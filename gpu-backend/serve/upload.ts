// Uploads a job's result to the edge as named artifacts, then completes the job with their list (shared/lease.ts,
// docs/protocol.md §1.3). Each artifact goes in one signed PUT up to MAX_PUT_BYTES, or else multipart, part by part;
// bytes are read from a file in a streamed pass to hash and another to send, small chunks at a time, so neither a part
// nor the result is held in memory (a stream is spooled to a file first; measured in
// tests/edge/multipart.node.test.ts). Every request is retried on 5xx and network errors.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, rmSync, statSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  type Artifact,
  type ArtifactContentType,
  CompleteResponse,
  EMPTY_SHA256,
  LEASE_PATHS,
  MAX_PUT_BYTES,
  SIG_HEADERS,
  signedJsonFetch,
  signRequest,
  UploadStarted,
} from '../../shared/lease.ts';
import { JobError } from './jobError.ts';

/** One result file: its bytes in memory, a stream, or a file on disk. */
export type ArtifactInput = { name: string; content_type: ArtifactContentType } & (
  | { bytes: Uint8Array }
  | { stream: AsyncIterable<Uint8Array> }
  | { file: string }
);

export interface EdgeLink {
  edge: string;
  secret: string;
  fetch: typeof fetch;
  /** where a streamed artifact is spooled */
  workDir: string;
  /** keeps the lease while a long upload runs (called before each multipart part) */
  heartbeat?: () => Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Uploads every artifact, then POSTs complete; the edge's answer, or a JobError. */
export async function uploadArtifacts(link: EdgeLink, leaseId: string, inputs: ArtifactInput[]): Promise<CompleteResponse> {
  const artifacts: Artifact[] = [];
  for (const input of inputs) artifacts.push(await uploadOne(link, leaseId, input));
  const res = await retried('complete', async () => {
    const r = await signedJsonFetch(link.edge, link.secret, 'POST', LEASE_PATHS.complete(leaseId), { artifacts }, link.fetch);
    return [r.status, await r.text()];
  });
  return CompleteResponse.parse(JSON.parse(res));
}

async function uploadOne(link: EdgeLink, leaseId: string, input: ArtifactInput): Promise<Artifact> {
  const spooled = 'stream' in input ? join(link.workDir, `${leaseId.replace(/[^A-Za-z0-9_-]/g, '_')}-${input.name}.spool`) : null;
  try {
    const src: Source = 'file' in input ? { file: input.file } : spooled ? { file: spooled } : { bytes: (input as { bytes: Uint8Array }).bytes };
    if (spooled) await pipeline(Readable.from((input as { stream: AsyncIterable<Uint8Array> }).stream), createWriteStream(spooled));
    const size = 'bytes' in src ? src.bytes.byteLength : statSync(src.file).size;
    const a: Artifact = { name: input.name, sha256: await hashOf(src, 0, size), bytes: size, content_type: input.content_type };
    if (size <= MAX_PUT_BYTES) await put(link, LEASE_PATHS.artifact(leaseId, a.name), src, 0, size, a.sha256, a.content_type);
    else await multipart(link, leaseId, a, src);
    return a;
  } finally {
    if (spooled) rmSync(spooled, { force: true });
  }
}

type Source = { bytes: Uint8Array } | { file: string };

/** A fresh body of bytes [start, end) for each attempt. */
function body(src: Source, start: number, end: number): Uint8Array | ReadableStream<Uint8Array> {
  return 'bytes' in src ? src.bytes.subarray(start, end) : fileRange(src.file, start, end);
}

/**
 * Bytes [start, end) of a file, read only as the request consumes them (Readable.toWeb of a file stream reads ahead
 * without bound when the network is slower than the disk, which held most of a 64 MiB part in memory).
 */
function fileRange(file: string, start: number, end: number): ReadableStream<Uint8Array> {
  let pos = start;
  let fh: FileHandle | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      fh ??= await open(file, 'r');
      const buf = new Uint8Array(Math.min(256 * 1024, end - pos));
      const { bytesRead } = buf.length > 0 ? await fh.read(buf, 0, buf.length, pos) : { bytesRead: 0 };
      if (bytesRead === 0) {
        await fh.close();
        ctl.close();
        return;
      }
      pos += bytesRead;
      ctl.enqueue(buf.subarray(0, bytesRead));
    },
    async cancel() {
      await fh?.close();
    },
  }, { highWaterMark: 0 });
}

async function hashOf(src: Source, start: number, end: number): Promise<string> {
  const h = createHash('sha256');
  if ('bytes' in src) h.update(src.bytes.subarray(start, end));
  else for await (const chunk of createReadStream(src.file, { start, end: end - 1 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function multipart(link: EdgeLink, leaseId: string, a: Artifact, src: Source): Promise<void> {
  const started = await retried('upload start', async () => {
    const r = await signedJsonFetch(link.edge, link.secret, 'POST', LEASE_PATHS.uploads(leaseId, a.name), { sha256: a.sha256, bytes: a.bytes, content_type: a.content_type }, link.fetch);
    return [r.status, await r.text()];
  });
  const up = UploadStarted.parse(JSON.parse(started));
  for (let n = 1; n <= up.parts; n++) {
    await link.heartbeat?.();
    const start = (n - 1) * up.part_bytes;
    const end = Math.min(a.bytes, start + up.part_bytes);
    await put(link, LEASE_PATHS.part(leaseId, a.name, up.upload_id, n), src, start, end, await hashOf(src, start, end));
  }
  const path = LEASE_PATHS.uploadDone(leaseId, a.name, up.upload_id);
  await retried('upload complete', async () => {
    const sig = await signRequest({ secret: link.secret, method: 'POST', path, bodySha256: EMPTY_SHA256 });
    const r = await link.fetch(new URL(path, link.edge).toString(), { method: 'POST', headers: sig });
    return [r.status, await r.text()];
  });
}

/** One signed, streamed PUT of bytes [start, end) hashing to `sha256`. */
async function put(link: EdgeLink, path: string, src: Source, start: number, end: number, sha256: string, contentType?: string): Promise<void> {
  await retried(`PUT ${path}`, async () => {
    const sig = await signRequest({ secret: link.secret, method: 'PUT', path, bodySha256: sha256 });
    const r = await link.fetch(new URL(path, link.edge).toString(), {
      method: 'PUT',
      headers: { ...sig, 'content-length': String(end - start), [SIG_HEADERS.contentSha256]: sha256, ...(contentType ? { 'content-type': contentType } : {}) },
      body: body(src, start, end),
      duplex: 'half',
      // Without both, fetch sends a clone of the request whose body is a tee of this stream, and the other branch,
      // never read, keeps every chunk sent: a whole part in memory (Fetch standard, HTTP-network-or-cache fetch).
      redirect: 'error',
      window: null,
    } as RequestInit);
    return [r.status, await r.text()];
  });
}

/** Runs a request up to 3 times while it fails with 5xx or a network error; the 200 body, or a JobError. */
async function retried(what: string, send: () => Promise<[number, string]>): Promise<string> {
  let last = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    if (attempt) await sleep(500 * 2 ** attempt);
    try {
      const [status, text] = await send();
      if (status === 200) return text;
      if (status < 500) throw new JobError(`${what}: refused by the edge (${status}): ${text.slice(0, 300)}`, status !== 413, 'upload_rejected');
      last = `edge answered ${status}: ${text.slice(0, 300)}`;
    } catch (e) {
      if (e instanceof JobError) throw e;
      last = (e as Error).message;
    }
  }
  throw new JobError(`${what} failed after 3 attempts: ${last}`, true, 'upload_failed');
}
