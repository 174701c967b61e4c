// Multipart artifact uploads in R2. Parts go to a staging key, each streamed through once: into R2 and, beside it,
// through WebCrypto against the part's declared hash. Completing assembles them under the staging key and copies
// the result to its content-addressed key with R2 checking the declared whole-object SHA-256, so a whole that does
// not hash right never appears under a content key. All hashing is native: no part is held or hashed in JavaScript.
import type { UploadRow } from '../jobs/uploads.ts';
import { extOf, r2Key } from './cdnToken.ts';

export type PartOutcome = { ok: true; etag: string; sha256: string } | { ok: false; reason: string };

function hex(buf: ArrayBuffer): string {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function stagingKey(uploadId: string): string {
  return `uploads/${uploadId}`;
}

export async function streamPart(
  upload: R2MultipartUpload, part: { n: number; length: number; sha256: string }, body: ReadableStream<Uint8Array>,
): Promise<PartOutcome> {
  const digest = new crypto.DigestStream('SHA-256');
  const fixed = new FixedLengthStream(part.length);
  const [toR2, toHash] = body.tee();
  let stored: R2UploadedPart;
  try {
    [, stored] = await Promise.all([toR2.pipeTo(fixed.writable), upload.uploadPart(part.n, fixed.readable), toHash.pipeTo(digest)]);
  } catch (e) {
    return { ok: false, reason: `part ${part.n} of ${part.length} bytes failed: ${(e as Error).message}` };
  }
  const actual = hex(await digest.digest);
  if (actual !== part.sha256) return { ok: false, reason: `part ${part.n} of ${part.length} bytes hashes to ${actual}, X-Content-SHA256 said ${part.sha256}` };
  return { ok: true, etag: stored.etag, sha256: actual };
}

/**
 * Assembles the parts and moves the whole to its content key if it hashes to the declared SHA-256 (R2 checks it on
 * the copy); the staging object goes either way. Content already stored under the key (the same bytes from another
 * job) is only verified.
 */
export async function finishUpload(bucket: R2Bucket, u: UploadRow, parts: R2UploadedPart[]): Promise<{ ok: true } | { ok: false; reason: string }> {
  const staging = stagingKey(u.upload_id);
  const key = r2Key(u.sha256, extOf(u.content_type));
  try {
    await bucket.resumeMultipartUpload(staging, u.r2_upload_id).complete(parts);
    const obj = await bucket.get(staging);
    if (!obj) return { ok: false, reason: 'the assembled upload vanished' };
    if (obj.size !== u.bytes) return { ok: false, reason: `the parts hold ${obj.size} bytes, the upload declared ${u.bytes}` };
    if (await bucket.head(key)) {
      const digest = new crypto.DigestStream('SHA-256');
      await obj.body.pipeTo(digest);
      const actual = hex(await digest.digest);
      return actual === u.sha256 ? { ok: true } : { ok: false, reason: `the ${u.bytes} bytes hash to ${actual}, the upload declared ${u.sha256}` };
    }
    const fixed = new FixedLengthStream(u.bytes);
    await Promise.all([obj.body.pipeTo(fixed.writable), bucket.put(key, fixed.readable, { sha256: u.sha256, httpMetadata: { contentType: u.content_type } })]);
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: `the ${u.bytes} bytes do not hash to the declared ${u.sha256}: ${(e as Error).message}` };
  } finally {
    await bucket.delete(staging);
  }
}
