// The backend group's pull loop: lease a job from the edge (HMAC-signed lease API, shared/lease.ts), generate it with
// the Driver while heartbeating progress, upload the MP4 (PUT with Content-Length + X-Content-SHA256), or report the
// failure with a retryable flag. `capacity` loops run side by side, so that many jobs share the stage pipeline.
// Heartbeats go out on a timer whether or not progress moved (a long step or encode must not lose the lease); a
// sampler step that takes longer than the lease means the group is stuck, and the job is given back (retryable).
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, rmSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import {
  FailRequest,
  HeartbeatResponse,
  LEASE_PATHS,
  LeaseGrant,
  type JobSpec,
  ResultResponse,
  SIG_HEADERS,
  signRequest,
  signedJsonFetch,
} from '../../shared/lease.ts';
import type { ClipResult, Driver } from '../driver/driver.ts';
import type { DriverMetrics } from '../metrics/driverMetrics.ts';
import type { SolverName } from '../sampler/types.ts';
import { withLogIds } from '../metrics/log.ts';

/** An error that says whether the edge should retry the job elsewhere. */
export class JobError extends Error {
  readonly retryable: boolean;
  readonly code: string;
  constructor(message: string, retryable: boolean, code: string) {
    super(message);
    this.name = 'JobError';
    this.retryable = retryable;
    this.code = code;
  }
}

export interface WorkerOptions {
  edge: string;
  secret: string;
  group: string;
  model: string;
  capacity: number;
  stages?: number;
  driver: Driver;
  /** sampler defaults for fields a job leaves to the backend */
  solver: SolverName;
  cfgMode: 'batch' | 'micro';
  workDir: string;
  metrics?: DriverMetrics;
  /** long-poll bound per lease request (default 20000) */
  waitMs?: number;
  /** called before each lease request and again once a job is leased: e.g. reconnect a broken stage pipeline */
  beforeJob?: () => Promise<void>;
  /** called when a job fails: e.g. mark the pipeline for reconnection */
  onJobError?: (e: unknown) => void;
  /** called when a job is given back for making no progress: fail its network forwards in flight */
  abandonJob?: (jobId: string, reason: string) => void;
  /** called after every finished lease (tests) */
  onJobEnd?: (r: JobOutcome) => void;
  log?: (line: string) => void;
  fetch?: typeof fetch;
}

export interface JobOutcome {
  leaseId: string;
  jobId: string;
  status: 'completed' | 'failed' | 'cancelled' | 'lost';
  error?: string;
  retryable?: boolean;
  result?: ClipResult;
  sha256?: string;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

export class Worker {
  private readonly o: WorkerOptions;
  private readonly stopper = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly running = new Map<string, AbortController>();
  private readonly log: (line: string) => void;
  private readonly fetchFn: typeof fetch;

  constructor(o: WorkerOptions) {
    this.o = o;
    this.log = o.log ?? ((l) => process.stderr.write(`${l}\n`));
    this.fetchFn = o.fetch ?? fetch;
    mkdirSync(o.workDir, { recursive: true });
  }

  start(): void {
    if (this.loops.length) throw new Error('worker already started');
    for (let i = 0; i < this.o.capacity; i++) this.loops.push(this.loop(i));
  }

  /** Stop leasing; jobs in progress are stopped and reported as retryable failures (code backend_shutdown). */
  async stop(opts: { cancelRunning?: boolean } = {}): Promise<void> {
    this.stopper.abort();
    if (opts.cancelRunning !== false) for (const ac of this.running.values()) ac.abort();
    await Promise.all(this.loops);
    this.loops = [];
  }

  get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  /** A signed JSON POST; `abortable` requests (the long-poll lease) end when the worker stops. */
  private async post(path: string, body: unknown, abortable = false): Promise<Response> {
    const fetchFn: typeof fetch = abortable ? (url, init) => this.fetchFn(url, { ...init, signal: this.stopper.signal }) : this.fetchFn;
    return signedJsonFetch(this.o.edge, this.o.secret, 'POST', path, body, fetchFn);
  }

  private async loop(slot: number): Promise<void> {
    let backoff = 500;
    while (!this.stopped) {
      try {
        await this.o.beforeJob?.();
        const grant = await this.lease();
        backoff = 500;
        // every line logged for this lease, down to the driver, carries its ids
        if (grant) await withLogIds({ job: grant.job.id, lease: grant.lease_id, attempt: grant.attempt }, () => this.runLease(grant));
      } catch (e) {
        if (this.stopped) break;
        this.log(`worker[${slot}]: ${(e as Error).message}; retrying in ${backoff} ms`);
        await sleep(backoff, this.stopper.signal);
        backoff = Math.min(backoff * 2, 15_000);
      }
    }
  }

  /** One long-poll lease request: a grant, or undefined after the long-poll ran out (204). */
  async lease(): Promise<LeaseGrant | undefined> {
    const res = await this.post(LEASE_PATHS.lease, {
      group: this.o.group,
      model: this.o.model,
      capacity: this.o.capacity,
      ...(this.o.stages ? { stages: this.o.stages } : {}),
      wait_ms: this.o.waitMs ?? 20_000,
    }, true);
    if (res.status === 204) return undefined;
    const text = await res.text();
    if (res.status !== 200) throw new Error(`lease: edge answered ${res.status}: ${text.slice(0, 300)}`);
    const g = LeaseGrant.safeParse(JSON.parse(text));
    if (!g.success) throw new Error(`lease: malformed grant: ${g.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return g.data;
  }

  /** Checks a job against what this group can make; throws a non-retryable JobError otherwise. */
  checkJob(job: JobSpec): void {
    const d = this.o.driver;
    if (job.model !== this.o.model) throw new JobError(`job is for model ${job.model}, this group serves ${this.o.model}`, true, 'wrong_model');
    const { width, height } = d.frameSize;
    if (job.width !== width || job.height !== height) {
      throw new JobError(`size ${job.width}x${job.height} is not supported: model ${this.o.model} makes ${width}x${height}`, false, 'unsupported_size');
    }
    try {
      d.latentFramesFor(job.num_frames);
    } catch (e) {
      throw new JobError((e as Error).message, false, 'unsupported_length');
    }
  }

  async runLease(grant: LeaseGrant): Promise<JobOutcome> {
    const { lease_id: leaseId, job } = grant;
    const ac = new AbortController();
    this.running.set(leaseId, ac);
    this.o.metrics?.jobQueueDepth.set(0);
    this.log(`job ${job.id} (lease ${leaseId}, attempt ${grant.attempt}): ${job.num_frames} frames ${job.size} @ ${job.fps} fps, ` +
      `${job.steps} steps, guidance ${job.guidance}, seed ${job.seed}`);
    let progress = 0;
    let lost = false;
    let cancelled = false;
    /** the fail report, once the job is given back for making no progress */
    let gaveBack: Promise<void> | undefined;
    // the lease as granted; a sampler step must finish well within it (heartbeats alone would hide a stuck group)
    const leaseMs = Math.max(grant.expires_at - Date.now(), 2 * grant.heartbeat_interval_ms);
    let sampling = false;
    let steppedAt = Date.now();
    const beat = async () => {
      try {
        const res = await this.post(LEASE_PATHS.heartbeat(leaseId), { progress });
        const text = await res.text();
        if (res.status === 200) {
          const h = HeartbeatResponse.safeParse(JSON.parse(text));
          if (h.success && h.data.cancel) {
            cancelled = true;
            ac.abort();
          }
        } else if (res.status === 404 || res.status === 409 || res.status === 410) {
          // the lease is gone (expired and requeued, or the job was deleted): stop working on it
          lost = true;
          ac.abort();
          this.log(`job ${job.id}: lease ${leaseId} lost (${res.status}): ${text.slice(0, 200)}`);
        } else this.log(`job ${job.id}: heartbeat answered ${res.status}: ${text.slice(0, 200)}`);
      } catch (e) {
        this.log(`job ${job.id}: heartbeat failed: ${(e as Error).message}`);
      }
    };
    // heartbeat on progress (at most every 1 s) and on a timer every heartbeat_interval_ms, progress or not
    let inflight: Promise<void> | null = null;
    let lastBeat = 0;
    const maybeBeat = (force = false) => {
      if (inflight || gaveBack) return;
      const now = Date.now();
      if (!force && now - lastBeat < 1000) return;
      lastBeat = now;
      inflight = beat().finally(() => (inflight = null));
    };
    const giveBack = (stuckMs: number) => {
      const reason = `no sampler step finished for ${stuckMs} ms, longer than the ${leaseMs} ms lease: the job is given back`;
      this.log(`job ${job.id}: ${reason}`);
      clearInterval(timer);
      ac.abort();
      this.o.abandonJob?.(leaseId, `job ${job.id}: ${reason}`);
      gaveBack = this.fail(leaseId, { reason, retryable: true, code: 'step_timeout' });
    };
    const timer = setInterval(() => {
      const stuck = Date.now() - steppedAt;
      if (sampling && stuck > leaseMs) giveBack(stuck);
      else maybeBeat(true);
    }, Math.max(250, Math.min(grant.heartbeat_interval_ms, 10_000)));
    const out = join(this.o.workDir, `${leaseId.replace(/[^A-Za-z0-9_.-]/g, '_')}.mp4`);
    let outcome: JobOutcome;
    try {
      this.checkJob(job);
      // the lease may have waited a while: check the stage link again (another job may have broken it meanwhile)
      await this.o.beforeJob?.();
      const result = await this.o.driver.generate({
        // the lease id is unique per attempt, so a retried job never meets its earlier attempt's state in the stages
        jobId: leaseId,
        prompt: job.prompt,
        seed: job.seed,
        steps: job.steps,
        guidance: job.guidance,
        solver: this.o.solver,
        cfgMode: this.o.cfgMode,
        numFrames: job.num_frames,
        fps: job.fps,
        out,
        signal: ac.signal,
        onProgress: (e) => {
          progress = Math.min(99, Math.floor(e.percent));
          sampling = e.phase === 'sample' && e.step !== e.total; // decode and encode are single calls, not steps
          steppedAt = Date.now();
          maybeBeat();
        },
      });
      clearInterval(timer);
      await inflight;
      if (lost || cancelled || gaveBack) throw new Error('lease ended during encoding');
      const up = await this.upload(leaseId, out);
      const t = result.timings;
      this.log(`job ${job.id}: completed ${up.bytes} bytes sha256 ${up.sha256.slice(0, 12)}…; text ${t.textMs.toFixed(0)} ms, ` +
        `sample ${t.sampleMs.toFixed(0)} ms (${result.stepsPerSecond.toFixed(2)} steps/s), decode ${t.decodeMs.toFixed(0)} ms, mp4 ${t.mp4Ms.toFixed(0)} ms`);
      outcome = { leaseId, jobId: job.id, status: 'completed', result, sha256: up.sha256 };
    } catch (e) {
      clearInterval(timer);
      await inflight;
      if (gaveBack) {
        await gaveBack;
        outcome = { leaseId, jobId: job.id, status: 'failed', error: (e as Error).message, retryable: true };
      } else if (cancelled || lost) {
        this.log(`job ${job.id}: ${cancelled ? 'cancelled by the edge' : 'lease lost'}; dropped`);
        outcome = { leaseId, jobId: job.id, status: cancelled ? 'cancelled' : 'lost' };
      } else {
        const err = this.stopped && !(e instanceof JobError)
          ? new JobError('backend group shutting down; the job was returned to the queue', true, 'backend_shutdown')
          : (e as Error);
        const retryable = err instanceof JobError ? err.retryable : true;
        const code = err instanceof JobError ? err.code : 'backend_error';
        this.o.onJobError?.(e);
        this.log(`job ${job.id}: failed (${retryable ? 'retryable' : 'not retryable'}): ${err.message}`);
        await this.fail(leaseId, { reason: err.message.slice(0, 2000) || 'unknown error', retryable, code });
        outcome = { leaseId, jobId: job.id, status: 'failed', error: err.message, retryable };
      }
    } finally {
      this.running.delete(leaseId);
      rmSync(out, { force: true });
    }
    this.o.onJobEnd?.(outcome);
    return outcome;
  }

  async fail(leaseId: string, body: FailRequest): Promise<void> {
    try {
      const res = await this.post(LEASE_PATHS.fail(leaseId), FailRequest.parse(body));
      if (res.status !== 200) this.log(`fail report for lease ${leaseId}: edge answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
      else await res.body?.cancel();
    } catch (e) {
      this.log(`fail report for lease ${leaseId} not delivered (the lease will expire and requeue): ${(e as Error).message}`);
    }
  }

  /**
   * PUT the MP4, streamed from disk: signed over its SHA-256 (hashed in a first pass), with Content-Length and
   * X-Content-SHA256. Retried on 5xx / network errors.
   */
  async upload(leaseId: string, file: string): Promise<{ sha256: string; bytes: number }> {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    const sha256 = hash.digest('hex');
    const bytes = statSync(file).size;
    const path = LEASE_PATHS.result(leaseId);
    let lastErr: Error | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      if (attempt) await sleep(500 * 2 ** attempt);
      try {
        const sig = await signRequest({ secret: this.o.secret, method: 'PUT', path, bodySha256: sha256 });
        const res = await this.fetchFn(new URL(path, this.o.edge).toString(), {
          method: 'PUT',
          headers: {
            ...sig,
            'content-type': 'video/mp4',
            'content-length': String(bytes),
            [SIG_HEADERS.contentSha256]: sha256,
          },
          body: Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>,
          duplex: 'half',
        } as RequestInit);
        const text = await res.text();
        if (res.status === 200) {
          const r = ResultResponse.safeParse(JSON.parse(text));
          if (r.success && r.data.sha256 !== sha256) throw new JobError(`upload: edge stored sha256 ${r.data.sha256}, sent ${sha256}`, true, 'result_corrupt');
          return { sha256, bytes };
        }
        if (res.status >= 500) {
          lastErr = new Error(`upload: edge answered ${res.status}: ${text.slice(0, 300)}`);
          continue;
        }
        throw new JobError(`upload rejected by the edge (${res.status}): ${text.slice(0, 300)}`, res.status !== 413, 'upload_rejected');
      } catch (e) {
        if (e instanceof JobError) throw e;
        lastErr = e as Error;
      }
    }
    throw new JobError(`upload failed after 3 attempts: ${lastErr?.message}`, true, 'upload_failed');
  }
}
