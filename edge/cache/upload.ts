// Streams a result upload into R2 under its content hash while hashing it; R2 also checks the declared sha256,
// so a truncated or corrupted upload never lands under the content-addressed key.
import type { ArtifactContentType } from '../../shared/lease.ts';
import { extOf, r2Key } from './cdnToken.ts';

function hex(buf: ArrayBuffer): string {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export type UploadOutcome = { ok: true; sha256: string; bytes: number; existed: boolean } | { ok: false; reason: string };

export async function uploadVerified(
  bucket: R2Bucket, body: ReadableStream<Uint8Array>, declaredSha: string, length: number, contentType: ArtifactContentType,
): Promise<UploadOutcome> {
  const key = r2Key(declaredSha, extOf(contentType));
  const digest = new crypto.DigestStream('SHA-256');
  let counted = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, ctl) {
      counted += chunk.byteLength;
      ctl.enqueue(chunk);
    },
  });
  const counting = body.pipeThrough(counter);
  const existed = (await bucket.head(key)) !== null;
  try {
    if (existed) {
      await counting.pipeTo(digest); // same bytes already stored (dedup): only verify
    } else {
      const [toR2, toHash] = counting.tee();
      const fixed = new FixedLengthStream(length);
      await Promise.all([
        toR2.pipeTo(fixed.writable),
        bucket.put(key, fixed.readable, { sha256: declaredSha, httpMetadata: { contentType } }),
        toHash.pipeTo(digest),
      ]);
    }
  } catch (e) {
    if (existed) return { ok: false, reason: `upload stream failed after ${counted} of ${length} bytes: ${(e as Error).message}` };
    // R2 refuses a checksum mismatch atomically; a short stream errors FixedLengthStream.
    return { ok: false, reason: `upload rejected after ${counted} of ${length} bytes: ${(e as Error).message}` };
  }
  const actual = hex(await digest.digest);
  if (counted !== length || actual !== declaredSha) {
    if (!existed) await bucket.delete(key).catch(() => {});
    return { ok: false, reason: `upload of ${counted} bytes (Content-Length ${length}) hashes to ${actual}, X-Content-SHA256 said ${declaredSha}` };
  }
  return { ok: true, sha256: actual, bytes: counted, existed };
}
