// Typed client for the public API (/v1/videos*), built on the shared zod schemas: every response is validated, every
// error comes back as a typed UvitApiError carrying the server's problem+json. Like the openai SDK it retries
// 408/429/5xx and broken connections with backoff (honouring Retry-After) and pages lists with `for await`.
// Works in Node ≥ 20.3 (AbortSignal.any) and any fetch runtime.
import * as z from 'zod';
import { Video, VideoList, VideoDeleted, CreateVideoBody, VideoStatus } from '../shared/api/videos.ts';
import type { ListQuery } from '../shared/api/videos.ts';
import { Problem } from '../shared/api/problem.ts';
import { ModelList } from '../shared/api/models.ts';
import { CreateImageBody, ImageGeneration } from '../shared/api/images.ts';
import { readSse } from './sse.ts';
import { UvitApiError, UvitConnectionError, UvitTimeoutError, UvitResponseError, apiError } from './errors.ts';
import { retryableStatus, retryDelayMs } from './retry.ts';
import { PagePromise, VideoPage } from './pagination.ts';

export type { Video, VideoList, Problem, ImageGeneration };
export type CreateImageInput = z.input<typeof CreateImageBody>;
export type CreateVideoInput = z.input<typeof CreateVideoBody>;
export type ListInput = Partial<Pick<ListQuery, 'after' | 'limit' | 'order'>>;
export type VideoEvent = { event: string; video: Partial<Video> & { status?: z.infer<typeof VideoStatus> } };

export type ClientOptions = {
  baseUrl: string;
  apiKey: string;
  fetch?: typeof fetch;
  /** Per-attempt timeout for non-streaming calls (default 30 s). */
  timeoutMs?: number;
  /** Retries after a 408/429/5xx answer or a failed connection (default 2; 0 turns retrying off). */
  maxRetries?: number;
  userAgent?: string;
};

export const TERMINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled']);

/** A readable one-paragraph message from a problem+json body: status, title, detail and each field error. */
export function describeProblem(status: number, p: Problem | undefined, fallback: string): string {
  if (!p) return `HTTP ${status}: ${fallback}`;
  const fields = (p.errors ?? []).filter((e) => !p.detail.includes(e.message)).map((e) => `\n  - ${e.path || '(body)'}: ${e.message}`).join('');
  return `${p.status} ${p.title} (${p.code}): ${p.detail}${fields}`;
}

type RequestInit_ = { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal; timeout?: boolean; auth?: boolean };

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal?.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export class UvitClient {
  readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly userAgent: string;

  constructor(opts: ClientOptions) {
    if (!opts.baseUrl) throw new Error('UvitClient: baseUrl is required (flag --base-url or UVIT_BASE_URL)');
    if (!opts.apiKey) throw new Error('UvitClient: apiKey is required (flag --api-key or UVIT_API_KEY)');
    const retries = opts.maxRetries ?? 2;
    if (!Number.isInteger(retries) || retries < 0) throw new Error(`UvitClient: maxRetries must be an integer ≥ 0, got ${opts.maxRetries}`);
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.apiKey = opts.apiKey;
    this.fetchImpl = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxRetries = retries;
    this.userAgent = opts.userAgent ?? 'uvit-client/0.1';
  }

  /** Absolute URL for a path or URL the API returned (cdn_url may be relative to the API host). */
  resolve(pathOrUrl: string): string {
    return new URL(pathOrUrl, this.baseUrl + '/').toString();
  }

  /**
   * One logical request: up to 1 + maxRetries attempts. A retryable status or a connection failure waits (Retry-After,
   * else backoff) and tries again; the last failure is thrown as a typed error. Aborts by the caller are never retried.
   */
  private async request(method: string, path: string, init: RequestInit_ = {}): Promise<Response> {
    const url = this.resolve(path);
    const what = `${method} ${path}`;
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...init.headers };
    if (init.auth !== false) headers.authorization = `Bearer ${this.apiKey}`;
    let body: string | undefined;
    if (init.body !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(init.body); }
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= this.maxRetries;
      const timeout = init.timeout === false ? undefined : AbortSignal.timeout(this.timeoutMs);
      const signals = [init.signal, timeout].filter((s): s is AbortSignal => !!s);
      let res: Response;
      try {
        res = await this.fetchImpl(url, { method, headers, body, signal: signals.length ? AbortSignal.any(signals) : undefined });
      } catch (e) {
        if (init.signal?.aborted) throw e;
        const err = e as Error;
        const timedOut = !!timeout?.aborted;
        const why = timedOut ? `no answer within ${this.timeoutMs} ms` : ((err.cause as Error)?.message ?? err.message);
        if (last) {
          const Cls = timedOut ? UvitTimeoutError : UvitConnectionError;
          throw new Cls(`${method} ${url}: ${why} (is the server up? base URL ${this.baseUrl})`, { cause: e });
        }
        await sleep(retryDelayMs(attempt, undefined), init.signal);
        continue;
      }
      if (res.ok) return res;
      // x-should-retry (as in the openai SDK) lets the server overrule the status: false for a final 409/429, true
      // for a transient answer that the status alone would not retry
      const should = res.headers.get('x-should-retry');
      const retry = should === 'true' || (should !== 'false' && retryableStatus(res.status));
      if (last || !retry) throw await this.errorFrom(res, what);
      await res.body?.cancel().catch(() => {});
      await sleep(retryDelayMs(attempt, res.headers), init.signal);
    }
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
    return apiError(res.status, describeProblem(res.status, problem, fallback), problem, retryAfter);
  }

  private async json<T>(res: Response, schema: z.ZodType<T>, what: string): Promise<T> {
    const body = await res.json().catch((e: Error) => { throw new UvitResponseError(`${what}: response is not JSON (${e.message})`); });
    const r = schema.safeParse(body);
    if (!r.success) throw new UvitResponseError(`${what}: response does not match the API schema: ${z.prettifyError(r.error)}`);
    return r.data;
  }

  /**
   * Submits a video job. With retries on, a request without an idempotency key gets one, so that a retry after a lost
   * answer finds the job the first attempt created instead of making a second one.
   */
  async create(input: CreateVideoInput, opts: { idempotencyKey?: string; signal?: AbortSignal } = {}): Promise<Video> {
    const key = opts.idempotencyKey ?? (this.maxRetries > 0 ? `uvit-client-retry-${crypto.randomUUID()}` : undefined);
    const headers: Record<string, string> = key ? { 'idempotency-key': key } : {};
    const res = await this.request('POST', '/v1/videos', { body: input, headers, signal: opts.signal });
    return this.json(res, Video, 'POST /v1/videos');
  }

  /**
   * Generates images (POST /v1/images/generations): the edge answers with them when they are done within its wait,
   * else with the job, which is then polled until it ends. Not retried blindly: a retry would be a second job.
   */
  async generateImages(input: CreateImageInput, opts: { signal?: AbortSignal; pollMs?: number; deadlineMs?: number } = {}): Promise<ImageGeneration> {
    const deadline = Date.now() + (opts.deadlineMs ?? 60 * 60_000);
    let g = await this.json(await this.request('POST', '/v1/images/generations', { body: input, signal: opts.signal }), ImageGeneration, 'POST /v1/images/generations');
    while (!TERMINAL.has(g.status)) {
      if (Date.now() > deadline) throw new Error(`image generation ${g.id} still ${g.status} after ${opts.deadlineMs} ms`);
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
      const path = `/v1/images/generations/${encodeURIComponent(g.id)}${input.response_format === 'b64_json' ? '?response_format=b64_json' : ''}`;
      g = await this.json(await this.request('GET', path, { signal: opts.signal }), ImageGeneration, `GET ${path}`);
    }
    return g;
  }

  /** The bytes of image `i` of a completed generation (inline, or from its CDN URL without the key), SHA-256 checked. */
  async imageBytes(g: ImageGeneration, i: number): Promise<Uint8Array> {
    const d = g.data[i];
    if (!d) throw new Error(`image generation ${g.id} has no image ${i} (status ${g.status}, ${g.data.length} images)`);
    let bytes: Uint8Array;
    if (d.b64_json !== undefined) bytes = Uint8Array.from(atob(d.b64_json), (ch) => ch.charCodeAt(0));
    else if (d.url) bytes = new Uint8Array(await (await this.request('GET', this.resolve(d.url), { auth: false, timeout: false })).arrayBuffer());
    else throw new Error(`image ${i} of ${g.id} has neither url nor b64_json (no CDN configured?)`);
    const { createHash } = await import('node:crypto');
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (bytes.length !== d.bytes || sha !== d.sha256) throw new Error(`image ${i} of ${g.id}: got ${bytes.length} bytes sha256 ${sha}, the API said ${d.bytes} bytes ${d.sha256}`);
    return bytes;
  }

  async retrieve(id: string): Promise<Video> {
    return this.json(await this.request('GET', `/v1/videos/${encodeURIComponent(id)}`), Video, `GET /v1/videos/${id}`);
  }

  /** One page of your videos (`await`), or every video from there on (`for await (const v of client.list())`). */
  list(q: ListInput = {}): PagePromise {
    return new PagePromise(async () => {
      const qs = new URLSearchParams();
      if (q.after) qs.set('after', q.after);
      if (q.limit !== undefined) qs.set('limit', String(q.limit));
      if (q.order) qs.set('order', q.order);
      const path = `/v1/videos${qs.size ? `?${qs}` : ''}`;
      const body = await this.json(await this.request('GET', path), VideoList, `GET ${path}`);
      return new VideoPage(body, (after) => this.list({ ...q, after }));
    });
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
    const res = await this.request('GET', url, { auth: !cdn, timeout: false });
    if (!res.body) throw new UvitResponseError(`GET ${url}: empty body`);
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
