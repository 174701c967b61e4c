// The backend group's pull loop: lease a job from the edge (HMAC-signed lease API, shared/lease.ts), generate it with
// the Driver while heartbeating progress, upload the MP4 and its variants as artifacts (serve/upload.ts), or report
// the failure with a retryable flag. `capacity` loops run side by side, so that many jobs share the stage pipeline.
// Heartbeats go out on a timer whether or not progress moved (a long step or encode must not lose the lease); a
// sampler step that takes longer than the lease means the group is stuck, and the job is given back (retryable).
import { mkdirSync, rmSync } from 'node:fs';
import { freemem } from 'node:os';
import { join } from 'node:path';
import {
  FailRequest,
  HeartbeatResponse,
  LEASE_PATHS,
  LeaseGrant,
  type JobSpec,
  type CompleteResponse,
  signedJsonFetch,
} from '../../shared/lease.ts';
import type { ClipResult, Driver, ProgressEvent } from '../driver/driver.ts';
import type { DriverMetrics } from '../metrics/driverMetrics.ts';
import type { SolverName } from '../sampler/types.ts';
import { withLogIds } from '../metrics/log.ts';
import { JobError } from './jobError.ts';
import { type ArtifactInput, uploadArtifacts } from './upload.ts';

export { JobError };

/** Refuses (not retryable) a job whose size is not the one the model makes; video and image jobs alike. */
export function checkSize(job: JobSpec, made: { width: number; height: number }): void {
  if (job.width !== made.width || job.height !== made.height) {
    throw new JobError(`size ${job.width}x${job.height} is not supported: model ${job.model} makes ${made.width}x${made.height}`, false, 'unsupported_size');
  }
}

/**
 * Jobs a group generates at once when no capacity is given: two per stage, and two more. A job in 'micro' CFG mode
 * keeps two micro-batches in flight with a barrier per step, so 2·S jobs give S stages the 4·S micro-batches the
 * pipeline client's window admits; the two more are clips past sampling (decoding on the decoder thread, encoding in
 * ffmpeg, uploading), so that the stages stay fed meanwhile. Measured on the shapes model with 1 stage, 12 clips
 * queued: 2 jobs 80–89 clips/min, 4 jobs 128 (docs/measurements.md). Bounded by memory: a clip holds its decoded
 * frames on the driver (`clipBytes`), and those of all clips in flight take at most a quarter of free memory.
 */
export function defaultCapacity(numStages: number, clipBytes: number, freeBytes = freemem()): number {
  return Math.max(1, Math.min(2 * Math.max(1, numStages) + 2, Math.floor(freeBytes / 4 / clipBytes)));
}

/** A named result file of a job, uploaded as an artifact (image jobs: image-0 … image-{n-1}). */
export interface ResultFile {
  name: string;
  bytes: Uint8Array;
  contentType: 'image/png';
}

/** What makes image jobs (kind 'image') on a group that serves an image model (serve/images.ts). */
export interface ImageJobRunner {
  /** throws a non-retryable JobError for a job the model cannot make */
  check(job: JobSpec): void;
  /** makes the PNGs of a job that passed `check` (Worker.checkJob runs it first) */
  run(job: JobSpec, o: { jobId: string; signal: AbortSignal; onProgress: (e: ProgressEvent) => void; stages: number }): Promise<ResultFile[]>;
}

export interface WorkerOptions {
  edge: string;
  secret: string;
  group: string;
  model: string;
  capacity: number;
  stages?: number;
  /** makes video jobs; a group serving an image model has `images` instead */
  driver?: Driver;
  images?: ImageJobRunner;
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
    if (job.kind === 'image') {
      if (!this.o.images) throw new JobError(`model ${this.o.model} makes no images on this group`, false, 'unsupported_kind');
      return this.o.images.check(job);
    }
    if (!d) throw new JobError(`model ${this.o.model} makes images; job ${job.id} asks for a video`, false, 'unsupported_kind');
    checkSize(job, d.frameSize); // job.model is this.o.model here, checked above
    try {
      d.latentFramesFor(job.num_frames);
    } catch (e) {
      throw new JobError((e as Error).message, false, 'unsupported_length');
    }
  }

  async runLease(grant: LeaseGrant): Promise<JobOutcome> {
    const { lease_id: leaseId, job } = grant;
    this.o.metrics?.jobQueueDepth.set(0);
    const what = job.kind === 'image' ? `${job.n ?? 1} images ${job.size}` : `${job.num_frames} frames ${job.size} @ ${job.fps} fps`;
    this.log(`job ${job.id} (lease ${leaseId}, attempt ${grant.attempt}): ${what}, ` +
      `${job.steps} steps, guidance ${job.guidance}, seed ${job.seed}`);
    const run = new LeaseRun(grant, {
      heartbeat: (progress) => this.post(LEASE_PATHS.heartbeat(leaseId), { progress }),
      fail: (body) => this.fail(leaseId, body),
      abandon: (reason) => this.o.abandonJob?.(leaseId, reason),
      log: (line) => this.log(`job ${job.id}: ${line}`),
    });
    this.running.set(leaseId, run.abort);
    const out = join(this.o.workDir, `${leaseId.replace(/[^A-Za-z0-9_.-]/g, '_')}.mp4`);
    let outcome: JobOutcome;
    try {
      this.checkJob(job);
      // the lease may have waited a while: check the stage link again (another job may have broken it meanwhile)
      await this.o.beforeJob?.();
      outcome = job.kind === 'image' ? await this.imageJob(job, leaseId, run) : await this.videoJob(job, leaseId, run, out);
    } catch (e) {
      const state = await run.settle();
      switch (state.s) {
        case 'given_back':
          outcome = { leaseId, jobId: job.id, status: 'failed', error: (e as Error).message, retryable: true };
          break;
        case 'cancelled':
        case 'lost':
          this.log(`job ${job.id}: ${state.s === 'cancelled' ? 'cancelled by the edge' : 'lease lost'}; dropped`);
          outcome = { leaseId, jobId: job.id, status: state.s };
          break;
        case 'working': {
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
      }
    } finally {
      this.running.delete(leaseId);
      rmSync(out, { force: true });
    }
    this.o.onJobEnd?.(outcome);
    return outcome;
  }

  private async videoJob(job: JobSpec, leaseId: string, run: LeaseRun, out: string): Promise<JobOutcome> {
    const result = await this.o.driver!.generate({
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
      // the content variants (thumbnail, spritesheet) beside the MP4, made by the same ffmpeg process
      variants: out.replace(/\.mp4$/, ''),
      signal: run.abort.signal,
      onProgress: (e) => run.onProgress(e),
    });
    const variants = result.variants;
    let up;
    try {
      if ((await run.settle()).s !== 'working') throw new Error('lease ended during encoding');
      up = await this.complete(leaseId, [{ name: 'video', content_type: 'video/mp4', file: out }, ...variants]);
    } finally {
      for (const v of variants) rmSync(v.file, { force: true });
    }
    const t = result.timings;
    this.log(`job ${job.id}: completed ${up.bytes} bytes sha256 ${up.sha256.slice(0, 12)}… (+ ${variants.map((v) => v.name).join(', ')}); text ${t.textMs.toFixed(0)} ms, ` +
      `sample ${t.sampleMs.toFixed(0)} ms (${result.stepsPerSecond.toFixed(2)} steps/s), decode ${t.decodeMs.toFixed(0)} ms, mp4 ${t.mp4Ms.toFixed(0)} ms`);
    return { leaseId, jobId: job.id, status: 'completed', result, sha256: up.sha256 };
  }

  /** An image job: its PNGs uploaded as the artifacts image-0 …, then the job completed with them. */
  private async imageJob(job: JobSpec, leaseId: string, run: LeaseRun): Promise<JobOutcome> {
    const files = await this.o.images!.run(job, {
      jobId: leaseId,
      signal: run.abort.signal,
      onProgress: (e) => run.onProgress(e),
      stages: this.o.stages ?? 1,
    });
    if ((await run.settle()).s !== 'working') throw new Error('lease ended while the images were encoded');
    const done = await this.complete(leaseId, files.map((f) => ({ name: f.name, content_type: f.contentType, bytes: f.bytes })));
    this.log(`job ${job.id}: completed ${files.length} images (${done.artifacts.reduce((a, x) => a + x.bytes, 0)} bytes)`);
    return { leaseId, jobId: job.id, status: 'completed', sha256: done.sha256 };
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

  /** Uploads the result's artifacts (serve/upload.ts), heartbeating between parts of a large one, and completes the job. */
  complete(leaseId: string, artifacts: ArtifactInput[]): Promise<CompleteResponse> {
    const heartbeat = async () => {
      await (await this.post(LEASE_PATHS.heartbeat(leaseId), { progress: 99 })).body?.cancel();
    };
    return uploadArtifacts({ edge: this.o.edge, secret: this.o.secret, fetch: this.fetchFn, workDir: this.o.workDir, heartbeat }, leaseId, artifacts);
  }
}

/** Where a lease stands: 'working' until the first of the other states ends it; later signals change nothing. */
type LeaseState =
  | { s: 'working' }
  /** a heartbeat answer said the job was cancelled */
  | { s: 'cancelled' }
  /** the edge no longer holds the lease (it expired and was requeued, or the job was deleted) */
  | { s: 'lost' }
  /** no sampler step finished within the lease: the job is reported failed (retryable) by `report` */
  | { s: 'given_back'; report: Promise<void> };

interface LeaseLink {
  heartbeat(progress: number): Promise<Response>;
  fail(body: FailRequest): Promise<void>;
  /** fail the job's network forwards in flight */
  abandon(reason: string): void;
  log(line: string): void;
}

/**
 * One lease while its job runs: its state, and the two things that move it. Heartbeats go out on progress (at most
 * one a second) and on a timer whether or not progress moved; their answers may end the lease. The timer also
 * watches the sampler: a step that takes longer than the lease means the group is stuck (heartbeats alone would hide
 * it), so the job is given back.
 */
class LeaseRun {
  state: LeaseState = { s: 'working' };
  /** aborted when the state leaves 'working', or by Worker.stop */
  readonly abort = new AbortController();
  private readonly leaseMs: number;
  private readonly timer: NodeJS.Timeout;
  private progress = 0;
  /** inside the sampler loop, between steps (decode and encode are single calls, not steps) */
  private sampling = false;
  private steppedAt = Date.now();
  private lastBeat = 0;
  private inflight: Promise<void> | null = null;
  private readonly link: LeaseLink;

  constructor(grant: LeaseGrant, link: LeaseLink) {
    this.link = link;
    this.leaseMs = Math.max(grant.expires_at - Date.now(), 2 * grant.heartbeat_interval_ms);
    this.timer = setInterval(() => this.tick(), Math.max(250, Math.min(grant.heartbeat_interval_ms, 10_000)));
  }

  onProgress(e: ProgressEvent): void {
    this.progress = Math.min(99, Math.floor(e.percent));
    this.sampling = e.phase === 'sample' && e.step !== e.total;
    this.steppedAt = Date.now();
    this.beat(false);
  }

  /** Stops the timer; waits for the heartbeat in flight and a give-back report; the state is final from here. */
  async settle(): Promise<LeaseState> {
    clearInterval(this.timer);
    await this.inflight;
    if (this.state.s === 'given_back') await this.state.report;
    return this.state;
  }

  private end(next: Exclude<LeaseState, { s: 'working' | 'given_back' }>): void {
    if (this.state.s !== 'working') return;
    this.state = next;
    this.abort.abort();
  }

  private tick(): void {
    const stuck = Date.now() - this.steppedAt;
    if (this.sampling && stuck > this.leaseMs) this.giveBack(stuck);
    else this.beat(true);
  }

  private giveBack(stuckMs: number): void {
    if (this.state.s !== 'working') return;
    const reason = `no sampler step finished for ${stuckMs} ms, longer than the ${this.leaseMs} ms lease: the job is given back`;
    this.link.log(reason);
    clearInterval(this.timer);
    this.abort.abort();
    this.link.abandon(reason);
    this.state = { s: 'given_back', report: this.link.fail({ reason, retryable: true, code: 'step_timeout' }) };
  }

  private beat(force: boolean): void {
    if (this.inflight || this.state.s !== 'working') return;
    const now = Date.now();
    if (!force && now - this.lastBeat < 1000) return;
    this.lastBeat = now;
    this.inflight = this.sendBeat().finally(() => (this.inflight = null));
  }

  private async sendBeat(): Promise<void> {
    try {
      const res = await this.link.heartbeat(this.progress);
      const text = await res.text();
      if (res.status === 200) {
        const h = HeartbeatResponse.safeParse(JSON.parse(text));
        if (h.success && h.data.cancel) this.end({ s: 'cancelled' });
      } else if (res.status === 404 || res.status === 409 || res.status === 410) {
        this.link.log(`lease lost (${res.status}): ${text.slice(0, 200)}`);
        this.end({ s: 'lost' });
      } else this.link.log(`heartbeat answered ${res.status}: ${text.slice(0, 200)}`);
    } catch (e) {
      this.link.log(`heartbeat failed: ${(e as Error).message}`);
    }
  }
}
