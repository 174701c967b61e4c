// A stage's outgoing links to the other stages: one TCP connection per peer, opened on first use (addresses from
// --peers or the driver's hello), announced with a PeerHello, reused while open; the server waits on backed-up links.
import { type FrameLimits, type FrameMeta, NO_JOB, NO_SEGMENT } from '../../../shared/frame.ts';
import type { Tensor } from '../../../shared/tensor.ts';
import type { PeerHello } from '../wire/protocol.ts';
import { connectFrames, type FrameSocket } from '../wire/transport.ts';

export interface PeerLinksOptions {
  /** this stage's index */
  index: number;
  /** addresses of all stages by index, read at connect time (the driver's hello may set them late) */
  peers: () => string[] | undefined;
  limits?: FrameLimits;
}

export class PeerLinks {
  private readonly opts: PeerLinksOptions;
  private readonly pending = new Map<number, Promise<FrameSocket>>();
  /** connected links, for sends without a promise hop (keeps frames in order) */
  private readonly ready = new Map<number, FrameSocket>();

  constructor(opts: PeerLinksOptions) {
    this.opts = opts;
  }

  /** send a tensor frame to another stage; `fail` gets a connect or write error */
  send(stage: number, m: FrameMeta, t: Tensor, f16: boolean, fail: (e: unknown) => void): void {
    const cached = this.ready.get(stage);
    if (cached && !cached.isClosed) {
      cached.send(m, t, f16).catch(fail);
      return;
    }
    void this.connect(stage).then((c) => {
      this.ready.set(stage, c);
      c.send(m, t, f16).catch(fail);
    }, fail);
  }

  /** resolves once no open link is backed up (bounded in-flight work) */
  async drain(): Promise<void> {
    for (const c of this.ready.values()) if (c.backedUp) await c.writable();
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
      onFrame: () => {},
      onClose: (_e, c) => {
        if (this.pending.get(stage) === p) this.pending.delete(stage);
        if (this.ready.get(stage) === c) this.ready.delete(stage);
      },
    }).then(async (c) => {
      const hello: PeerHello = { role: 'peer', stage: index };
      const meta: FrameMeta = { kind: 'hello', jobId: NO_JOB, origin: 0, step: 0, microBatch: 0, segment: NO_SEGMENT, role: 'none', roleIndex: 0 };
      await c.sendText(meta, JSON.stringify(hello));
      return c;
    });
    p.catch(() => this.pending.delete(stage));
    this.pending.set(stage, p);
    return p;
  }
}
