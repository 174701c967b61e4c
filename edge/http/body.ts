// Bounded request-body reading and JSON / form decoding with precise errors.
import type { ProblemInit } from '../../shared/api/problem.ts';

export type Decoded = { ok: true; value: unknown; raw: Uint8Array } | { ok: false; problem: ProblemInit };

/** Reads at most `limit` bytes; a larger body (declared or actual) is a 413. */
export async function readLimited(req: Request, limit: number): Promise<{ ok: true; bytes: Uint8Array } | { ok: false; problem: ProblemInit }> {
  const tooBig = (n: string) => ({ ok: false as const, problem: { status: 413, code: 'body_too_large', detail: `Request body ${n} exceeds the limit of ${limit} bytes.` } });
  const declared = req.headers.get('content-length');
  if (declared !== null && Number(declared) > limit) return tooBig(`of ${declared} bytes`);
  if (!req.body) return { ok: true, bytes: new Uint8Array() };
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > limit) {
      await reader.cancel();
      return tooBig('stream');
    }
    chunks.push(value);
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) (out.set(c, o), (o += c.byteLength));
  return { ok: true, bytes: out };
}

export function parseJson(bytes: Uint8Array): Decoded {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return { ok: false, problem: { status: 400, code: 'invalid_json', detail: 'Request body is not valid UTF-8.' } };
  }
  if (text.trim() === '') return { ok: false, problem: { status: 400, code: 'invalid_json', detail: 'Request body is empty; expected a JSON object.' } };
  try {
    return { ok: true, value: JSON.parse(text), raw: bytes };
  } catch (e) {
    return { ok: false, problem: { status: 400, code: 'invalid_json', detail: `Request body is not valid JSON: ${(e as Error).message}` } };
  }
}

/**
 * Decodes JSON, multipart/form-data or urlencoded bodies into a plain object. Form fields listed in `numeric` are
 * turned into numbers when they look like one (otherwise left as strings, so the schema reports them precisely).
 */
export async function decodeBody(req: Request, limit: number, numeric: readonly string[]): Promise<Decoded> {
  const ct = (req.headers.get('content-type') ?? '').toLowerCase();
  const isJson = /^application\/(?:[a-z0-9.!#$&^_-]+\+)?json\s*(?:;|$)/.test(ct); // not application/jsonx
  const isForm = ct.startsWith('multipart/form-data') || ct.startsWith('application/x-www-form-urlencoded');
  if (!isJson && !isForm)
    return { ok: false, problem: { status: 415, code: 'unsupported_media_type', detail: `Content-Type ${JSON.stringify(ct || '(none)')} is not supported; send application/json or multipart/form-data.` } };
  const body = await readLimited(req, limit);
  if (!body.ok) return body;
  if (isJson) return parseJson(body.bytes);
  let form: FormData;
  try {
    form = await new Response(body.bytes, { headers: { 'content-type': req.headers.get('content-type')! } }).formData();
  } catch (e) {
    return { ok: false, problem: { status: 400, code: 'invalid_form', detail: `Malformed form body: ${(e as Error).message}` } };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of form.entries()) {
    if (typeof v !== 'string')
      return { ok: false, problem: { status: 422, code: 'unsupported_parameter', detail: `File field ${JSON.stringify(k)} is not supported (no reference inputs).`, errors: [{ path: k, message: `${k}: file uploads are not supported`, code: 'unsupported_parameter' }] } };
    if (k in out)
      return { ok: false, problem: { status: 400, code: 'invalid_form', detail: `Form field ${JSON.stringify(k)} appears more than once.`, errors: [{ path: k, message: `${k}: duplicate field`, code: 'duplicate' }] } };
    out[k] = numeric.includes(k) && /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(v.trim()) ? Number(v) : v;
  }
  return { ok: true, value: out, raw: body.bytes };
}
