// Driver side of a stage group: `forward(jobId, step, microBatch, inputs) -> eps` over the stage pipeline, with any
// number of micro-batches in flight (CFG halves, batch items, concurrent jobs). Every connection proves the group
// secret (wire/auth.ts) as the driver; a job's first forward opens it on every stage (one round trip) so that each
// stage takes its tensors from this connection and its peers only. Inputs go to the stage of segment 0; eps comes
// back from the stage of the head segment. Errors from any stage fail only the job they name; a lost stage
// connection fails everything in flight (the group must be restarted).
import { randomInt } from 'node:crypto';
import { type Frame, type FrameMeta, INPUT_SLOTS, type InputName, NO_JOB, NO_SEGMENT, frameText } from '../../../shared/frame.ts';
import { jobIdOf } from '../../../shared/jobId.ts';
import type { Tensor } from '../../../shared/tensor.ts';
import type { Plan } from '../../partition/types.ts';
import type { ModelFn, ModelInputs } from '../../sampler/guidance.ts';
import { MicroBatchWindow } from './scheduler.ts';
import type { GroupSecret } from '../wire/auth.ts';
import type { DriverHello, StageHello, StageStats } from '../wire/protocol.ts';
import { connectFrames, type FrameSocket } from '../wire/transport.ts';
import type { PipelineMetricsSource } from '../../metrics/driverMetrics.ts';

export interface PipelineOptions {
  /** the group secret the stages were started with */
  secret: GroupSecret;
  /** carry activations and skips (and inputs/eps) as float16 on the wire; changes numerics (default false) */
  f16?: boolean;
  /** a forward that has not returned after this long fails its job (default 10 min) */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  /** micro-batches in flight across all jobs (default 4 per stage) */
  window?: number;
  /** poll the stages' stats this often for the metrics object (0 = only on refreshStats()) */
  statsIntervalMs?: number;
}

/** plain metrics object (metrics/driverMetrics.ts renders it as Prometheus text) */
export interface PipelineMetrics {
  partition: string;
  numStages: number;
  forwards: number;
  failedForwards: number;
  inFlight: number;
  /** micro-batches waiting for a window slot */
  queued: number;
  /** bytes driver -> stage 0 (inputs) and head stage -> driver (eps), tensor payload */
  inputBytes: number;
  epsBytes: number;
  /** from the stages' last stats: bytes moved between stages */
  skipBytes: number;
  activationBytes: number;
  stageBusyMs: number[];
  stageUptimeMs: number[];
  stageQueueDepth: number[];
}

interface Pending {
  job: string;
  resolve: (t: Tensor<'float32'>) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** a job being opened: the stages that have not echoed its 'job' frame yet */
interface Opening {
  left: Set<number>;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** jobs kept open here; a stage keeps up to limits.ts maxJobsPerDriver (1024), so it never forgets one of these */
const OPEN_JOBS = 256;

export class PipelineClient {
  readonly plan: Plan;
  readonly addresses: string[];
  readonly origin = randomInt(1, 2 ** 31);
  readonly metrics: PipelineMetrics;
  private readonly opts: PipelineOptions;
  private readonly conns: FrameSocket[] = [];
  private readonly pending = new Map<string, Pending>();
  private readonly statsWaiters: ((s: StageStats) => void)[][] = [];
  private readonly helloWaiters: ((h: StageHello) => void)[] = [];
  private readonly window: MicroBatchWindow;
  private inputNames: string[] = [];
  private broken: Error | null = null;
  private closing = false;
  private readonly seq = new Map<string, number>();
  /** jobs open on every stage (or being opened), least recently used first */
  private readonly opened = new Map<string, Promise<void>>();
  private readonly opening = new Map<string, Opening>();
  private statsTimer: NodeJS.Timeout | null = null;

  private constructor(plan: Plan, addresses: string[], opts: PipelineOptions) {
    if (addresses.length !== plan.numStages) {
      throw new Error(`pipeline: plan has ${plan.numStages} stages, got ${addresses.length} addresses`);
    }
    this.plan = plan;
    this.addresses = addresses;
    this.opts = opts;
    this.window = new MicroBatchWindow(opts.window ?? 4 * plan.numStages);
    const S = plan.numStages;
    this.metrics = {
      partition: plan.partition, numStages: S, forwards: 0, failedForwards: 0, inFlight: 0, queued: 0,
      inputBytes: 0, epsBytes: 0, skipBytes: 0, activationBytes: 0,
      stageBusyMs: new Array(S).fill(0), stageUptimeMs: new Array(S).fill(0), stageQueueDepth: new Array(S).fill(0),
    };
  }

  static async connect(plan: Plan, addresses: string[], opts: PipelineOptions): Promise<PipelineClient> {
    const c = new PipelineClient(plan, addresses, opts);
    await c.open();
    return c;
  }

  private meta(kind: FrameMeta['kind'], job: string, step = 0, microBatch = 0, over: Partial<FrameMeta> = {}): FrameMeta {
    return { kind, jobId: job, origin: this.origin, step, microBatch, segment: NO_SEGMENT, role: 'none', roleIndex: 0, ...over };
  }

  private async open(): Promise<void> {
    const hellos: Promise<StageHello>[] = [];
    try {
      for (let k = 0; k < this.addresses.length; k++) {
        this.statsWaiters.push([]);
        const conn = await connectFrames(this.addresses[k], {
          name: `stage ${k} at ${this.addresses[k]}`,
          timeoutMs: this.opts.connectTimeoutMs ?? 10_000,
          auth: { secret: this.opts.secret, role: 'driver', stage: k, id: this.origin },
          onFrame: (f) => this.onFrame(k, f),
          onClose: (e) => this.onClose(k, e),
        });
        this.conns.push(conn);
        hellos.push(new Promise<StageHello>((r) => (this.helloWaiters[k] = r)));
        const hello: DriverHello = { role: 'driver', peers: this.addresses, f16: !!this.opts.f16 };
        await conn.sendText(this.meta('hello', NO_JOB), JSON.stringify(hello));
      }
      const replies = await Promise.race([
        Promise.all(hellos),
        new Promise<never>((_, rej) => setTimeout(() => rej(new Error('pipeline: stages did not answer hello within 10 s')), 10_000).unref()),
      ]);
      replies.forEach((h, k) => {
        if (h.stage !== k) throw new Error(`pipeline: ${this.addresses[k]} is stage ${h.stage}, expected stage ${k}`);
        if (h.partition !== this.plan.partition) throw new Error(`pipeline: stage ${k} runs a ${h.partition} plan, the driver a ${this.plan.partition} plan`);
      });
      const first = this.plan.segments[0];
      this.inputNames = replies[first.stage].segments[String(first.index)] ?? [];
    } catch (e) {
      this.close();
      throw e;
    }
    if (this.opts.statsIntervalMs) {
      this.statsTimer = setInterval(() => void this.refreshStats().catch(() => {}), this.opts.statsIntervalMs);
      this.statsTimer.unref();
    }
  }

  private onFrame(k: number, f: Frame): void {
    const h = f.header;
    if (h.kind === 'hello' || h.kind === 'stats') {
      let body: unknown;
      try {
        body = JSON.parse(frameText(f));
      } catch (e) {
        // a stage that speaks garbage is treated as lost (its jobs fail, retryable), not allowed to crash the driver
        this.conns[k]?.destroy(new Error(`stage ${k} sent a ${h.kind} frame that is not JSON: ${(e as Error).message}`));
        return;
      }
      if (h.kind === 'hello') this.helloWaiters[k]?.(body as StageHello);
      else this.statsWaiters[k].shift()?.(body as StageStats);
      return;
    }
    if (h.kind === 'error') {
      this.failJob(h.jobId, new Error(frameText(f)));
      return;
    }
    if (h.kind === 'job') {
      const o = this.opening.get(h.jobId);
      o?.left.delete(k);
      if (o && !o.left.size) {
        this.opening.delete(h.jobId);
        o.resolve();
      }
      return;
    }
    if (h.kind === 'data' && h.role === 'eps') {
      const key = `${h.jobId}:${h.step}:${h.microBatch}`;
      const p = this.pending.get(key);
      if (!p) return; // a cancelled job's late result
      this.pending.delete(key);
      clearTimeout(p.timer);
      this.metrics.epsBytes += f.tensor.data.byteLength;
      p.resolve(f.tensor as Tensor<'float32'>);
    }
  }

  private onClose(k: number, e: Error | undefined): void {
    if (this.closing) return;
    const err = new Error(`pipeline: lost stage ${k} at ${this.addresses[k]} (stage process died or closed the link): ${e?.message ?? 'closed'}`);
    this.broken ??= err;
    for (const [key, p] of this.pending) {
      this.pending.delete(key);
      clearTimeout(p.timer);
      this.metrics.failedForwards++;
      p.reject(err);
    }
    for (const w of this.statsWaiters[k]?.splice(0) ?? []) w(undefined as never);
    for (const o of this.opening.values()) o.reject(err);
    this.opening.clear();
    this.opened.clear();
  }

  /** fail a job's forwards in flight (and its opening); true if it had any, and then it is cancelled on the stages */
  private failJob(job: string, err: Error): boolean {
    let any = false;
    for (const [key, p] of this.pending) {
      if (p.job !== job) continue;
      any = true;
      this.pending.delete(key);
      clearTimeout(p.timer);
      this.metrics.failedForwards++;
      p.reject(err);
    }
    const o = this.opening.get(job);
    if (o) {
      any = true;
      this.opening.delete(job);
      o.reject(err);
    }
    if (any) this.cancel(job);
    return any;
  }

  /** drop a job's state on every stage (after a failure, or when the driver abandons it); it reopens on next use */
  cancel(jobId: string): void {
    const job = jobIdOf(jobId);
    this.opened.delete(job);
    for (const c of this.conns) c.sendText(this.meta('cancel', job), '').catch(() => {});
  }

  /** give up on a job: its forwards in flight fail with `reason` now, and its state on every stage is dropped */
  abandon(jobId: string, reason: string): void {
    const job = jobIdOf(jobId);
    if (!this.failJob(job, new Error(reason))) this.cancel(job);
  }

  /** open a job on every stage before its first inputs, so that no stage meets a tensor of a job it does not know */
  private openJob(job: string): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    const known = this.opened.get(job);
    if (known) {
      this.opened.delete(job); // most recently used last
      this.opened.set(job, known);
      return known;
    }
    const p = new Promise<void>((resolve, reject) => this.opening.set(job, { left: new Set(this.conns.keys()), resolve, reject }));
    p.catch(() => this.opened.get(job) === p && this.opened.delete(job));
    this.opened.set(job, p);
    if (this.opened.size > OPEN_JOBS) this.opened.delete(this.opened.keys().next().value!);
    for (const c of this.conns) c.sendText(this.meta('job', job), '').catch((e) => this.failJob(job, e as Error));
    return p;
  }

  /** one network forward of one micro-batch (tensors of one job only) */
  async forward(jobId: string, step: number, microBatch: number, inputs: ModelInputs): Promise<Tensor<'float32'>> {
    const job = jobIdOf(jobId);
    this.checkInputs(inputs);
    this.metrics.queued++;
    const release = await this.window.acquire();
    this.metrics.queued--;
    this.metrics.inFlight++;
    try {
      await this.openJob(job);
      return await this.send(job, step, microBatch, inputs);
    } finally {
      this.metrics.inFlight--;
      release();
    }
  }

  /** a ModelFn (sampler/guidance.ts) for one job: every call is its own micro-batch, keyed by a per-job counter */
  model(jobId: string): ModelFn {
    return (inputs) => {
      const n = this.seq.get(jobId) ?? 0;
      this.seq.set(jobId, n + 1);
      return this.forward(jobId, n, 0, inputs);
    };
  }

  /** forget a job's micro-batch counter (call when it ends) */
  endJob(jobId: string): void {
    this.seq.delete(jobId);
  }

  private checkInputs(inputs: ModelInputs): void {
    for (const name of this.inputNames) {
      if (!(inputs as unknown as Record<string, Tensor | undefined>)[name]) {
        throw new Error(`pipeline: the model's first segment needs input "${name}" (inputs: ${this.inputNames.join(', ')})`);
      }
    }
  }

  private send(job: string, step: number, microBatch: number, inputs: ModelInputs): Promise<Tensor<'float32'>> {
    if (this.broken) return Promise.reject(this.broken);
    const key = `${job}:${step}:${microBatch}`;
    if (this.pending.has(key)) return Promise.reject(new Error(`pipeline: job ${job} step ${step} micro-batch ${microBatch} is already in flight`));
    const first = this.plan.segments[0];
    const conn = this.conns[first.stage];
    // resolve input slots before registering the forward: an unknown input must not leave a pending entry behind
    const slots = this.inputNames.map((name) => INPUT_SLOTS.indexOf(name as InputName));
    const bad = this.inputNames.find((_, i) => slots[i] < 0);
    if (bad !== undefined) return Promise.reject(new Error(`pipeline: unknown model input ${bad}`));
    const result = new Promise<Tensor<'float32'>>((resolve, reject) => {
      const ms = this.opts.timeoutMs ?? 600_000;
      const timer = setTimeout(() => {
        this.failJob(job, new Error(`pipeline: job ${job} step ${step} micro-batch ${microBatch} timed out after ${ms} ms`));
      }, ms);
      timer.unref();
      this.pending.set(key, { job, resolve, reject, timer });
    });
    this.metrics.forwards++;
    const rec = inputs as unknown as Record<InputName, Tensor | undefined>;
    this.inputNames.forEach((name, i) => {
      const slot = slots[i];
      const t = rec[name as InputName]!;
      this.metrics.inputBytes += t.data.byteLength;
      const m = this.meta('data', job, step, microBatch, { segment: first.index, role: 'input', roleIndex: slot });
      // x is float32 (f16 transport applies); timesteps/labels must stay exact
      conn.send(m, t, !!this.opts.f16 && name !== 'timesteps').catch((e) => this.failJob(job, e as Error));
    });
    return result;
  }

  /** ask every stage for its counters and fold them into `metrics` */
  async refreshStats(): Promise<StageStats[]> {
    const all = await Promise.all(
      this.conns.map(
        (c, k) =>
          new Promise<StageStats>((resolve, reject) => {
            if (c.isClosed) return reject(new Error(`stage ${k} is not connected`));
            this.statsWaiters[k].push((s) => (s ? resolve(s) : reject(new Error(`stage ${k} closed`))));
            c.sendText(this.meta('stats', NO_JOB), '').catch(reject);
          }),
      ),
    );
    const m = this.metrics;
    m.skipBytes = all.reduce((a, s) => a + s.sent.skip, 0);
    m.activationBytes = all.reduce((a, s) => a + s.sent.stream, 0);
    m.stageBusyMs = all.map((s) => s.busyMs);
    m.stageUptimeMs = all.map((s) => s.uptimeMs);
    m.stageQueueDepth = all.map((s) => s.queueDepth);
    return all;
  }

  /** the shape DriverMetrics.attachPipeline takes (values from the last stats poll) */
  metricsSource(): PipelineMetricsSource {
    const m = this.metrics;
    return {
      stageBusyFraction: () => m.stageBusyMs.map((b, i) => (m.stageUptimeMs[i] ? b / m.stageUptimeMs[i] : 0)),
      skipBytes: () => m.skipBytes,
      activationBytes: () => m.activationBytes,
      queueDepth: () => m.queued + m.inFlight,
    };
  }

  close(): void {
    this.closing = true;
    if (this.statsTimer) clearInterval(this.statsTimer);
    for (const c of this.conns) c.end();
    const err = new Error('pipeline: client closed');
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    for (const o of this.opening.values()) o.reject(err);
    this.opening.clear();
  }
}
