// Typed client for the public API (/v1/videos*), built on the shared zod schemas: every response is validated, every
// error comes back as a UvitApiError carrying the server's problem+json. Works in Node 22 and any fetch runtime.
import { z } from 'zod';
import { Video, VideoList, VideoDeleted, CreateVideoBody, VideoStatus } from '../shared/api/videos.ts';
import type { ListQuery } from '../shared/api/videos.ts';
import { Problem } from '../shared/api/problem.ts';
import { ModelList } from '../shared/api/models.ts';
import { readSse } from './sse.ts';

export type { Video, VideoList, Problem };
export type CreateVideoInput = z.input<typeof CreateVideoBody>;
export type ListInput = Partial<Pick<ListQuery, 'after' | 'limit' | 'order'>>;
export type VideoEvent = { event: string; video: Partial<Video> & { status?: z.infer<typeof VideoStatus> } };

export type ClientOptions = {
  baseUrl: string;
  apiKey: string;
  fetch?: typeof fetch;
  /** Per-request timeout for non-streaming calls (default 30 s). */
  timeoutMs?: number;
  userAgent?: string;
};

export const TERMINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled']);

export class UvitApiError extends Error {
  readonly status: number;
  readonly problem: Problem | undefined;
  readonly retryAfter: number | undefined;
  constructor(status: number, message: string, problem?: Problem, retryAfter?: number) {
    super(message);
    this.name = 'UvitApiError';
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

/** A readable one-paragraph message from a problem+json body: status, title, detail and each field error. */
export function describeProblem(status: number, p: Problem | undefined, fallback: string): string {
  if (!p) return `HTTP ${status}: ${fallback}`;
  const fields = (p.errors ?? []).filter((e) => !p.detail.includes(e.message)).map((e) => `\n  - ${e.path || '(body)'}: ${e.message}`).join('');
  return `${p.status} ${p.title} (${p.code}): ${p.detail}${fields}`;
}

export class UvitClient {
  readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;
  private readonly userAgent: string;

  constructor(opts: ClientOptions) {
    if (!opts.baseUrl) throw new Error('UvitClient: baseUrl is required (flag --base-url or UVIT_BASE_URL)');
    if (!opts.apiKey) throw new Error('UvitClient: apiKey is required (flag --api-key or UVIT_API_KEY)');
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.apiKey = opts.apiKey;
    this.fetchImpl = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.userAgent = opts.userAgent ?? 'uvit-client/0.1';
  }

  /** Absolute URL for a path or URL the API returned (cdn_url may be relative to the API host). */
  resolve(pathOrUrl: string): string {
    return new URL(pathOrUrl, this.baseUrl + '/').toString();
  }

  private async request(method: string, path: string, init: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal; timeout?: boolean } = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}`, 'user-agent': this.userAgent, ...init.headers };
    let body: string | undefined;
    if (init.body !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(init.body); }
    const signals = [init.signal, init.timeout === false ? undefined : AbortSignal.timeout(this.timeoutMs)].filter((s): s is AbortSignal => !!s);
    let res: Response;
    try {
      res = await this.fetchImpl(this.resolve(path), { method, headers, body, signal: signals.length ? AbortSignal.any(signals) : undefined });
    } catch (e) {
      const err = e as Error;
      const why = err.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (err.cause as Error)?.message ?? err.message;
      throw new Error(`${method} ${this.baseUrl}${path}: ${why} (is the server up? UVIT_BASE_URL=${this.baseUrl})`);
    }
    if (!res.ok) throw await this.errorFrom(res, `${method} ${path}`);
    return res;
  }

  private async errorFrom(res: Response, what: string): Promise<UvitApiError> {
    const text = await res.text().catch(() => '');
    let problem: Problem | undefined;
    try {
      const parsed = Problem.safeParse(JSON.parse(text));
      if (parsed.success) problem = parsed.data;
    } catch { /* not JSON */ }
    const ra = res.headers.get('retry-after');
    const retryAfter = ra !== null && /^\d+$/.test(ra) ? Number(ra) : problem?.retry_after;
    const fallback = `${what}: ${text.slice(0, 300) || res.statusText}`;
    return new UvitApiError(res.status, describeProblem(res.status, problem, fallback), problem, retryAfter);
  }

  private async json<T>(res: Response, schema: z.ZodType<T>, what: string): Promise<T> {
    const body = await res.json().catch((e: Error) => { throw new Error(`${what}: response is not JSON (${e.message})`); });
    const r = schema.safeParse(body);
    if (!r.success) throw new Error(`${what}: response does not match the API schema: ${z.prettifyError(r.error)}`);
    return r.data;
  }

  async create(input: CreateVideoInput, opts: { idempotencyKey?: string; signal?: AbortSignal } = {}): Promise<Video> {
    const headers: Record<string, string> = opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {};
    const res = await this.request('POST', '/v1/videos', { body: input, headers, signal: opts.signal });
    return this.json(res, Video, 'POST /v1/videos');
  }

  async retrieve(id: string): Promise<Video> {
    return this.json(await this.request('GET', `/v1/videos/${encodeURIComponent(id)}`), Video, `GET /v1/videos/${id}`);
  }

  async list(q: ListInput = {}): Promise<VideoList> {
    const qs = new URLSearchParams();
    if (q.after) qs.set('after', q.after);
    if (q.limit !== undefined) qs.set('limit', String(q.limit));
    if (q.order) qs.set('order', q.order);
    const path = `/v1/videos${qs.size ? `?${qs}` : ''}`;
    return this.json(await this.request('GET', path), VideoList, `GET ${path}`);
  }

  async cancel(id: string): Promise<Video> {
    return this.json(await this.request('POST', `/v1/videos/${encodeURIComponent(id)}/cancel`), Video, `POST /v1/videos/${id}/cancel`);
  }

  async delete(id: string): Promise<z.infer<typeof VideoDeleted>> {
    return this.json(await this.request('DELETE', `/v1/videos/${encodeURIComponent(id)}`), VideoDeleted, `DELETE /v1/videos/${id}`);
  }

  async models(): Promise<z.infer<typeof ModelList>> {
    return this.json(await this.request('GET', '/v1/models'), ModelList, 'GET /v1/models');
  }

  /** SSE progress events of one video; ends when the server closes the stream. */
  async *events(id: string, signal?: AbortSignal): AsyncGenerator<VideoEvent> {
    const res = await this.request('GET', `/v1/videos/${encodeURIComponent(id)}/events`, { headers: { accept: 'text/event-stream' }, signal, timeout: false });
    if (!res.body) return;
    for await (const ev of readSse(res.body, signal)) {
      let data: unknown;
      try { data = JSON.parse(ev.data); } catch { continue; }
      if (data && typeof data === 'object') {
        // Either the Video itself or a wrapper {video: …} / {data: …}.
        const obj = data as Record<string, unknown>;
        const v = (obj.video ?? obj.data ?? obj) as VideoEvent['video'];
        yield { event: ev.event, video: v };
      }
    }
  }

  /**
   * Waits until the video is terminal, reporting progress. Uses SSE; if the stream breaks or ends early it falls back
   * to polling GET /v1/videos/:id (and reconnects SSE), so a flaky connection costs latency, never the result.
   */
  async wait(id: string, opts: { onProgress?: (v: Partial<Video>) => void; signal?: AbortSignal; pollMs?: number; deadlineMs?: number } = {}): Promise<Video> {
    const deadline = Date.now() + (opts.deadlineMs ?? 60 * 60_000);
    for (;;) {
      try {
        for await (const ev of this.events(id, opts.signal)) {
          opts.onProgress?.(ev.video);
          if (ev.video.status && TERMINAL.has(ev.video.status)) break;
        }
      } catch (e) {
        if (opts.signal?.aborted || (e instanceof UvitApiError && e.status < 500 && e.status !== 429)) throw e;
      }
      const v = await this.retrieve(id);
      opts.onProgress?.(v);
      if (TERMINAL.has(v.status)) return v;
      if (Date.now() > deadline) throw new Error(`video ${id} still ${v.status} after ${opts.deadlineMs} ms`);
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
    }
  }

  /**
   * Downloads a completed video (from its CDN URL, else the authenticated content URL) to `path`, atomically
   * (`path.part` then rename), and checks the byte count and SHA-256 the API reported.
   */
  async download(video: Video, path: string): Promise<{ path: string; bytes: number; ms: number; url: string; cache: string | null }> {
    const { createWriteStream } = await import('node:fs');
    const { rename, unlink } = await import('node:fs/promises');
    const { createHash } = await import('node:crypto');
    if (video.status !== 'completed') throw new Error(`video ${video.id} is ${video.status}, not completed: nothing to download`);
    const t0 = performance.now();
    const cdn = video.cdn_url;
    const url = this.resolve(cdn ?? `/v1/videos/${encodeURIComponent(video.id)}/content`);
    // The CDN URL is a capability of its own: never send the API key there.
    const res = await this.fetchImpl(url, cdn ? {} : { headers: { authorization: `Bearer ${this.apiKey}` } });
    if (!res.ok || !res.body) throw await this.errorFrom(res, `GET ${url}`);
    const hash = createHash('sha256');
    let bytes = 0;
    const part = `${path}.part`;
    const out = createWriteStream(part);
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        bytes += chunk.byteLength;
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      }
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
      if (video.bytes !== null && bytes !== video.bytes) throw new Error(`download of ${video.id}: got ${bytes} bytes, the API said ${video.bytes}`);
      const sha = hash.digest('hex');
      if (video.content_sha256 && sha !== video.content_sha256) throw new Error(`download of ${video.id}: sha256 ${sha} ≠ ${video.content_sha256}`);
      await rename(part, path);
    } catch (e) {
      out.destroy();
      await unlink(part).catch(() => {});
      throw e;
    }
    return { path, bytes, ms: performance.now() - t0, url, cache: res.headers.get('x-uvit-cache') ?? res.headers.get('cf-cache-status') };
  }
}
