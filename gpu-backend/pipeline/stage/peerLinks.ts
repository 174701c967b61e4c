// A stage's outgoing links to the other stages: one TCP connection per peer, opened on first use (addresses from
// --peers or the driver's hello), authenticated as "peer stage k" (wire/auth.ts), reused while open and closed after
// a while unused (before the receiving stage would drop it as idle); the server waits on backed-up links.
import type { FrameLimits, FrameMeta } from '../../../shared/frame.ts';
import type { Tensor } from '../../../shared/tensor.ts';
import type { GroupSecret } from '../wire/auth.ts';
import { connectFrames, type FrameSocket } from '../wire/transport.ts';

export interface PeerLinksOptions {
  /** this stage's index */
  index: number;
  /** addresses of all stages by index, read at connect time (the driver's hello may set them late) */
  peers: () => string[] | undefined;
  secret: GroupSecret;
  limits?: FrameLimits;
  /** close a link unused this long, ms */
  idleMs: number;
}

export class PeerLinks {
  private readonly opts: PeerLinksOptions;
  private readonly pending = new Map<number, Promise<FrameSocket>>();
  /** connected links, for sends without a promise hop (keeps frames in order) */
  private readonly ready = new Map<number, FrameSocket>();
  private readonly usedAt = new Map<FrameSocket, number>();

  constructor(opts: PeerLinksOptions) {
    this.opts = opts;
  }

  /** send a tensor frame to another stage; `fail` gets a connect or write error */
  send(stage: number, m: FrameMeta, t: Tensor, f16: boolean, fail: (e: unknown) => void): void {
    const cached = this.ready.get(stage);
    if (cached && !cached.isClosed) {
      this.usedAt.set(cached, Date.now());
      cached.send(m, t, f16).catch(fail);
      return;
    }
    void this.connect(stage).then((c) => {
      this.ready.set(stage, c);
      this.usedAt.set(c, Date.now());
      c.send(m, t, f16).catch(fail);
    }, fail);
  }

  /** resolves once no open link is backed up (bounded in-flight work) */
  async drain(): Promise<void> {
    for (const c of this.ready.values()) if (c.backedUp) await c.writable();
  }

  /** close links unused for idleMs with nothing left to write */
  sweep(now: number): void {
    for (const c of this.ready.values()) {
      if (now - (this.usedAt.get(c) ?? now) > this.opts.idleMs && c.pendingBytes === 0) c.end();
    }
  }

  close(): void {
    for (const p of this.pending.values()) p.then((c) => c.destroy(), () => {});
  }

  private connect(stage: number): Promise<FrameSocket> {
    const cached = this.pending.get(stage);
    if (cached) return cached;
    const addr = this.opts.peers()?.[stage];
    if (!addr) return Promise.reject(new Error(`no address for stage ${stage} (no --peers and no driver hello with peers)`));
    const index = this.opts.index;
    const p = connectFrames(addr, {
      name: `stage ${index} -> stage ${stage} at ${addr}`,
      timeoutMs: 2000,
      limits: this.opts.limits,
      auth: { secret: this.opts.secret, role: 'peer', stage, id: index },
      onFrame: () => {},
      onClose: (_e, c) => {
        if (this.pending.get(stage) === p) this.pending.delete(stage);
        if (this.ready.get(stage) === c) this.ready.delete(stage);
        this.usedAt.delete(c);
      },
    });
    p.catch(() => this.pending.delete(stage));
    this.pending.set(stage, p);
    return p;
  }
}
