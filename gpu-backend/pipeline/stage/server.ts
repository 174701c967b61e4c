// A stage process's server: accepts frames from the driver and from peer stages and runs its units (units.ts:
// one per chain block by default) as soon as each unit's inputs are present, one at a time, later route positions
// first. h_out goes to the next unit (here or on the next segment's stage); a crossing skip goes point-to-point to
// the consuming stage the moment its block finishes, so the send overlaps the following blocks; same-stage skips stay
// in memory keyed by (job, step, micro-batch); eps goes back to the driver. A failure fails only the affected job.
// This file: connections, frame dispatch, running units and routing their outputs; scheduling is unitQueue.ts,
// links to other stages peerLinks.ts.
import net from 'node:net';
import { type Frame, FrameError, type FrameLimits, type FrameMeta, INPUT_SLOTS, NO_SEGMENT, frameText } from '../../../shared/frame.ts';
import type { Tensor } from '../../../shared/tensor.ts';
import type { Plan } from '../../partition/types.ts';
import { TENSOR } from '../../model/chain.ts';
import type { UnitExecutor } from './executor.ts';
import { PeerLinks } from './peerLinks.ts';
import type { DriverHello, PeerHello, StageHello, StageStats } from '../wire/protocol.ts';
import { type MbKey, type Ready, UnitQueue } from './unitQueue.ts';
import { streamName } from './units.ts';
import { FrameSocket } from '../wire/transport.ts';

export interface StageServerOptions {
  plan: Plan;
  index: number;
  executor: UnitExecutor;
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

/** UVIT_STAGE_TRACE=1: one stderr line per segment run (input assembly, queue wait, compute), for tuning */
const TRACE = !!process.env.UVIT_STAGE_TRACE;

const ROLE_BYTES = () => ({ stream: 0, skip: 0, eps: 0, input: 0 });

export class StageServer {
  readonly plan: Plan;
  readonly index: number;
  private readonly opts: StageServerOptions;
  private readonly exec: UnitExecutor;
  private server: net.Server | null = null;
  private peers: string[] | undefined;
  /** drivers (by origin) that asked for the float16 transport of their jobs' tensors */
  private readonly f16Origins = new Set<number>();
  private readonly drivers = new Map<number, FrameSocket>();
  private readonly links: PeerLinks;
  private readonly conns = new Set<FrameSocket>();
  private readonly queue: UnitQueue;
  private readonly failed = new Map<string, number>();
  private running = false;
  private readonly started = Date.now();
  private readonly stats_ = {
    busyMs: 0, runs: 0, maxQueueDepth: 0, failedJobs: 0, tornFrames: 0,
    sent: ROLE_BYTES(), received: ROLE_BYTES(), sentCount: ROLE_BYTES(), peakRssBytes: 0,
  };
  /** shard load time, reported in stats */
  loadMs = 0;
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(opts: StageServerOptions) {
    this.opts = opts;
    this.plan = opts.plan;
    this.index = opts.index;
    this.exec = opts.executor;
    this.peers = opts.peers;
    if (!this.plan.stages[this.index]) throw new Error(`stage index ${this.index} out of range: the plan has ${this.plan.stages.length} stages`);
    this.queue = new UnitQueue(this.exec.units, (key) => this.exec.inputNames(key));
    this.links = new PeerLinks({ index: this.index, peers: () => this.peers, limits: opts.limits });
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
    this.links.close();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    await this.exec.close();
  }

  stats(): StageStats {
    const uptimeMs = Date.now() - this.started;
    const rssBytes = process.memoryUsage.rss();
    this.stats_.peakRssBytes = Math.max(this.stats_.peakRssBytes, rssBytes);
    const cpu = process.cpuUsage();
    const cpuMs = (cpu.user + cpu.system) / 1000;
    return { stage: this.index, uptimeMs, queueDepth: this.queue.depth, rssBytes, cpuMs, loadMs: this.loadMs, ...structuredClone(this.stats_) };
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
          this.queue.dropOrigin(origin);
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
        this.queue.dropJob(h.jobId);
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
      if (hello.f16) this.f16Origins.add(f.header.origin);
      else this.f16Origins.delete(f.header.origin);
      const reply: StageHello = {
        role: 'stage',
        stage: this.index,
        partition: this.plan.partition,
        segments: Object.fromEntries(
          this.queue.units.filter((u) => u.piece === 0).map((u) => [u.segment, this.queue.inputsOf(u.key).filter((n) => !n.startsWith('skip_'))]),
        ),
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
    if (h.role === 'stream') return streamName(h.segment);
    if (h.role === 'skip') return TENSOR.skip(h.roleIndex);
    if (h.role === 'input' && h.roleIndex < INPUT_SLOTS.length) return INPUT_SLOTS[h.roleIndex];
    throw new Error(`unexpected ${h.role} tensor (index ${h.roleIndex})`);
  }

  private deliver(f: Frame): void {
    const h = f.header;
    if (this.failed.has(h.jobId)) return;
    try {
      const name = this.tensorName(f);
      if (!this.queue.accepts(name)) {
        throw new Error(`stage ${this.index} takes no tensor ${name} (segment ${h.segment}); it takes ${this.queue.acceptedNames().join(', ')}`);
      }
      if (f.tensor.dtype === 'float16') throw new Error(`${name}: native float16 tensors are not accepted (use the f16 transport flag)`);
      this.stats_.received[h.role as 'stream'] += f.tensor.data.byteLength;
      this.put(h, name, f.tensor);
    } catch (e) {
      this.failJob(h.jobId, h.origin, `stage ${this.index}: bad frame for job ${h.jobId} step ${h.step} micro-batch ${h.microBatch}: ${(e as Error).message}`);
    }
  }

  /** add a tensor to its micro-batch, queueing every unit whose inputs are now complete */
  private put(h: MbKey, name: string, t: Tensor): void {
    this.queue.put(h, name, t);
    this.stats_.maxQueueDepth = Math.max(this.stats_.maxQueueDepth, this.queue.depth);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let r = this.queue.next(); r; r = this.queue.next()) {
        if (this.failed.has(r.st.jobId)) continue;
        // bounded in-flight queue: do not start more work while a peer link is backed up
        await this.links.drain();
        await this.run(r);
      }
    } finally {
      this.running = false;
    }
  }

  private async run({ unit: u, st, feeds, readyAt }: Ready): Promise<void> {
    const what = `job ${st.jobId} step ${st.step} micro-batch ${st.microBatch}`;
    let out: Record<string, Tensor>;
    const t0 = performance.now();
    try {
      out = await this.exec.run(u.key, feeds);
      this.stats_.peakRssBytes = Math.max(this.stats_.peakRssBytes, process.memoryUsage.rss());
    } catch (e) {
      return this.failJob(st.jobId, st.origin, `stage ${this.index}: segment ${u.segment} failed for ${what}: ${(e as Error).message}`);
    } finally {
      const t1 = performance.now();
      this.stats_.busyMs += t1 - t0;
      this.stats_.runs++;
      if (TRACE) this.log(`trace ${t0.toFixed(1)} unit ${u.key} ${what}: wait ${(t0 - readyAt).toFixed(1)} ms, run ${(t1 - t0).toFixed(1)} ms`);
    }
    if (this.failed.has(st.jobId)) return;
    const base = { jobId: st.jobId, origin: st.origin, step: st.step, microBatch: st.microBatch };
    // network sends now, before the next unit: onnxruntime-node runs a session synchronously on this thread, so
    // nothing is written while a unit computes; socket.write() hands the frames to the kernel at once (its buffers
    // hold several MB on loopback), and the peer reads them between its own units. Local hand-overs after.
    const net: (() => void)[] = [];
    const local: [string, Tensor][] = [];
    for (const s of u.skipsOut) {
      const t = out[TENSOR.skip(s.skip)];
      if (!t) return this.failJob(st.jobId, st.origin, `stage ${this.index}: unit ${u.key} did not produce skip_${s.skip}`);
      if (s.toStage === this.index) local.push([TENSOR.skip(s.skip), t]);
      else net.push(() => this.send(s.toStage, this.meta('data', { ...base, segment: s.toSegment, role: 'skip', roleIndex: s.skip }), t, `skip_${s.skip}`));
    }
    if (u.graph.head) {
      const drv = this.drivers.get(st.origin);
      if (!drv) return this.log(`driver ${st.origin} gone; dropping eps of ${what}`);
      const f16 = this.f16Origins.has(st.origin);
      this.stats_.sent.eps += out[TENSOR.eps].data.byteLength / (f16 ? 2 : 1);
      this.stats_.sentCount.eps++;
      drv.send(this.meta('data', { ...base, segment: NO_SEGMENT, role: 'eps' }), out[TENSOR.eps], f16).catch((e) =>
        this.log(`cannot return eps of ${what}: ${(e as Error).message}`),
      );
    } else {
      const o = u.streamOut!;
      const h = out[TENSOR.hOut];
      if (o.toStage === this.index) local.push([o.name, h]);
      else net.push(() => this.send(o.toStage, this.meta('data', { ...base, segment: o.toSegment, role: 'stream' }), h, `h_out of segment ${u.segment}`));
    }
    for (const f of net) f();
    try {
      for (const [name, t] of local) this.put(base, name, t);
    } catch (e) {
      return this.failJob(st.jobId, st.origin, `stage ${this.index}: ${what}: ${(e as Error).message}`);
    }
  }

  /** send a tensor to another stage; a failure fails its job */
  private send(stage: number, m: FrameMeta, t: Tensor, what: string): void {
    const role = m.role as 'stream' | 'skip';
    const f16 = this.f16Origins.has(m.origin) && t.dtype === 'float32';
    this.stats_.sent[role] += t.data.byteLength / (f16 ? 2 : 1); // bytes on the wire
    this.stats_.sentCount[role]++;
    this.links.send(stage, m, t, f16, (e) =>
      this.failJob(m.jobId, m.origin, `stage ${this.index}: cannot send ${what} of job ${m.jobId} step ${m.step} micro-batch ${m.microBatch} to stage ${stage}: ${(e as Error).message}`),
    );
  }

  private onFrameError(err: FrameError, conn: FrameSocket): void {
    this.stats_.tornFrames++;
    const msg = `stage ${this.index}: rejected a frame from ${conn.name}: ${err.message}`;
    this.log(msg);
    if (err.header && err.header.kind === 'data') this.failJob(err.header.jobId, err.header.origin, msg);
    if (conn.info.peerStage === undefined) return; // a driver's jobs fail when its connection drops
    // a peer link is dropped (cannot resynchronise): jobs with partial inputs may have lost frames on it
    for (const [j, o] of this.queue.partialJobs()) this.failJob(j, o, `${msg} (job had inputs in flight)`);
  }

  private failJob(jobId: string, origin: number, message: string): void {
    if (this.failed.has(jobId)) return;
    this.failed.set(jobId, Date.now());
    this.stats_.failedJobs++;
    this.queue.dropJob(jobId);
    this.log(message);
    const m = this.meta('error', { jobId, origin, step: 0, microBatch: 0, segment: NO_SEGMENT });
    const drv = this.drivers.get(origin);
    const targets = drv ? [drv] : [...this.drivers.values()];
    for (const d of targets) d.sendText(m, message).catch(() => {});
  }

  private sweep(ttl: number): void {
    const old = Date.now() - ttl;
    this.queue.sweep(old);
    for (const [j, t] of this.failed) if (t < old) this.failed.delete(j);
  }
}
