// A stage process's server: accepts frames from the driver and from peer stages and runs its units (units.ts:
// one per chain block by default) as soon as each unit's inputs are present, one at a time, later route positions
// first. h_out goes to the next unit (here or on the next segment's stage); a crossing skip goes point-to-point to
// the consuming stage the moment its block finishes, so the send overlaps the following blocks; same-stage skips stay
// in memory keyed by (job, step, micro-batch); eps goes back to the driver. A failure fails only the affected job.
// Every connection first proves it belongs to the group (wire/auth.ts) and is then held to its role: a driver opens,
// feeds and cancels its own jobs only and is the only one answered with stats; a peer stage sends activations and
// skips of jobs a driver opened here. Each frame is judged by its header (limits.ts) before its payload is read.
// This file: connections, frame dispatch, running units and routing their outputs; scheduling is unitQueue.ts,
// links to other stages peerLinks.ts.
import net from 'node:net';
import { type Frame, FrameError, type FrameHeader, type FrameLimits, type FrameMeta, INPUT_SLOTS, NO_SEGMENT, frameText } from '../../../shared/frame.ts';
import type { Tensor } from '../../../shared/tensor.ts';
import type { UViTConfig } from '../../model/config.ts';
import type { Plan } from '../../partition/types.ts';
import { TENSOR } from '../../model/chain.ts';
import type { UnitExecutor } from './executor.ts';
import { DEFAULT_MAX_BATCH, type StageLimits, TensorEnvelopes, defaultLimits } from './limits.ts';
import { PeerLinks } from './peerLinks.ts';
import { AUTH_META, AuthError, type GroupSecret, MAX_AUTH_BYTES, authTensor, checkProof, encodeChallenge } from '../wire/auth.ts';
import type { DriverHello, StageHello, StageStats } from '../wire/protocol.ts';
import { type MbKey, type Ready, UnitQueue } from './unitQueue.ts';
import { streamName } from './units.ts';
import { FrameSocket } from '../wire/transport.ts';

export interface StageServerOptions {
  plan: Plan;
  /** the model config (plan file): sizes every tensor the stage takes */
  config: UViTConfig;
  index: number;
  executor: UnitExecutor;
  /** the group secret every connection must prove (wire/auth.ts) */
  secret: GroupSecret;
  /** listen address; port 0 picks a free port */
  host?: string;
  port?: number;
  /** addresses of all stages by stage index; otherwise taken from the driver's hello */
  peers?: string[];
  frameLimits?: FrameLimits;
  /** overrides of the defaults of limits.ts */
  limits?: Partial<StageLimits>;
  /** drop state of jobs idle this long (a driver that vanished mid-job), ms */
  jobTtlMs?: number;
  log?: (msg: string) => void;
}

/** UVIT_STAGE_TRACE=1: one stderr line per segment run (input assembly, queue wait, compute), for tuning */
const TRACE = !!process.env.UVIT_STAGE_TRACE;

const ROLE_BYTES = () => ({ stream: 0, skip: 0, eps: 0, input: 0 });

/** hello / job / cancel / stats payloads are small JSON or empty */
const MAX_CONTROL_BYTES = 64 * 1024;

/** who is at the other end of a connection */
type Conn =
  | { role: 'pending'; nonce: Uint8Array; since: number }
  | { role: 'driver'; origin: number; f16: boolean }
  | { role: 'peer'; stage: number };

/** a job a driver opened here: only that connection may feed or cancel it, and its eps go back there */
interface Job {
  owner: FrameSocket;
  origin: number;
  touched: number;
}

export class StageServer {
  readonly plan: Plan;
  readonly index: number;
  readonly limits: StageLimits;
  private readonly opts: StageServerOptions;
  private readonly exec: UnitExecutor;
  private readonly envelopes: TensorEnvelopes;
  private server: net.Server | null = null;
  private peers: string[] | undefined;
  private readonly links: PeerLinks;
  private readonly conns = new Map<FrameSocket, Conn>();
  private readonly jobs = new Map<string, Job>();
  private readonly queue: UnitQueue;
  private readonly failed = new Map<string, number>();
  private running = false;
  private readonly started = Date.now();
  private readonly stats_ = {
    busyMs: 0, runs: 0, maxQueueDepth: 0, failedJobs: 0, tornFrames: 0, refusedConnections: 0, refusedFrames: 0,
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
    this.envelopes = new TensorEnvelopes(opts.config, opts.limits?.maxBatch ?? DEFAULT_MAX_BATCH);
    this.limits = { ...defaultLimits(this.envelopes, this.queue.acceptedNames(), this.plan.numStages), ...opts.limits };
    this.links = new PeerLinks({ index: this.index, peers: () => this.peers, secret: opts.secret, limits: opts.frameLimits, idleMs: this.limits.idleMs / 2 });
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
    this.sweepTimer = setInterval(() => this.sweep(), 1000);
    this.sweepTimer.unref();
    return `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const c of this.conns.keys()) c.destroy();
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
    return {
      stage: this.index, uptimeMs, queueDepth: this.queue.depth, rssBytes, cpuMs, loadMs: this.loadMs,
      heldBytes: this.queue.heldBytes, openJobs: this.jobs.size, ...structuredClone(this.stats_),
    };
  }

  private accept(socket: net.Socket): void {
    socket.setKeepAlive(true, 30_000);
    const conn = new FrameSocket(socket, {
      name: `stage ${this.index} connection from ${socket.remoteAddress}:${socket.remotePort}`,
      limits: this.opts.frameLimits,
      admit: (h, c) => this.admit(h, c),
      onFrame: (f, c) => this.onFrame(f, c),
      onFrameError: (e, c) => this.onFrameError(e, c),
      onClose: (_e, c) => this.onClose(c),
    });
    // the challenge is all an unauthenticated client ever gets: a random nonce
    const ch = encodeChallenge();
    this.conns.set(conn, { role: 'pending', nonce: ch.nonce, since: Date.now() });
    conn.send(AUTH_META, authTensor(ch.bytes)).catch(() => {});
  }

  private onClose(c: FrameSocket): void {
    this.conns.delete(c);
    // everything held for a driver's jobs goes with its connection
    for (const [id, j] of this.jobs) if (j.owner === c) this.dropJob(id);
  }

  /** close a connection that failed the handshake or broke its role's rules; returns false (admit: skip the payload) */
  private refuse(conn: FrameSocket, why: string): false {
    this.stats_.refusedConnections++;
    this.log(`refused ${conn.name}: ${why}`);
    conn.destroy(new Error(`${conn.name}: refused: ${why}`));
    return false;
  }

  /** refuse one frame by its header; its payload is skipped unread */
  private refuseFrame(why: string): false {
    this.stats_.refusedFrames++;
    this.log(why);
    return false;
  }

  /** judge a frame by its header, before any of its payload is kept (shared/frameDecoder.ts admit) */
  private admit(h: FrameHeader, conn: FrameSocket): boolean {
    const c = this.conns.get(conn);
    if (!c) return false;
    if (c.role === 'pending') {
      if (h.kind !== 'auth' || h.payloadBytes > MAX_AUTH_BYTES) return this.refuse(conn, `a ${h.kind} frame of ${h.payloadBytes} B before the handshake`);
      return true;
    }
    if (h.kind === 'auth') return this.refuse(conn, 'a second handshake');
    if (c.role === 'peer') {
      if (h.kind !== 'data' || (h.role !== 'stream' && h.role !== 'skip')) {
        return this.refuse(conn, `stage ${c.stage} sent a ${h.kind} frame (role ${h.role}); a peer stage sends only activations and skips`);
      }
    } else {
      if (h.origin !== c.origin) return this.refuse(conn, `a frame with origin ${h.origin} from the driver that proved origin ${c.origin}`);
      if (h.kind === 'data' && h.role !== 'input') return this.refuse(conn, `a ${h.role} tensor from a driver; a driver sends only model inputs`);
      if (h.kind === 'error') return this.refuse(conn, 'an error frame from a driver');
      if (h.kind !== 'data') return h.payloadBytes <= MAX_CONTROL_BYTES || this.refuse(conn, `a ${h.kind} frame of ${h.payloadBytes} B`);
    }
    const what = `the ${h.role} tensor of job ${h.jobId} step ${h.step} micro-batch ${h.microBatch} from ${conn.name}`;
    const job = this.jobs.get(h.jobId);
    if (!job || job.origin !== h.origin || (c.role === 'driver' && job.owner !== conn)) {
      if (c.role === 'driver') conn.sendText(this.meta('error', { ...h, segment: NO_SEGMENT }), `stage ${this.index}: job ${h.jobId} is not open on this connection`).catch(() => {});
      return this.refuseFrame(`refused ${what}: the job is not open ${c.role === 'driver' ? 'on this connection' : `for driver ${h.origin}`}`);
    }
    if (this.failed.has(h.jobId)) return false; // a failed job's late tensors
    job.touched = Date.now();
    let why: string | undefined;
    try {
      const name = this.tensorName(h);
      if (!this.queue.accepts(name)) why = `stage ${this.index} takes no tensor ${name} (segment ${h.segment}); it takes ${this.queue.acceptedNames().join(', ')}`;
      else why = this.envelopes.refuse(name, h) ?? this.overMemory(h);
    } catch (e) {
      why = (e as Error).message;
    }
    if (!why) return true;
    this.refuseFrame(`refused ${what}: ${why}`);
    this.failJob(h.jobId, `stage ${this.index}: refused the ${h.role} tensor of job ${h.jobId} step ${h.step} micro-batch ${h.microBatch}: ${why}`);
    return false;
  }

  /** why holding this frame's tensor would exceed the stage's memory bound */
  private overMemory(h: FrameHeader): string | undefined {
    const bytes = h.dims.reduce((a, b) => a * b, 1) * (h.dtype === 'int64' ? 8 : h.dtype === 'uint8' ? 1 : h.dtype === 'float16' ? 2 : 4);
    let incoming = 0;
    for (const c of this.conns.keys()) incoming += c.incomingBytes;
    const held = this.queue.heldBytes + incoming;
    if (held + bytes <= this.limits.maxHeldBytes) return undefined;
    return `the stage holds ${held} B of tensors; ${bytes} B more would exceed its limit of ${this.limits.maxHeldBytes} B`;
  }

  private onFrame(f: Frame, conn: FrameSocket): void {
    const c = this.conns.get(conn);
    if (!c) return;
    const h = f.header;
    if (c.role === 'pending') return this.onProof(f, conn, c.nonce);
    switch (h.kind) {
      case 'data':
        return this.deliver(f);
      case 'hello':
        return this.onHello(f, conn);
      case 'job':
        return this.openJob(h, conn);
      case 'cancel': {
        const job = this.jobs.get(h.jobId);
        if (job && job.owner !== conn) {
          this.refuseFrame(`refused a cancel of job ${h.jobId} from ${conn.name}: another driver opened it`);
          return;
        }
        this.dropJob(h.jobId);
        return;
      }
      case 'stats':
        conn.sendText(this.meta('stats', { ...h, segment: NO_SEGMENT }), JSON.stringify(this.stats())).catch(() => {});
        return;
      default:
        this.log(`ignoring ${h.kind} frame from ${conn.name}`);
    }
  }

  private onProof(f: Frame, conn: FrameSocket, nonce: Uint8Array): void {
    let proven: ReturnType<typeof checkProof>;
    try {
      proven = checkProof(this.opts.secret, nonce, this.index, f.tensor.data as Uint8Array);
    } catch (e) {
      if (!(e instanceof AuthError)) throw e;
      this.refuse(conn, e.message);
      return;
    }
    if (proven.role === 'peer') {
      if (proven.id >= this.plan.numStages || proven.id === this.index) {
        this.refuse(conn, `a peer claiming stage ${proven.id} (the plan has ${this.plan.numStages} stages; this is stage ${this.index})`);
        return;
      }
      this.conns.set(conn, { role: 'peer', stage: proven.id });
    } else {
      // an origin names one driver: a second connection cannot take over the first one's jobs and results
      for (const [other, o] of this.conns) {
        if (other !== conn && o.role === 'driver' && o.origin === proven.id) {
          this.refuse(conn, `a driver claiming origin ${proven.id}, which a connected driver holds`);
          return;
        }
      }
      this.conns.set(conn, { role: 'driver', origin: proven.id, f16: false });
    }
    conn.send(AUTH_META, authTensor(proven.accept)).catch(() => {});
  }

  private onHello(f: Frame, conn: FrameSocket): void {
    const c = this.conns.get(conn);
    if (c?.role !== 'driver') return;
    // a malformed hello must drop this connection, not throw out of the socket handler and crash the stage
    let hello: DriverHello;
    try {
      hello = JSON.parse(frameText(f)) as DriverHello;
      if (hello?.role !== 'driver') throw new Error('role must be "driver"');
      if (hello.peers !== undefined && !(Array.isArray(hello.peers) && hello.peers.every((p) => typeof p === 'string'))) throw new Error('peers must be an array of addresses');
    } catch (e) {
      this.refuse(conn, `bad hello: ${(e as Error).message}`);
      return;
    }
    if (hello.peers && !this.opts.peers) this.peers = hello.peers;
    c.f16 = !!hello.f16;
    const reply: StageHello = {
      role: 'stage',
      stage: this.index,
      partition: this.plan.partition,
      segments: Object.fromEntries(
        this.queue.units.filter((u) => u.piece === 0).map((u) => [u.segment, this.queue.inputsOf(u.key).filter((n) => !n.startsWith('skip_'))]),
      ),
    };
    conn.sendText(this.meta('hello', { ...f.header, segment: NO_SEGMENT }), JSON.stringify(reply)).catch(() => {});
  }

  /** a driver opens a job here (before its first inputs); echoed back once open */
  private openJob(h: FrameHeader, conn: FrameSocket): void {
    const refuse = (why: string) => {
      this.refuseFrame(`refused to open job ${h.jobId} for ${conn.name}: ${why}`);
      conn.sendText(this.meta('error', { ...h, segment: NO_SEGMENT }), `stage ${this.index}: cannot open job ${h.jobId}: ${why}`).catch(() => {});
    };
    const job = this.jobs.get(h.jobId);
    if (job && job.owner !== conn) return refuse('another driver opened it');
    if (!job) {
      const mine = [...this.jobs].filter(([, j]) => j.owner === conn);
      if (mine.length >= this.limits.maxJobsPerDriver) {
        // finished jobs are never closed explicitly: forget the least recently used one that holds nothing here
        const idle = mine.filter(([id]) => !this.queue.holds(id)).sort((a, b) => a[1].touched - b[1].touched)[0];
        if (!idle) return refuse(`the driver has ${mine.length} jobs open here, all of them holding tensors`);
        this.dropJob(idle[0]);
      }
      this.jobs.set(h.jobId, { owner: conn, origin: h.origin, touched: Date.now() });
    } else job.touched = Date.now();
    this.failed.delete(h.jobId);
    conn.sendText(this.meta('job', { ...h, segment: NO_SEGMENT }), '').catch(() => {});
  }

  private dropJob(jobId: string): void {
    this.jobs.delete(jobId);
    this.queue.dropJob(jobId);
    this.failed.delete(jobId);
  }

  private meta(kind: FrameMeta['kind'], h: Omit<FrameMeta, 'kind' | 'role' | 'roleIndex'> & Partial<FrameMeta>): FrameMeta {
    return { kind, jobId: h.jobId, origin: h.origin, step: h.step, microBatch: h.microBatch, segment: h.segment, role: h.role ?? 'none', roleIndex: h.roleIndex ?? 0 };
  }

  private tensorName(h: FrameHeader): string {
    if (h.role === 'stream') return streamName(h.segment);
    if (h.role === 'skip') return TENSOR.skip(h.roleIndex);
    if (h.role === 'input' && h.roleIndex < INPUT_SLOTS.length) return INPUT_SLOTS[h.roleIndex];
    throw new Error(`unexpected ${h.role} tensor (index ${h.roleIndex})`);
  }

  /** a data frame that passed admit(): its job is open and the tensor fits */
  private deliver(f: Frame): void {
    const h = f.header;
    if (this.failed.has(h.jobId) || !this.jobs.has(h.jobId)) return; // failed or cancelled while its payload arrived
    try {
      this.stats_.received[h.role as 'stream'] += f.tensor.data.byteLength;
      this.put(h, this.tensorName(h), f.tensor);
    } catch (e) {
      this.failJob(h.jobId, `stage ${this.index}: bad frame for job ${h.jobId} step ${h.step} micro-batch ${h.microBatch}: ${(e as Error).message}`);
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
        if (this.failed.has(r.st.jobId) || !this.jobs.has(r.st.jobId)) continue;
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
      return this.failJob(st.jobId, `stage ${this.index}: segment ${u.segment} failed for ${what}: ${(e as Error).message}`);
    } finally {
      const t1 = performance.now();
      this.stats_.busyMs += t1 - t0;
      this.stats_.runs++;
      if (TRACE) this.log(`trace ${t0.toFixed(1)} unit ${u.key} ${what}: wait ${(t0 - readyAt).toFixed(1)} ms, run ${(t1 - t0).toFixed(1)} ms`);
    }
    const job = this.jobs.get(st.jobId);
    if (this.failed.has(st.jobId) || !job) return;
    const f16 = this.f16Of(job);
    const base = { jobId: st.jobId, origin: st.origin, step: st.step, microBatch: st.microBatch };
    // network sends now, before the next unit: onnxruntime-node runs a session synchronously on this thread, so
    // nothing is written while a unit computes; socket.write() hands the frames to the kernel at once (its buffers
    // hold several MB on loopback), and the peer reads them between its own units. Local hand-overs after.
    const net: (() => void)[] = [];
    const local: [string, Tensor][] = [];
    for (const s of u.skipsOut) {
      const t = out[TENSOR.skip(s.skip)];
      if (!t) return this.failJob(st.jobId, `stage ${this.index}: unit ${u.key} did not produce skip_${s.skip}`);
      if (s.toStage === this.index) local.push([TENSOR.skip(s.skip), t]);
      else net.push(() => this.send(s.toStage, this.meta('data', { ...base, segment: s.toSegment, role: 'skip', roleIndex: s.skip }), t, f16, `skip_${s.skip}`));
    }
    if (u.graph.head) {
      this.stats_.sent.eps += out[TENSOR.eps].data.byteLength / (f16 ? 2 : 1);
      this.stats_.sentCount.eps++;
      job.owner.send(this.meta('data', { ...base, segment: NO_SEGMENT, role: 'eps' }), out[TENSOR.eps], f16).catch((e) =>
        this.log(`cannot return eps of ${what}: ${(e as Error).message}`),
      );
    } else {
      const o = u.streamOut!;
      const h = out[TENSOR.hOut];
      if (o.toStage === this.index) local.push([o.name, h]);
      else net.push(() => this.send(o.toStage, this.meta('data', { ...base, segment: o.toSegment, role: 'stream' }), h, f16, `h_out of segment ${u.segment}`));
    }
    for (const f of net) f();
    try {
      for (const [name, t] of local) this.put(base, name, t);
    } catch (e) {
      return this.failJob(st.jobId, `stage ${this.index}: ${what}: ${(e as Error).message}`);
    }
  }

  /** whether the job's driver asked for the float16 transport */
  private f16Of(job: Job): boolean {
    const c = this.conns.get(job.owner);
    return c?.role === 'driver' && c.f16;
  }

  /** send a tensor to another stage; a failure fails its job */
  private send(stage: number, m: FrameMeta, t: Tensor, f16Transport: boolean, what: string): void {
    const role = m.role as 'stream' | 'skip';
    const f16 = f16Transport && t.dtype === 'float32';
    this.stats_.sent[role] += t.data.byteLength / (f16 ? 2 : 1); // bytes on the wire
    this.stats_.sentCount[role]++;
    this.links.send(stage, m, t, f16, (e) =>
      this.failJob(m.jobId, `stage ${this.index}: cannot send ${what} of job ${m.jobId} step ${m.step} micro-batch ${m.microBatch} to stage ${stage}: ${(e as Error).message}`),
    );
  }

  private onFrameError(err: FrameError, conn: FrameSocket): void {
    this.stats_.tornFrames++;
    const msg = `stage ${this.index}: rejected a frame from ${conn.name}: ${err.message}`;
    this.log(msg);
    const c = this.conns.get(conn);
    if (!c || c.role === 'pending') return;
    const job = err.header?.kind === 'data' ? this.jobs.get(err.header.jobId) : undefined;
    // only the job's own driver, or a peer carrying it, can fail a job by sending it a bad frame
    if (job && (job.owner === conn || c.role === 'peer')) this.failJob(err.header!.jobId, msg);
    if (c.role !== 'peer') return; // a driver's jobs go when its connection drops
    // a peer link is dropped (cannot resynchronise): jobs with partial inputs may have lost frames on it
    for (const j of this.queue.partialJobs().keys()) this.failJob(j, `${msg} (job had inputs in flight)`);
  }

  /** fail a job here and tell its driver (only its driver: job ids and messages stay with their owner) */
  private failJob(jobId: string, message: string): void {
    if (this.failed.has(jobId)) return;
    this.failed.set(jobId, Date.now());
    this.stats_.failedJobs++;
    this.queue.dropJob(jobId);
    this.log(message);
    const job = this.jobs.get(jobId);
    if (!job) return;
    job.owner.sendText(this.meta('error', { jobId, origin: job.origin, step: 0, microBatch: 0, segment: NO_SEGMENT }), message).catch(() => {});
  }

  /** every second: handshakes that take too long, slow and idle connections, stale job state */
  private sweep(): void {
    const now = Date.now();
    const L = this.limits;
    for (const [conn, c] of this.conns) {
      if (c.role === 'pending') {
        if (now - c.since > L.handshakeMs) this.refuse(conn, `no handshake within ${L.handshakeMs} ms`);
        continue;
      }
      const slow = conn.stalled(L.stallMs, now);
      if (slow) this.refuse(conn, `too slow: it ${slow}`);
      else if (conn.idleFor(now) > L.idleMs && ![...this.jobs.entries()].some(([id, j]) => j.owner === conn && this.queue.holds(id))) {
        this.log(`closing ${conn.name}: idle for ${conn.idleFor(now)} ms`);
        conn.end();
      }
    }
    this.links.sweep(now);
    const ttl = this.opts.jobTtlMs ?? 10 * 60_000;
    const old = now - ttl;
    this.queue.sweep(old);
    for (const [j, t] of this.failed) if (t < old) this.failed.delete(j);
  }
}
