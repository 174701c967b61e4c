// Generators of bad (and borderline) requests for the public API, driven by a seeded PRNG. Each case says whether it
// must be refused (`bad`: a 4xx problem+json) or may be accepted (`maybe`: anything but a 5xx; a 4xx is still
// problem+json). Nothing here talks to the network; api.fast.test.ts sends the cases.
import type { Prng } from './prng.ts';

export type FuzzCase = {
  family: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  /** bad: must be a 4xx; maybe: may be accepted */
  expect: 'bad' | 'maybe';
  /** omit the Authorization header (the default is the fuzz key) */
  noAuth?: boolean;
};

const JSON_CT = { 'content-type': 'application/json' };

/** Strings that break naive handling: control chars, bidi, zero-width, surrogates, NUL, long runs, SQL, paths. */
const NASTY = [
  '', ' ', '\t', '\u0000', 'a\u0000b', '\u0007bell', '\u001b[31mred', '\u007f', '\u0085', '\u202eevil', '\u200b', '\ufeff',
  '😀🎬', '\ud83d', '\udc00x', 'é'.normalize('NFD'), 'ﷺ', '𝔘𝔙𝔦𝔗', "'; DROP TABLE jobs; --", '../../etc/passwd', '%00', '%2e%2e%2f',
  '<script>alert(1)</script>', '${jndi:ldap://x}', '\\', '"', '{}', '[]', 'null', 'NaN', 'Infinity', '-0', '1e400',
];

function randString(r: Prng, max = 40): string {
  const n = r.int(0, max);
  let s = '';
  for (let i = 0; i < n; i++) {
    const k = r.int(0, 9);
    s += k < 5 ? String.fromCharCode(r.int(0x20, 0x7e)) : k < 7 ? String.fromCharCode(r.int(0, 0x1f)) : k < 9 ? String.fromCodePoint(r.int(0xa0, 0x2fff)) : r.pick(NASTY);
  }
  return s;
}

function randJson(r: Prng, depth = 0): unknown {
  const k = r.int(0, depth > 2 ? 5 : 7);
  switch (k) {
    case 0: return null;
    case 1: return r.bool();
    case 2: return r.pick([0, -1, 1, 1.5, -1e308, 1e308, 2 ** 53 + 1, Number.MIN_VALUE, 4294967296, -0]);
    case 3: return randString(r);
    case 4: return r.pick(NASTY);
    case 5: return r.int(-5, 5);
    case 6: return Array.from({ length: r.int(0, 4) }, () => randJson(r, depth + 1));
    default: return Object.fromEntries(Array.from({ length: r.int(0, 4) }, () => [randString(r, 8), randJson(r, depth + 1)]));
  }
}

/** Per-field values that must be refused. Raw JSON fragments (NaN, 1e400) are spliced in as text. */
const BAD_FIELDS: Record<string, unknown[]> = {
  prompt: [null, 1, true, [], {}, '', '   ', 'a'.repeat(4001), 'x\u0000y', 'bell\u0007', 'esc\u001b[0m', 'del\u007f', 'c1\u0085', { $raw: 'NaN' }],
  seconds: [-1, 0, -0.0001, 17, 1e308, '17', 'abc', '1e3', 'NaN', '', null, [], {}, true, { $raw: 'NaN' }, { $raw: 'Infinity' }, { $raw: '-Infinity' }, { $raw: '1e400' }],
  size: ['', 'abc', '0x0', '32x', 'x32', '99999x99999', '32X32', '32x32x32', 32, null, [], ' 32x32', '-32x-32', '123456x1'],
  seed: [-1, 1.5, 2 ** 32, 1e20, '7', null, true, [], { $raw: '1e400' }, { $raw: 'NaN' }],
  steps: [0, -5, 1e9, 2.5, '3', null, 1001, { $raw: '-1e400' }],
  guidance: [-1, 1e9, 101, '1', null, [], { $raw: 'NaN' }],
  fps: [0, -4, 1000, 1.5, '4', null, 121],
  webhook_url: ['ftp://x.test/', 'not a url', 'javascript:alert(1)', 'http://', `https://x.test/${'a'.repeat(2100)}`, 1, null, 'file:///etc/passwd'],
  model: ['', 'a'.repeat(129), 1, null, [], 'no-such-model', '../../chaos-fake'],
  [`unknown_${'f'}`]: [1, 'x', null],
  __proto__: [{ polluted: true }],
};

function jsonWithRaw(obj: Record<string, unknown>): string {
  // values { $raw: 'NaN' } become the bare token NaN (invalid JSON on purpose)
  return JSON.stringify(obj, (_k, v) => (v && typeof v === 'object' && '$raw' in v ? `@@RAW@@${(v as { $raw: string }).$raw}@@` : v)).replace(/"@@RAW@@(.*?)@@"/g, '$1');
}

function validBody(r: Prng, model: string): Record<string, unknown> {
  const b: Record<string, unknown> = { prompt: `fuzz ${r.int(0, 1e9)}`, model };
  if (r.bool()) b.seconds = r.pick([1, '1', 2, '0.5']);
  if (r.bool()) b.seed = r.int(0, 2 ** 32 - 1);
  if (r.bool()) b.steps = r.int(1, 5);
  return b;
}

/** POST /v1/videos bodies. */
function createCase(r: Prng, model: string): FuzzCase {
  const fam = r.int(0, 13);
  const post = (family: string, body: string | Uint8Array, expect: 'bad' | 'maybe' = 'bad', headers: Record<string, string> = JSON_CT): FuzzCase =>
    ({ family, method: 'POST', path: '/v1/videos', headers, body, expect });
  switch (fam) {
    case 0: { // a random JSON value that is not a valid request
      const v = randJson(r);
      return post('random-json', JSON.stringify(v) ?? 'null');
    }
    case 1: case 2: case 3: { // one bad field in an otherwise valid body
      const field = r.pick(Object.keys(BAD_FIELDS));
      const b = validBody(r, model);
      const value = r.pick(BAD_FIELDS[field]);
      const body = field === '__proto__' ? JSON.stringify(b).replace(/}$/, `,"__proto__":${JSON.stringify(value)}}`) : jsonWithRaw({ ...b, [field]: value });
      return post(`bad-${field}`, body);
    }
    case 4: { // broken JSON text
      const ok = JSON.stringify(validBody(r, model));
      const cut = ok.slice(0, r.int(0, ok.length - 1));
      return post('truncated-json', r.pick([cut, `${ok}}`, `${ok},`, ok.replace(':', ''), `{${ok}`, "{'prompt':'x'}", '\ufeff{}', '[' .repeat(r.int(1000, 60000))]));
    }
    case 5: { // bytes that are not UTF-8
      const b = r.bytes(r.int(1, 200));
      b[0] = 0xff;
      return post('invalid-utf8', b);
    }
    case 6: { // too big (the limit is 64 KiB)
      const n = r.pick([64 * 1024 + 1, 200_000, 1_000_000]);
      return post('huge-body', JSON.stringify({ prompt: 'p'.repeat(n), model }));
    }
    case 7: { // wrong or missing content types
      const ct = r.pick(['text/plain', '', 'application/xml', 'multipart/form-data', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'application/jsonx', 'image/png']);
      const body = ct.startsWith('multipart') ? r.pick(['--x\r\nnot a part', '--x--', 'garbage']) : ct === 'application/x-www-form-urlencoded' ? r.pick(['prompt=a&prompt=b', 'seed=abc&prompt=x', 'steps=-1&prompt=x', '%%%']) : JSON.stringify(validBody(r, model));
      return post('content-type', body, 'bad', ct ? { 'content-type': ct } : {});
    }
    case 8: { // multipart with a file field
      const boundary = `b${r.int(0, 1e9)}`;
      const body = `--${boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nhi\r\n--${boundary}\r\nContent-Disposition: form-data; name="input_reference"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--${boundary}--\r\n`;
      return post('multipart-file', body, 'bad', { 'content-type': `multipart/form-data; boundary=${boundary}` });
    }
    case 9: { // unicode in prompts: valid (may be accepted) unless a control character is in it
      const pieces = Array.from({ length: r.int(1, 6) }, () => r.pick(NASTY.filter((s) => s.trim() !== '')));
      const prompt = `u ${pieces.join(' ')}`;
      const control = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/.test(prompt);
      return post('unicode-prompt', JSON.stringify({ prompt, model }), control ? 'bad' : 'maybe');
    }
    case 10: { // numbers at the edges, as strings in multipart (the OpenAI SDK sends multipart)
      const boundary = `b${r.int(0, 1e9)}`;
      const field = r.pick(['seed', 'steps', 'guidance', 'fps', 'seconds']);
      const value = r.pick(['-1', 'NaN', 'Infinity', '1e999', '0x10', '', ' ', '1,5', '１２', '9'.repeat(400)]);
      const part = (n: string, v: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${n}"\r\n\r\n${v}\r\n`;
      return post('multipart-number', `${part('prompt', 'x')}${part('model', model)}${part(field, value)}--${boundary}--\r\n`, 'bad', { 'content-type': `multipart/form-data; boundary=${boundary}` });
    }
    case 11: { // a valid request (the fuzz must not only refuse)
      return post('valid', JSON.stringify(validBody(r, model)), 'maybe');
    }
    case 12: { // bad Idempotency-Key header values
      const k = r.pick(['', ' ', 'a b', 'x'.repeat(256), '\u00e9t\u00e9', 'tab\there']);
      return { ...post('idempotency-key-format', JSON.stringify(validBody(r, model))), headers: { ...JSON_CT, 'idempotency-key': k } };
    }
    default: { // deep nesting inside a field
      const depth = r.int(10, 5000);
      return post('deep-nesting', `{"prompt":"x","model":${JSON.stringify(model)},"seed":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    }
  }
}

const BAD_IDS = [
  'x', 'video_', `video_${'0'.repeat(32)}`, `video_${'g'.repeat(32)}`, '..', '%2e%2e', '%00', 'a'.repeat(5000), '%F0%9F%98%80',
  'video_0123456789abcdef0123456789abcdef%00', '%20', "'%20OR%201=1", '%ZZ', '%', 'video_%0a%0d',
];

/** Requests on ids, lists and content that must be refused. */
function otherCase(r: Prng, ctx: { completedId?: string; cdnPath?: string }): FuzzCase {
  const fam = r.int(0, 9);
  const id = r.pick(BAD_IDS);
  switch (fam) {
    case 0: return { family: 'bad-id-get', method: 'GET', path: `/v1/videos/${id}`, headers: {}, expect: 'bad' };
    case 1: return { family: 'bad-id-delete', method: 'DELETE', path: `/v1/videos/${id}`, headers: {}, expect: 'bad' };
    case 2: return { family: 'bad-id-cancel', method: 'POST', path: `/v1/videos/${id}/cancel`, headers: {}, expect: 'bad' };
    case 3: return { family: 'bad-id-content', method: 'GET', path: `/v1/videos/${id}/${r.pick(['content', 'events', 'content?variant=thumbnail'])}`, headers: {}, expect: 'bad' };
    case 4: {
      const q = r.pick(['limit=0', 'limit=-1', 'limit=abc', 'limit=101', 'limit=1e3', 'order=sideways', 'after=video_nope', 'after=' + 'a'.repeat(200), 'bogus=1', 'limit=NaN', 'limit=Infinity', 'limit=1&limit=2']);
      // a repeated parameter is ambiguous; taking one of the values is a defensible choice (may be a 200)
      return { family: 'bad-list-query', method: 'GET', path: `/v1/videos?${q}`, headers: {}, expect: q.includes('&') ? 'maybe' : 'bad' };
    }
    case 5: {
      // bad Range headers on a completed video's content (some ranges are satisfiable: `maybe`)
      // RFC 9110 lets a server ignore a Range it does not understand (unknown unit, empty): those may be a 200
      const bad = ['bytes=abc', 'bytes=5-2', 'bytes=999999999-', 'bytes=0-0,5-6', 'bytes=-0', 'bytes=', 'bytes=--1', `bytes=${'9'.repeat(30)}-`, 'bytes=1-2-3', 'bytes = 0-1', 'bytes=-'];
      const good = ['bytes=0-0', 'bytes=0-', 'bytes=-1', 'bytes=1-1000000', '', 'items=0-1'];
      const isBad = r.bool(0.75);
      const target = ctx.completedId ?? `video_${'1'.repeat(32)}`;
      return { family: 'range', method: 'GET', path: `/v1/videos/${target}/content`, headers: { range: isBad ? r.pick(bad) : r.pick(good) }, expect: isBad ? 'bad' : 'maybe' };
    }
    case 6: { // the public CDN: forged tokens, bad hashes, traversal; bad Range on a real CDN URL
      if (ctx.cdnPath && r.bool(0.4)) {
        const bad = ['bytes=abc', 'bytes=5-2', 'bytes=999999999-', 'bytes=0-0,5-6', 'bytes=-0', 'bytes=--1', `bytes=${'9'.repeat(30)}-`];
        return { family: 'cdn-range', method: 'GET', path: ctx.cdnPath, headers: { range: r.pick(bad) }, expect: 'bad', noAuth: true };
      }
      const tok = r.pick(['', 'x', 'A'.repeat(22), '..', '%2e%2e', 'a'.repeat(3000), ctx.cdnPath?.split('/')[2] ?? 'y']);
      const file = r.pick([`${'0'.repeat(64)}.mp4`, `${ctx.cdnPath?.split('/')[3] ?? 'z'}`.replace('.mp4', '.MP4'), '..%2f..%2fv1%2fvideos', 'x.mp4', `${'f'.repeat(64)}.mp4%00`, `${'a'.repeat(63)}.mp4`]);
      return { family: 'cdn-forged', method: 'GET', path: `/cdn/${tok}/${file}`, headers: {}, expect: 'bad', noAuth: true };
    }
    case 7: { // methods a route does not have
      const [m, p] = r.pick([['PUT', '/v1/videos'], ['PATCH', '/v1/videos/x'], ['DELETE', '/v1/videos'], ['POST', '/v1/models'], ['PUT', '/cdn/a/b.mp4'], ['POST', '/healthz'], ['GET', '/internal/v1/lease'], ['DELETE', '/admin/v1/keys']]);
      return { family: 'wrong-method', method: m, path: p, headers: {}, expect: 'bad' };
    }
    case 8: { // big headers and header junk (the edge must still answer, with a 4xx when it refuses)
      const big = 'k'.repeat(r.pick([8 * 1024, 32 * 1024]));
      const h = r.pick<Record<string, string>>([{ 'x-junk': big }, { 'idempotency-key': big }, { 'content-type': `application/json; ${big.slice(0, 4000)}` }, { cookie: big }]);
      return { family: 'big-header', method: 'POST', path: '/v1/videos', headers: { 'content-type': 'application/json', ...h }, body: JSON.stringify({ prompt: 'x', model: 'no-such-model' }), expect: 'bad' };
    }
    default: {
      const auth = r.pick(['', 'Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', `Bearer ${'k'.repeat(600)}`, 'Bearer uvit_sk_0000000000000000_' + 'A'.repeat(43), 'bearer  x y', 'Token abc']);
      return { family: 'bad-auth', method: r.pick(['GET', 'POST']), path: r.pick(['/v1/videos', '/v1/models', `/v1/videos/${BAD_IDS[2]}`]), headers: auth ? { authorization: auth } : {}, expect: 'bad', noAuth: true };
    }
  }
}

export function fuzzCase(r: Prng, ctx: { model: string; completedId?: string; cdnPath?: string }): FuzzCase {
  return r.bool(0.6) ? createCase(r, ctx.model) : otherCase(r, ctx);
}
