// A stage process's server: accepts frames from the driver and from peer stages, runs its segments when their inputs
// are complete (FIFO, one at a time), forwards h_out to the next segment's stage, sends crossing skips point-to-point
// to the consuming stage as soon as they are produced (the sends overlap the next computation), keeps same-stage skips
// in memory keyed by (job, step, micro-batch), and returns eps to the driver. A failure fails only the affected job.
import net from 'node:net';
import { type Frame, FrameError, type FrameLimits, type FrameMeta, INPUT_SLOTS, NO_SEGMENT, frameText } from '../../shared/frame.ts';
import type { Tensor } from '../../shared/tensor.ts';
import { TENSOR, type Plan } from '../partition/types.ts';
import type { SegmentExecutor } from './stageExecutor.ts';
import { connectFrames, FrameSocket } from './transport.ts';
import type { DriverHello, PeerHello, StageHello, StageStats } from './stageProtocol.ts';

export interface StageServerOptions {
  plan: Plan;
  index: number;
  executor: SegmentExecutor;
  /** listen address; port 0 picks a free port */
  host?: string;
  port?: number;
  /** addresses of all stages by stage index; otherwise taken from the driver's hello */
  peers?: string[];
  limits?: FrameLimits;
  /** drop state of jobs idle this long (a driver that vanished mid-job), ms */
  jobTtlMs?: number;
  log?: (msg: string) => void;
}

interface Bucket {
  jobId: string;
  origin: number;
  step: number;
  microBatch: number;
  segment: number;
  tensors: Record<string, Tensor>;
  touched: number;
  /** performance.now() of the first input and of completion (tracing) */
  firstAt?: number;
  readyAt?: number;
}

/** UVIT_STAGE_TRACE=1: one stderr line per segment run (input assembly, queue wait, compute), for tuning */
const TRACE = !!process.env.UVIT_STAGE_TRACE;

const ROLE_BYTES = () => ({ stream: 0, skip: 0, eps: 0, input: 0 });

export class StageServer {
  readonly plan: Plan;
  readonly index: number;
  private readonly opts: StageServerOptions;
  private readonly exec: SegmentExecutor;
  private server: net.Server | null = null;
  private peers: string[] | undefined;
  private f16 = false;
  private readonly drivers = new Map<number, FrameSocket>();
  private readonly peerConns = new Map<number, Promise<FrameSocket>>();
  private readonly conns = new Set<FrameSocket>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly localSkips = new Map<string, { touched: number; skips: Map<string, Tensor> }>();
  private readonly failed = new Map<string, number>();
  private readonly queue: Bucket[] = [];
  private running = false;
  private readonly started = Date.now();
  private readonly stats_ = {
    busyMs: 0, runs: 0, maxQueueDepth: 0, failedJobs: 0, tornFrames: 0,
    sent: ROLE_BYTES(), received: ROLE_BYTES(), sentCount: ROLE_BYTES(), peakRssBytes: 0,
  };
  /** shard load time, reported in stats */
  loadMs = 0;
  private sweepTimer: NodeJS.Timeout | null = null;
  /** network input names per held segment (executor inputs minus skips kept on this stage) */
  private readonly needs = new Map<number, string[]>();

  constructor(opts: StageServerOptions) {
    this.opts = opts;
    this.plan = opts.plan;
    this.index = opts.index;
    this.exec = opts.executor;
    this.peers = opts.peers;
    const info = this.plan.stages[this.index];
    if (!info) throw new Error(`stage index ${this.index} out of range: the plan has ${this.plan.stages.length} stages`);
    for (const s of info.segments) {
      const local = new Set(
        this.plan.skips.filter((r) => r.toSegment === s && !r.crossesNetwork).map((r) => TENSOR.skip(r.skip)),
      );
      this.needs.set(s, this.exec.inputNames(s).filter((n) => !local.has(n)));
    }
  }

  private log(msg: string): void {
    (this.opts.log ?? ((m: string) => process.stderr.write(m + '\n')))(`[stage ${this.index}] ${msg}`);
  }

  async listen(): Promise<string> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => resolve());
    });
    const a = server.address() as net.AddressInfo;
    const ttl = this.opts.jobTtlMs ?? 10 * 60_000;
    this.sweepTimer = setInterval(() => this.sweep(ttl), Math.min(ttl, 30_000));
    this.sweepTimer.unref();
    return `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const c of this.conns) c.destroy();
    for (const p of this.peerConns.values()) p.then((c) => c.destroy(), () => {});
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    await this.exec.close();
  }

  stats(): StageStats {
    const uptimeMs = Date.now() - this.started;
    const rssBytes = process.memoryUsage.rss();
    this.stats_.peakRssBytes = Math.max(this.stats_.peakRssBytes, rssBytes);
    return { stage: this.index, uptimeMs, queueDepth: this.queue.length, rssBytes, loadMs: this.loadMs, ...structuredClone(this.stats_) };
  }

  private accept(socket: net.Socket): void {
    const conn = new FrameSocket(socket, {
      name: `stage ${this.index} connection from ${socket.remoteAddress}:${socket.remotePort}`,
      limits: this.opts.limits,
      onFrame: (f, c) => this.onFrame(f, c),
      onFrameError: (e, c) => this.onFrameError(e, c),
      onClose: (_e, c) => {
        this.conns.delete(c);
        const origin = c.info.driver as number | undefined;
        if (origin !== undefined && this.drivers.get(origin) === c) {
          this.drivers.delete(origin);
          this.dropOrigin(origin);
        }
      },
    });
    this.conns.add(conn);
  }

  private onFrame(f: Frame, conn: FrameSocket): void {
    const h = f.header;
    switch (h.kind) {
      case 'hello':
        return this.onHello(f, conn);
      case 'data':
        return this.deliver(f);
      case 'cancel':
        this.dropJob(h.jobId);
        this.failed.delete(h.jobId);
        return;
      case 'stats':
        void conn.sendText(this.meta('stats', { ...h, segment: NO_SEGMENT }), JSON.stringify(this.stats())).catch(() => {});
        return;
      default:
        this.log(`ignoring ${h.kind} frame from ${conn.name}`);
    }
  }

  private onHello(f: Frame, conn: FrameSocket): void {
    // a malformed hello must drop this connection, not throw out of the socket handler and crash the stage (G: chaos)
    let hello: DriverHello | PeerHello;
    try {
      hello = JSON.parse(frameText(f)) as DriverHello | PeerHello;
      if (hello?.role !== 'driver' && hello?.role !== 'peer') throw new Error('role must be "driver" or "peer"');
      if (hello.role === 'driver' && hello.peers !== undefined && !(Array.isArray(hello.peers) && hello.peers.every((p) => typeof p === 'string'))) throw new Error('peers must be an array of addresses');
    } catch (e) {
      this.stats_.tornFrames++;
      this.log(`rejected a frame from ${conn.name}: bad hello: ${(e as Error).message}`);
      conn.destroy();
      return;
    }
    if (hello.role === 'driver') {
      conn.info.driver = f.header.origin;
      this.drivers.set(f.header.origin, conn);
      if (hello.peers && !this.opts.peers) this.peers = hello.peers;
      this.f16 = !!hello.f16;
      const reply: StageHello = {
        role: 'stage',
        stage: this.index,
        partition: this.plan.partition,
        segments: Object.fromEntries([...this.needs].map(([s]) => [s, [...this.exec.inputNames(s)]])),
      };
      void conn.sendText(this.meta('hello', { ...f.header, segment: NO_SEGMENT }), JSON.stringify(reply)).catch(() => {});
    } else {
      conn.info.peerStage = hello.stage;
    }
  }

  private meta(kind: FrameMeta['kind'], h: Omit<FrameMeta, 'kind' | 'role' | 'roleIndex'> & Partial<FrameMeta>): FrameMeta {
    return { kind, jobId: h.jobId, origin: h.origin, step: h.step, microBatch: h.microBatch, segment: h.segment, role: h.role ?? 'none', roleIndex: h.roleIndex ?? 0 };
  }

  private tensorName(f: Frame): string {
    const h = f.header;
    if (h.role === 'stream') return TENSOR.hIn;
    if (h.role === 'skip') return TENSOR.skip(h.roleIndex);
    if (h.role === 'input' && h.roleIndex < INPUT_SLOTS.length) return INPUT_SLOTS[h.roleIndex];
    throw new Error(`unexpected ${h.role} tensor (index ${h.roleIndex})`);
  }

  private deliver(f: Frame): void {
    const h = f.header;
    if (this.failed.has(h.jobId)) return;
    const need = this.needs.get(h.segment);
    try {
      if (!need) throw new Error(`stage ${this.index} does not hold segment ${h.segment} (holds ${[...this.needs.keys()].join(', ')})`);
      const name = this.tensorName(f);
      if (!need.includes(name)) throw new Error(`segment ${h.segment} takes no input ${name} (inputs: ${need.join(', ')})`);
      if (f.tensor.dtype === 'float16') throw new Error(`${name}: native float16 tensors are not accepted (use the f16 transport flag)`);
      this.stats_.received[h.role as 'stream'] += f.tensor.data.byteLength;
      this.put({ ...h, tensors: {}, touched: 0 }, name, f.tensor);
    } catch (e) {
      this.failJob(h.jobId, h.origin, `stage ${this.index}: bad frame for job ${h.jobId} step ${h.step} micro-batch ${h.microBatch}: ${(e as Error).message}`);
    }
  }

  private put(b: Bucket, name: string, t: Tensor): void {
    const key = `${b.jobId}:${b.step}:${b.microBatch}:${b.segment}`;
    let cur = this.buckets.get(key);
    if (!cur) {
      cur = { jobId: b.jobId, origin: b.origin, step: b.step, microBatch: b.microBatch, segment: b.segment, tensors: {}, touched: 0 };
      this.buckets.set(key, cur);
    }
    if (cur.tensors[name]) throw new Error(`duplicate ${name} for segment ${b.segment}`);
    cur.tensors[name] = t;
    cur.touched = Date.now();
    cur.firstAt ??= performance.now();
    if (this.needs.get(b.segment)!.every((n) => cur.tensors[n])) {
      this.buckets.delete(key);
      cur.readyAt = performance.now();
      this.queue.push(cur);
      this.stats_.maxQueueDepth = Math.max(this.stats_.maxQueueDepth, this.queue.length);
      void this.pump();
    }
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        // later route segments first (work closest to returning eps): keeps every job's loop moving; FIFO among equals
        let pick = 0;
        for (let i = 1; i < this.queue.length; i++) if (this.queue[i].segment > this.queue[pick].segment) pick = i;
        const b = this.queue.splice(pick, 1)[0];
        if (this.failed.has(b.jobId)) continue;
        await this.run(b);
      }
    } finally {
      this.running = false;
    }
  }

  private async run(b: Bucket): Promise<void> {
    const seg = this.plan.segments[b.segment];
    const mbKey = `${b.jobId}:${b.step}:${b.microBatch}`;
    const feeds: Record<string, Tensor> = { ...b.tensors };
    const local = this.localSkips.get(mbKey);
    for (const r of this.plan.skips) {
      if (r.toSegment !== b.segment || r.crossesNetwork || r.fromSegment === r.toSegment) continue; // inside one graph
      const t = local?.skips.get(TENSOR.skip(r.skip));
      if (!t) return this.failJob(b.jobId, b.origin, `stage ${this.index}: local skip_${r.skip} missing for segment ${b.segment}`);
      feeds[TENSOR.skip(r.skip)] = t;
      local!.skips.delete(TENSOR.skip(r.skip));
    }
    if (local && !local.skips.size) this.localSkips.delete(mbKey);
    let out: Record<string, Tensor>;
    const t0 = performance.now();
    try {
      out = await this.exec.run(b.segment, feeds);
      this.stats_.peakRssBytes = Math.max(this.stats_.peakRssBytes, process.memoryUsage.rss());
    } catch (e) {
      return this.failJob(b.jobId, b.origin, `stage ${this.index}: segment ${b.segment} failed for job ${b.jobId} step ${b.step} micro-batch ${b.microBatch}: ${(e as Error).message}`);
    } finally {
      const t1 = performance.now();
      this.stats_.busyMs += t1 - t0;
      this.stats_.runs++;
      if (TRACE) {
        const r = (v: number) => v.toFixed(1);
        this.log(`trace ${r(t0)} seg ${b.segment} job ${b.jobId.slice(0, 6)} step ${b.step} mb ${b.microBatch}: ` +
          `assemble ${r((b.readyAt ?? t0) - (b.firstAt ?? t0))} ms, wait ${r(t0 - (b.readyAt ?? t0))} ms, run ${r(t1 - t0)} ms`);
      }
    }
    if (this.failed.has(b.jobId)) return;
    const base = { jobId: b.jobId, origin: b.origin, step: b.step, microBatch: b.microBatch };
    const sends: Promise<FrameSocket | null>[] = [];
    if (seg.head) {
      const drv = this.drivers.get(b.origin);
      if (!drv) return this.log(`driver ${b.origin} gone; dropping eps of job ${b.jobId}`);
      this.stats_.sent.eps += out[TENSOR.eps].data.byteLength;
      this.stats_.sentCount.eps++;
      drv.send(this.meta('data', { ...base, segment: NO_SEGMENT, role: 'eps' }), out[TENSOR.eps]).catch((e) =>
        this.log(`cannot return eps of job ${b.jobId}: ${(e as Error).message}`),
      );
    } else {
      const next = this.plan.segments[b.segment + 1];
      const m = this.meta('data', { ...base, segment: next.index, role: 'stream' });
      sends.push(this.forward(next.stage, m, out[TENSOR.hOut], `h_out of segment ${b.segment}`));
    }
    // crossing skips go straight to their consumer; same-stage skips stay here until the consumer runs
    for (const i of seg.skipsOut) {
      const r = this.plan.skips.find((s) => s.skip === i && s.fromSegment === b.segment);
      const t = out[TENSOR.skip(i)];
      if (!r || !t) return this.failJob(b.jobId, b.origin, `stage ${this.index}: segment ${b.segment} did not produce skip_${i}`);
      if (r.fromSegment === r.toSegment) continue;
      if (!r.crossesNetwork) {
        let l = this.localSkips.get(mbKey);
        if (!l) this.localSkips.set(mbKey, (l = { touched: Date.now(), skips: new Map() }));
        l.skips.set(TENSOR.skip(i), t);
      } else {
        const m = this.meta('data', { ...base, segment: r.toSegment, role: 'skip', roleIndex: i });
        sends.push(this.forward(r.toStage, m, t, `skip_${i}`));
      }
    }
    // bounded in-flight queue: do not start the next computation while a peer link is backed up
    for (const p of sends) {
      const c = await p;
      if (c) await c.writable();
    }
  }

  /** send a tensor to the stage holding meta.segment (or hand it over locally: resolves null) */
  private forward(stage: number, m: FrameMeta, t: Tensor, what: string): Promise<FrameSocket | null> {
    const role = m.role as 'stream' | 'skip';
    if (stage === this.index) {
      this.put({ ...m, tensors: {}, touched: 0 }, role === 'stream' ? TENSOR.hIn : TENSOR.skip(m.roleIndex), t);
      return Promise.resolve(null);
    }
    this.stats_.sent[role] += t.data.byteLength;
    this.stats_.sentCount[role]++;
    const fail = (e: unknown) => {
      this.failJob(m.jobId, m.origin, `stage ${this.index}: cannot send ${what} of job ${m.jobId} step ${m.step} micro-batch ${m.microBatch} to stage ${stage}: ${(e as Error).message}`);
      return null;
    };
    return this.peer(stage).then((c) => {
      c.send(m, t, this.f16).catch(fail);
      return c;
    }, fail);
  }

  private peer(stage: number): Promise<FrameSocket> {
    const cached = this.peerConns.get(stage);
    if (cached) return cached;
    const addr = this.peers?.[stage];
    if (!addr) return Promise.reject(new Error(`no address for stage ${stage} (no --peers and no driver hello with peers)`));
    const p = connectFrames(addr, {
      name: `stage ${this.index} -> stage ${stage} at ${addr}`,
      timeoutMs: 2000,
      limits: this.opts.limits,
      onFrame: () => {},
      onClose: () => {
        if (this.peerConns.get(stage) === p) this.peerConns.delete(stage);
      },
    }).then(async (c) => {
      const hello: PeerHello = { role: 'peer', stage: this.index };
      await c.sendText(this.meta('hello', { jobId: '0'.repeat(32), origin: 0, step: 0, microBatch: 0, segment: NO_SEGMENT }), JSON.stringify(hello));
      return c;
    });
    p.catch(() => this.peerConns.delete(stage));
    this.peerConns.set(stage, p);
    return p;
  }

  private onFrameError(err: FrameError, conn: FrameSocket): void {
    this.stats_.tornFrames++;
    const msg = `stage ${this.index}: rejected a frame from ${conn.name}: ${err.message}`;
    this.log(msg);
    if (err.header && err.header.kind === 'data') this.failJob(err.header.jobId, err.header.origin, msg);
    if (conn.info.peerStage === undefined) return; // a driver's jobs fail when its connection drops
    // a peer link is dropped (cannot resynchronise): jobs with partial inputs may have lost frames on it
    const jobs = new Map<string, number>();
    for (const b of this.buckets.values()) jobs.set(b.jobId, b.origin);
    for (const [j, o] of jobs) this.failJob(j, o, `${msg} (job had inputs in flight)`);
  }

  private failJob(jobId: string, origin: number, message: string): void {
    if (this.failed.has(jobId)) return;
    this.failed.set(jobId, Date.now());
    this.stats_.failedJobs++;
    this.dropJob(jobId);
    this.log(message);
    const m = this.meta('error', { jobId, origin, step: 0, microBatch: 0, segment: NO_SEGMENT });
    const drv = this.drivers.get(origin);
    const targets = drv ? [drv] : [...this.drivers.values()];
    for (const d of targets) d.sendText(m, message).catch(() => {});
  }

  private dropJob(jobId: string): void {
    for (const [k, b] of this.buckets) if (b.jobId === jobId) this.buckets.delete(k);
    for (const k of this.localSkips.keys()) if (k.startsWith(jobId + ':')) this.localSkips.delete(k);
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i].jobId === jobId) this.queue.splice(i, 1);
  }

  private dropOrigin(origin: number): void {
    const jobs = new Set([...this.buckets.values(), ...this.queue].filter((b) => b.origin === origin).map((b) => b.jobId));
    for (const j of jobs) this.dropJob(j);
  }

  private sweep(ttl: number): void {
    const old = Date.now() - ttl;
    for (const [k, b] of this.buckets) if (b.touched < old) this.buckets.delete(k);
    for (const [k, l] of this.localSkips) if (l.touched < old) this.localSkips.delete(k);
    for (const [j, t] of this.failed) if (t < old) this.failed.delete(j);
  }
}
