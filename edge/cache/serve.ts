// Serves an R2 object with ETag, conditional GET, and single Range (206/416).
import { problem } from '../http/problem.ts';
import { parseRange } from './range.ts';

export async function serveObject(
  bucket: R2Bucket,
  key: string,
  req: Request,
  sha256: string,
  extra: Record<string, string> = {},
): Promise<Response> {
  const etag = `"${sha256}"`;
  const head = await bucket.head(key);
  if (!head) return problem({ status: 404, code: 'content_missing', detail: `The stored content ${sha256.slice(0, 12)}… is no longer available.` });
  // the type it was stored with (an artifact's); objects stored before types were recorded are MP4s
  const type = head.httpMetadata?.contentType ?? 'video/mp4';
  const base: Record<string, string> = { etag, 'accept-ranges': 'bytes', 'content-type': type, ...extra };
  const inm = req.headers.get('if-none-match');
  if (inm && (inm === '*' || inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)))
    return new Response(null, { status: 304, headers: base });
  const range = parseRange(req.headers.get('range'), head.size);
  const ifRange = req.headers.get('if-range');
  const useRange = range.kind !== 'none' && (ifRange === null || ifRange === etag);
  if (useRange && range.kind === 'invalid') {
    const res = problem({ status: 416, code: 'range_not_satisfiable', detail: range.reason });
    res.headers.set('content-range', `bytes */${head.size}`);
    return res;
  }
  if (useRange && range.kind === 'range') {
    const obj = await bucket.get(key, { range: { offset: range.offset, length: range.length } });
    if (!obj) return problem({ status: 404, code: 'content_missing', detail: 'content vanished during the request' });
    return new Response(obj.body, {
      status: 206,
      headers: { ...base, 'content-length': String(range.length), 'content-range': `bytes ${range.offset}-${range.offset + range.length - 1}/${head.size}` },
    });
  }
  const obj = await bucket.get(key);
  if (!obj) return problem({ status: 404, code: 'content_missing', detail: 'content vanished during the request' });
  return new Response(obj.body, { status: 200, headers: { ...base, 'content-length': String(head.size) } });
}
