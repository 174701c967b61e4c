// A minimal lease-API edge for the worker tests (node:http): verifies every HMAC signature with shared/lease.ts,
// hands out queued jobs, records heartbeats, results (checking Content-Length and X-Content-SHA256: the one-PUT
// result, or artifacts and complete) and failures.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Artifact, type JobSpec, SIG_HEADERS, sha256Hex, verifySignature } from '../../shared/lease.ts';

export interface EdgeRecord {
  /** `at`: Date.now() when it arrived */
  heartbeats: { lease: string; progress: number; at: number }[];
  /** completed results, by their primary artifact (the video), with the names of all their artifacts */
  results: { lease: string; bytes: Buffer; sha256: string; contentLength: number; artifacts: string[] }[];
  /** every artifact of a completed result */
  artifacts: (Artifact & { lease: string; body: Buffer })[];
  fails: { lease: string; reason: string; retryable: boolean; code?: string; at: number }[];
  leases: { group: string; model: string; capacity: number; stages?: number }[];
  rejected: string[];
}

export class FakeEdge {
  readonly secret: string;
  readonly queue: JobSpec[] = [];
  readonly rec: EdgeRecord = { heartbeats: [], results: [], fails: [], leases: [], rejected: [], artifacts: [] };
  /** artifacts uploaded, by `lease/name`, until a complete takes them */
  private readonly uploaded = new Map<string, Artifact & { body: Buffer }>();
  /** job ids whose next heartbeat answers cancel: true */
  readonly cancel = new Set<string>();
  readonly jobOf = new Map<string, string>();
  /** lease length granted and extended by heartbeats; heartbeats are asked for every third of it (at most 500 ms) */
  leaseMs = 30_000;
  private server!: Server;
  private n = 0;
  private waiters: (() => void)[] = [];
  port = 0;

  constructor(secret: string) {
    this.secret = secret;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, () => res.closed || res.destroyed).then(
      ([status, body]) => {
        res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' }).end(body === undefined ? undefined : JSON.stringify(body));
      },
      (e) => res.writeHead(500).end(String(e)),
    ));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  push(job: JobSpec): void {
    this.queue.push(job);
    this.waiters.splice(0).forEach((w) => w());
  }

  /** resolves once `pred` holds (polled on every request) */
  async until(pred: (r: EdgeRecord) => boolean, ms = 60_000): Promise<void> {
    const t0 = Date.now();
    while (!pred(this.rec)) {
      if (Date.now() - t0 > ms) throw new Error(`fake edge: condition not met within ${ms} ms: ${JSON.stringify({ ...this.rec, results: this.rec.results.length })}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async body(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private async handle(req: IncomingMessage, gone: () => boolean): Promise<[number, unknown?]> {
    const url = new URL(req.url!, 'http://x');
    const body = await this.body(req);
    const headers = { get: (n: string) => (req.headers[n.toLowerCase()] as string | undefined) ?? null };
    const streamed = req.method === 'PUT';
    const bodySha = streamed ? String(req.headers[SIG_HEADERS.contentSha256] ?? '') : await sha256Hex(new Uint8Array(body));
    const v = await verifySignature(this.secret, req.method!, url.pathname + url.search, headers, bodySha);
    if (!v.ok) {
      this.rec.rejected.push(v.reason);
      return [401, { code: 'invalid_signature', detail: v.reason }];
    }
    const json = body.length && !streamed ? JSON.parse(body.toString()) : undefined;
    let m: RegExpExecArray | null;
    if (req.method === 'POST' && url.pathname === '/internal/v1/lease') {
      this.rec.leases.push(json);
      const deadline = Date.now() + Math.min(json.wait_ms ?? 20_000, 2000);
      while (!this.queue.length && Date.now() < deadline) {
        await new Promise<void>((r) => {
          this.waiters.push(r);
          setTimeout(r, 100);
        });
      }
      // a poller that hung up (a stopped worker) gets nothing: the job stays queued. Let the event loop turn first,
      // so that a hang-up that happened just before the push is seen.
      await new Promise((r) => setTimeout(r, 20));
      const job = gone() ? undefined : this.queue.shift();
      if (!job) return [204];
      const leaseId = `lease_${++this.n}`;
      this.jobOf.set(leaseId, job.id);
      return [200, { lease_id: leaseId, job, attempt: 1, expires_at: Date.now() + this.leaseMs, heartbeat_interval_ms: Math.min(500, Math.floor(this.leaseMs / 3)) }];
    }
    if (req.method === 'POST' && (m = /^\/internal\/v1\/leases\/([^/]+)\/heartbeat$/.exec(url.pathname))) {
      this.rec.heartbeats.push({ lease: m[1], progress: json.progress, at: Date.now() });
      return [200, { expires_at: Date.now() + this.leaseMs, cancel: this.cancel.has(this.jobOf.get(m[1]) ?? '') }];
    }
    if (req.method === 'POST' && (m = /^\/internal\/v1\/leases\/([^/]+)\/fail$/.exec(url.pathname))) {
      this.rec.fails.push({ lease: m[1], ...json, at: Date.now() });
      return [200, { id: 'v', status: json.retryable ? 'queued' : 'failed' }];
    }
    if (req.method === 'PUT' && (m = /^\/internal\/v1\/leases\/([^/]+)\/(?:result|artifacts\/([a-z0-9-]+))$/.exec(url.pathname))) {
      const declared = Number(req.headers['content-length']);
      const sha = createHash('sha256').update(body).digest('hex');
      if (declared !== body.length || sha !== bodySha) return [422, { code: 'result_corrupt' }];
      if (m[2] === undefined) {
        this.rec.results.push({ lease: m[1], bytes: body, sha256: sha, contentLength: declared, artifacts: ['video'] });
        return [200, { id: 'v', status: 'completed', sha256: sha, bytes: body.length }];
      }
      const a = { name: m[2], sha256: sha, bytes: body.length, content_type: String(req.headers['content-type']) as Artifact['content_type'] };
      this.uploaded.set(`${m[1]}/${m[2]}`, { ...a, body });
      return [200, a];
    }
    // complete: every listed artifact uploaded under the lease as listed; recorded as a result by its primary (video)
    if (req.method === 'POST' && (m = /^\/internal\/v1\/leases\/([^/]+)\/complete$/.exec(url.pathname))) {
      const list = json.artifacts as Artifact[];
      const got = list.map((a) => this.uploaded.get(`${m![1]}/${a.name}`));
      if (got.some((g, i) => !g || g.sha256 !== list[i].sha256 || g.content_type !== list[i].content_type)) return [422, { code: 'artifacts_mismatch' }];
      const main = got.find((g) => g!.name === 'video') ?? got[0]!;
      this.rec.results.push({ lease: m[1], bytes: main.body, sha256: main.sha256, contentLength: main.bytes, artifacts: list.map((a) => a.name) });
      this.rec.artifacts.push(...got.map((g) => ({ lease: m![1], ...g! })));
      return [200, { id: 'v', status: 'completed', sha256: main.sha256, bytes: main.bytes, artifacts: list }];
    }
    return [404, { code: 'not_found' }];
  }
}

export function job(over: Partial<JobSpec> = {}): JobSpec {
  return {
    id: 'video_1', model: 'uvit-tiny', prompt: 'a red ball bouncing', seconds: 2, fps: 4, num_frames: 8, size: '32x32',
    width: 32, height: 32, seed: 5, steps: 3, guidance: 2, params_hash: 'h', ...over,
  };
}
