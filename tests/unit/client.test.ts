// Client module + CLI against a small in-process HTTP server that speaks the public API's shapes (the real edge is
// exercised by tests/e2e). Checks SSE parsing, problem+json surfacing, schema validation and the verified download.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { SseParser } from '../../client/sse.ts';
import { UvitClient } from '../../client/client.ts';
import { UvitApiError, RateLimitError, UnprocessableEntityError, AuthenticationError, InternalServerError, NotFoundError, UvitConnectionError } from '../../client/errors.ts';
import { main } from '../../client/cli.ts';
import { bar } from '../../client/progress.ts';
import { retryDelayMs, retryableStatus } from '../../client/retry.ts';
import { problemBody } from '../../shared/api/problem.ts';

describe('SseParser', () => {
  it('splits events across chunk boundaries, CRLF/CR/LF, multi-line data, comments, id and retry', () => {
    const p = new SseParser();
    const out = [
      ...p.push(': keep-alive\r\nevent: progress\r\ndata: {"a":'),
      ...p.push('1}\r\nid: 7\r\n\r'),
      ...p.push('\ndata: line1\ndata: line2\nretry: 1500\n\n'),
      ...p.push('data:nospace\r\r'),
      ...p.push('event: x\n\n'), // no data: dispatches nothing
    ];
    expect(out).toEqual([
      { event: 'progress', data: '{"a":1}', id: '7' },
      { event: 'message', data: 'line1\nline2', id: '7', retry: 1500 },
      { event: 'message', data: 'nospace', id: '7', retry: 1500 },
    ]);
  });
});

describe('bar', () => {
  it('clamps and fills proportionally', () => {
    expect(bar(0.5, 10)).toBe('[#####-----]');
    expect(bar(2, 4)).toBe('[####]');
    expect(bar(Number.NaN, 4)).toBe('[----]');
  });
});

const MP4 = Buffer.from('fake mp4 bytes '.repeat(100));
const SHA = createHash('sha256').update(MP4).digest('hex');
function video(status: string, progress: number, extra: Record<string, unknown> = {}) {
  return {
    id: 'video_' + 'a'.repeat(32), object: 'video', status, progress, created_at: 1_764_000_000, completed_at: null,
    expires_at: null, model: 'uvit-t2v-demo', prompt: 'a red ball', seconds: '2', size: '64x64', error: null,
    remixed_from_video_id: null, seed: 1, steps: 2, guidance: 3, fps: 8, webhook_url: null, attempts: 1, cached: false,
    content_sha256: null, bytes: null, download_url: null, cdn_url: null, ...extra,
  };
}
const DONE = video('completed', 100, { content_sha256: SHA, bytes: MP4.length, cdn_url: '/cdn/tok123', completed_at: 1_764_000_010 });

let server: Server;
let openClosed = false;
let base = '';
const seen: { url: string; auth?: string; idem?: string }[] = [];
const hits = new Map<string, number>();
const hit = (k: string) => { const n = (hits.get(k) ?? 0) + 1; hits.set(k, n); return n; };
beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url!, auth: req.headers.authorization, idem: req.headers['idempotency-key'] as string | undefined });
    const send = (status: number, body: unknown, type = 'application/json') => { res.writeHead(status, { 'content-type': type }); res.end(JSON.stringify(body)); };
    if (req.url === '/cdn/tok123') { res.writeHead(200, { 'content-type': 'video/mp4', 'cf-cache-status': 'HIT' }); res.end(MP4); return; }
    if (req.url === '/cdn/torn') { res.writeHead(200, { 'content-type': 'video/mp4' }); res.end(MP4.subarray(0, 10)); return; }
    if (req.headers.authorization !== 'Bearer good') { send(401, problemBody({ status: 401, code: 'invalid_api_key', detail: 'the API key is not valid' }), 'application/problem+json'); return; }
    if (req.method === 'POST' && req.url === '/v1/videos') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const b = JSON.parse(body);
        if (b.seconds > 16) send(422, problemBody({ status: 422, code: 'invalid_request', detail: 'invalid request body', errors: [{ path: 'seconds', message: 'seconds must be ≤ 16', code: 'too_big' }] }));
        else if (b.prompt === 'busy') { res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '7' }); res.end(JSON.stringify(problemBody({ status: 429, code: 'queue_full', detail: 'queue is full', retryAfter: 7 }))); }
        else if (b.prompt === 'malformed') send(200, { id: 'x' });
        else if (b.prompt === 'flaky-create' && hit('flaky-create') === 1) { res.writeHead(503, { 'retry-after': '0' }); res.end(); }
        else send(200, video('queued', 0));
      });
      return;
    }
    if (req.url === `/v1/videos/${DONE.id}/events`) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`: hi\n\nevent: progress\ndata: ${JSON.stringify(video('in_progress', 40))}\n\n`);
      setTimeout(() => { res.write(`event: progress\ndata: ${JSON.stringify(DONE)}\n\n`); res.end(); }, 20);
      return;
    }
    if (req.url === '/v1/videos/video_open/events') {
      // terminal event, then the server would keep the stream open forever: the client must hang up
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: video.completed\ndata: ${JSON.stringify({ ...DONE, id: 'video_open' })}\n\n`);
      req.on('close', () => { openClosed = true; });
      return;
    }
    if (req.url === '/v1/videos/video_open') { send(200, { ...DONE, id: 'video_open' }); return; }
    if (req.url === `/v1/videos/${DONE.id}`) { send(200, DONE); return; }
    if (req.url === '/v1/videos/video_flaky') {
      const n = hit('flaky');
      if (n === 1) { res.writeHead(503, { 'retry-after': '0' }); res.end('upstream gone'); }
      else if (n === 2) { res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after-ms': '5' }); res.end(JSON.stringify(problemBody({ status: 429, code: 'rate_limited', detail: 'slow down' }))); }
      else send(200, DONE);
      return;
    }
    if (req.url === '/v1/videos/video_final') { hit('final'); res.writeHead(503, { 'x-should-retry': 'false' }); res.end(); return; }
    if (req.url === '/v1/videos/video_transient') {
      if (hit('transient') === 1) { res.writeHead(409, { 'x-should-retry': 'true', 'retry-after': '0' }); res.end(); } else send(200, DONE);
      return;
    }
    if (req.url === '/v1/videos/video_down') { hit('down'); res.writeHead(500, { 'retry-after': '0' }); res.end(); return; }
    if (req.url === '/v1/videos?limit=2' || req.url === '/v1/videos?after=v2&limit=2') {
      const [ids, more] = req.url.includes('after') ? [['v3'], false] : [['v1', 'v2'], true];
      send(200, { object: 'list', data: ids.map((id) => ({ ...DONE, id })), has_more: more, first_id: ids[0], last_id: ids.at(-1) });
      return;
    }
    if (req.url === '/v1/videos' || req.url?.startsWith('/v1/videos?')) { send(200, { object: 'list', data: [DONE], has_more: false, first_id: DONE.id, last_id: DONE.id }); return; }
    send(404, problemBody({ status: 404, code: 'not_found', detail: `no video ${req.url}` }), 'application/problem+json');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function capture() {
  let text = '';
  const stderr = new Writable({ write(c, _e, cb) { text += c; cb(); } }) as unknown as NodeJS.WriteStream;
  let out = '';
  return { io: { stdout: (s: string) => { out += s; }, stderr, env: { UVIT_BASE_URL: base, UVIT_API_KEY: 'good' } }, err: () => text, out: () => out };
}

describe('UvitClient', () => {
  it('surfaces problem+json as UvitApiError with status, code, field errors and Retry-After', async () => {
    const c = new UvitClient({ baseUrl: base, apiKey: 'good', maxRetries: 0 });
    const e1 = await c.create({ prompt: 'x', seconds: 99 }).catch((e) => e);
    expect(e1).toBeInstanceOf(UnprocessableEntityError);
    expect(e1).toBeInstanceOf(UvitApiError);
    expect(e1.status).toBe(422);
    expect(e1.message).toContain('seconds: seconds must be ≤ 16');
    const e2 = await c.create({ prompt: 'busy' }).catch((e) => e);
    expect([e2.status, e2.retryAfter, e2.problem.code]).toEqual([429, 7, 'queue_full']);
    expect(e2).toBeInstanceOf(RateLimitError);
    const e3 = (await new UvitClient({ baseUrl: base, apiKey: 'bad' }).list().catch((e) => e)) as UvitApiError;
    expect([e3.status, e3.problem?.code]).toEqual([401, 'invalid_api_key']);
    expect(e3).toBeInstanceOf(AuthenticationError);
  });

  it('wait() returns on a terminal SSE event and hangs up a stream the server leaves open', async () => {
    const c = new UvitClient({ baseUrl: base, apiKey: 'good' });
    const seenP: number[] = [];
    const v = await c.wait('video_open', { onProgress: (p) => seenP.push(p.progress ?? -1) });
    expect(v.status).toBe('completed');
    expect(seenP[0]).toBe(100);
    for (let i = 0; i < 50 && !openClosed; i++) await new Promise((r) => setTimeout(r, 20));
    expect(openClosed).toBe(true);
  });

  it('rejects a response that does not match the shared schema', async () => {
    const c = new UvitClient({ baseUrl: base, apiKey: 'good' });
    await expect(c.create({ prompt: 'malformed' })).rejects.toThrow(/does not match the API schema/);
  });

  it('refuses a download whose bytes do not match the reported size/hash, leaving no file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'uvit-client-'));
    const c = new UvitClient({ baseUrl: base, apiKey: 'good' });
    await expect(c.download({ ...DONE, cdn_url: '/cdn/torn' } as never, join(dir, 'x.mp4'))).rejects.toThrow(/got 10 bytes/);
    expect(readdirSync(dir)).toEqual([]);
  });
  it('retries 503 and 429 after the server\'s Retry-After / retry-after-ms, then succeeds', async () => {
    const c = new UvitClient({ baseUrl: base, apiKey: 'good' });
    expect((await c.retrieve('video_flaky')).id).toBe(DONE.id);
    expect(hits.get('flaky')).toBe(3);
  });

  it('gives up after maxRetries with the family\'s error class; honours x-should-retry; 4xx and connection failures are typed too', async () => {
    const c = new UvitClient({ baseUrl: base, apiKey: 'good', maxRetries: 1 });
    await expect(c.retrieve('video_down')).rejects.toBeInstanceOf(InternalServerError);
    expect(hits.get('down')).toBe(2);
    const before = seen.filter((s) => s.url === '/v1/videos/video_nope').length;
    await expect(c.retrieve('video_nope')).rejects.toBeInstanceOf(NotFoundError);
    expect(seen.filter((s) => s.url === '/v1/videos/video_nope').length - before).toBe(1); // a 404 is not retried
    await expect(c.retrieve('video_final')).rejects.toBeInstanceOf(InternalServerError);
    expect(hits.get('final')).toBe(1); // x-should-retry: false overrules the 5xx
    expect((await c.retrieve('video_transient')).id).toBe(DONE.id); // x-should-retry: true makes a 409 retryable
    const dead = new UvitClient({ baseUrl: 'http://127.0.0.1:1', apiKey: 'good', maxRetries: 0 });
    await expect(dead.models()).rejects.toBeInstanceOf(UvitConnectionError);
  });

  it('a retried create sends one idempotency key on every attempt, so the server makes one job', async () => {
    const c = new UvitClient({ baseUrl: base, apiKey: 'good' });
    expect((await c.create({ prompt: 'flaky-create' })).status).toBe('queued');
    const keys = seen.filter((s) => s.url === '/v1/videos').slice(-2).map((s) => s.idem);
    expect(hits.get('flaky-create')).toBe(2);
    expect(keys[0]).toMatch(/^uvit-client-retry-/);
    expect(keys[1]).toBe(keys[0]);
  });

  it('list(): await gives one page, for await walks every page (after = last_id)', async () => {
    const c = new UvitClient({ baseUrl: base, apiKey: 'good' });
    const page = await c.list({ limit: 2 });
    expect([page.data.map((v) => v.id), page.hasNextPage()]).toEqual([['v1', 'v2'], true]);
    expect(JSON.parse(JSON.stringify(page))).toEqual({ object: 'list', data: page.data, has_more: true, first_id: 'v1', last_id: 'v2' });
    const ids: string[] = [];
    for await (const v of c.list({ limit: 2 })) ids.push(v.id);
    expect(ids).toEqual(['v1', 'v2', 'v3']);
    const last = await page.getNextPage();
    expect(last.hasNextPage()).toBe(false);
    await expect(last.getNextPage()).rejects.toThrow(/no next page/);
  });
});

describe('retryDelayMs', () => {
  const h = (o: Record<string, string>) => new Headers(o);
  it('honours retry-after-ms, Retry-After seconds and dates within 60 s; else backs off 0.5 s · 2^n (≤ 8 s) with jitter', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryDelayMs(0, h({ 'retry-after-ms': '250' }), now)).toBe(250);
    expect(retryDelayMs(0, h({ 'retry-after': '3' }), now)).toBe(3000);
    expect(retryDelayMs(0, h({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), now)).toBe(5000);
    expect(retryDelayMs(1, h({ 'retry-after': '3600' }), now, () => 0)).toBe(1000); // unreasonable hint: backoff
    expect(retryDelayMs(0, undefined, now, () => 0)).toBe(500);
    expect(retryDelayMs(2, undefined, now, () => 1)).toBe(1500);
    expect(retryDelayMs(10, undefined, now, () => 0)).toBe(8000);
    expect([408, 429, 500, 503].every(retryableStatus)).toBe(true);
    expect([400, 401, 404, 409, 422].some(retryableStatus)).toBe(false);
  });
});

describe('uvit-client CLI', () => {
  it('generate: submits, follows SSE to completion, downloads from the CDN without the key, prints path and timings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'uvit-client-'));
    const out = join(dir, 'clip.mp4');
    const c = capture();
    // The fake server answers the POST with a queued job whose id is DONE.id.
    const rc = await main(['generate', 'a', 'red', 'ball', '--duration', '2', '--out', out], c.io);
    expect(rc, c.err()).toBe(0);
    expect(c.out().trim()).toBe(out);
    expect(readFileSync(out).equals(MP4)).toBe(true);
    expect(c.err()).toMatch(/ 40% in_progress/);
    expect(c.err()).toMatch(/timings: submit .* s, queue\+generate .* s, download .* s, total .* s/);
    const cdn = seen.find((s) => s.url === '/cdn/tok123');
    expect(cdn?.auth).toBeUndefined();
    expect(existsSync(out + '.part')).toBe(false);
  });

  it('status/list print, API errors exit 1 with the problem detail, usage errors exit 2', async () => {
    let c = capture();
    expect(await main(['status', DONE.id], c.io)).toBe(0);
    expect(c.out()).toContain('completed');
    c = capture();
    expect(await main(['list', '--json'], c.io)).toBe(0);
    expect(JSON.parse(c.out()).data[0].id).toBe(DONE.id);
    c = capture();
    expect(await main(['status', 'video_nope'], c.io)).toBe(1);
    expect(c.err()).toMatch(/^error: 404 Not Found \(not_found\): no video/);
    c = capture();
    expect(await main(['generate', 'busy', '--max-retries', '0'], c.io)).toBe(1);
    expect(c.err()).toContain('retry after 7 s');
    c = capture();
    expect(await main(['frobnicate'], c.io)).toBe(2);
    c = capture();
    expect(await main(['list', '--order', 'sideways'], c.io)).toBe(2);
  });
});
