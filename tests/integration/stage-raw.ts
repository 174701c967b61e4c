// A raw TCP connection to a real stage process, for tests that play a driver, a peer or an attacker: it runs the
// handshake (gpu-backend/pipeline/wire/auth.ts) when given the group secret, then writes whatever frames or bytes a
// test chooses and records every frame the stage sends back, and when the stage closed the connection.
import net from 'node:net';
import { type Frame, type FrameMeta, NO_JOB, NO_SEGMENT, encodeFrameBytes, textFrame } from '../../shared/frame.ts';
import { FrameDecoder } from '../../shared/frameDecoder.ts';
import type { Tensor } from '../../shared/tensor.ts';
import { AUTH_META, type AuthRole, type GroupSecret, answerChallenge, authTensor, checkAccept } from '../../gpu-backend/pipeline/wire/auth.ts';
import { parseAddress } from '../../gpu-backend/pipeline/wire/transport.ts';

export const controlMeta = (kind: FrameMeta['kind'], origin: number, jobId = NO_JOB): FrameMeta => ({
  kind, jobId, origin, step: 0, microBatch: 0, segment: NO_SEGMENT, role: 'none', roleIndex: 0,
});

export class RawStageClient {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  /** bytes the stage sent, decodable or not */
  received = 0;
  closedByStage = false;
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder();
  private waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.received += d.length;
      try {
        this.frames.push(...this.decoder.push(new Uint8Array(d)));
      } catch {
        /* the test reads `received` */
      }
      this.wake();
    });
    this.closed = new Promise((r) => socket.once('close', () => {
      this.closedByStage = true;
      this.wake();
      r();
    }));
    socket.on('error', () => {});
  }

  /** connect; with `auth`, complete the handshake as that role before resolving */
  static async open(address: string, auth?: { secret: GroupSecret; role: AuthRole; stage: number; id: number }): Promise<RawStageClient> {
    const { host, port } = parseAddress(address);
    const socket = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const c = new RawStageClient(socket);
    if (!auth) return c;
    const challenge = await c.next((f) => f.header.kind === 'auth');
    const { proof, expectAccept } = answerChallenge(auth.secret, challenge.tensor.data as Uint8Array, auth);
    c.send(AUTH_META, authTensor(proof));
    const accept = await c.next((f) => f.header.kind === 'auth' && f !== challenge);
    checkAccept(expectAccept, accept.tensor.data as Uint8Array);
    return c;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  send(meta: FrameMeta, t: Tensor): void {
    this.write(encodeFrameBytes(meta, t));
  }

  sendText(meta: FrameMeta, text: string): void {
    const f = textFrame(meta, text);
    this.write(f.header);
    this.write(f.payload);
  }

  /** the first frame (from the start of the connection) that matches, waiting up to `ms` */
  async next(pred: (f: Frame) => boolean, ms = 10_000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (this.closedByStage) throw new Error(`the stage closed the connection; frames received: ${this.frames.map((x) => x.header.kind).join(', ') || 'none'}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${ms} ms; frames received: ${this.frames.map((x) => x.header.kind).join(', ') || 'none'}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** resolves true when the stage closes the connection within `ms` */
  async closesWithin(ms: number): Promise<boolean> {
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, ms))]);
    return this.closedByStage;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
