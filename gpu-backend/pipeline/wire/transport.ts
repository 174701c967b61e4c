// Frame transport over TCP (node:net): reassembly of frames from partial reads, backpressure on writes, errors
// surfaced to the owner. One FrameSocket per TCP connection; the frame format is shared/frame.ts.
import net from 'node:net';
import { crc32 as zlibCrc32 } from 'node:zlib';
import type { Crc32Fn } from '../../../shared/crc32.ts';
import {
  type EncodedFrame,
  type Frame,
  FrameError,
  type FrameHeader,
  type FrameLimits,
  type FrameMeta,
  encodeFrame,
  textFrame,
} from '../../../shared/frame.ts';
import { FrameDecoder } from '../../../shared/frameDecoder.ts';
import type { Tensor } from '../../../shared/tensor.ts';
import { AUTH_META, type AuthRole, answerChallenge, authTensor, checkAccept, type GroupSecret } from './auth.ts';

/** zlib's native CRC-32 (same values as shared/crc32.ts, several times faster) */
export const nativeCrc32: Crc32Fn = (data, init) => (data.length ? zlibCrc32(data, init) : init); // zlib returns 0 for some empty views

export interface FrameSocketOptions {
  /** name used in error messages, e.g. "stage 1 at 127.0.0.1:4001" */
  name: string;
  limits?: FrameLimits;
  /** bytes queued (not yet handed to the kernel) above which `writable()` waits (default 64 MiB) */
  maxQueuedBytes?: number;
  onFrame: (frame: Frame, conn: FrameSocket) => void;
  /** a frame's header, before its payload is read: false skips the payload unbuffered (shared/frameDecoder.ts) */
  admit?: (header: FrameHeader, conn: FrameSocket) => boolean;
  /** a frame that failed to decode; the connection is closed right after (the stream cannot be resynchronised) */
  onFrameError?: (err: FrameError, conn: FrameSocket) => void;
  /** called once when the connection ends; `err` is set when it ended abnormally */
  onClose?: (err: Error | undefined, conn: FrameSocket) => void;
}

interface Pending {
  frame: EncodedFrame;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class FrameSocket {
  readonly socket: net.Socket;
  readonly name: string;
  private readonly opts: FrameSocketOptions;
  private readonly maxQueuedBytes: number;
  private readonly decoder: FrameDecoder;
  private readonly queue: Pending[] = [];
  private queuedBytes = 0;
  private waitingDrain = false;
  private writableWaiters: (() => void)[] = [];
  private closedErr: Error | null = null;
  private closed = false;
  private ending = false;
  private poisoned = false;
  /** when bytes last arrived (Date.now()) */
  private receivedAt = Date.now();
  /** the socket is corked until the end of this tick (pump) */
  private corked = false;
  /** since when the kernel buffer has been full with frames still queued (0: not waiting) */
  private drainWaitSince = 0;

  constructor(socket: net.Socket, opts: FrameSocketOptions) {
    this.socket = socket;
    this.name = opts.name;
    this.opts = opts;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? 64 * 2 ** 20;
    const admit = opts.admit;
    this.decoder = new FrameDecoder({ ...opts.limits, crc: nativeCrc32, admit: admit && ((h) => admit(h, this)) });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      this.waitingDrain = false;
      this.drainWaitSince = 0;
      this.pump();
    });
    socket.on('error', (e) => this.finish(new Error(`${this.name}: ${e.message}`)));
    socket.on('close', () => this.finish(this.closedErr ?? new Error(`${this.name}: connection closed`)));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** bytes accepted by send() and not yet handed to the socket */
  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /** what the frame being received will hold once complete (admitted, payload still arriving) */
  get incomingBytes(): number {
    return this.decoder.pendingPayloadBytes;
  }

  /** ms since the last bytes arrived */
  idleFor(now = Date.now()): number {
    return now - this.receivedAt;
  }

  /** what makes this peer slow, if anything: half a frame received, or our output not drained, for longer than ms */
  stalled(ms: number, now = Date.now()): string | undefined {
    if (this.decoder.midFrame && now - this.receivedAt > ms) return `sent part of a frame and nothing more for ${now - this.receivedAt} ms`;
    if (this.drainWaitSince && now - this.drainWaitSince > ms) return `has not read what it was sent for ${now - this.drainWaitSince} ms`;
    return undefined;
  }

  private onData(chunk: Buffer): void {
    if (this.closed || this.poisoned) return;
    this.receivedAt = Date.now();
    // frames before a torn one are delivered first (a hello and a torn frame may share one read)
    const { frames, error } = this.decoder.feed(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
    for (const f of frames) {
      if (this.closed) return;
      this.opts.onFrame(f, this);
    }
    if (error && !this.closed) {
      // stop reading (the stream cannot be resynchronised), let the owner answer (e.g. an error frame to the
      // job's driver), flush that, then close; destroy if the peer does not let us finish
      this.poisoned = true;
      this.closedErr = new Error(`${this.name}: ${error.message}`);
      this.socket.pause();
      this.opts.onFrameError?.(error, this);
      this.end();
      setTimeout(() => this.destroy(), 2000).unref();
    }
  }

  /** queue a frame; resolves once it is handed to the socket, rejects if the connection dies first */
  sendEncoded(frame: EncodedFrame): Promise<void> {
    if (this.closed) return Promise.reject(this.closedErr ?? new Error(`${this.name}: connection closed`));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      this.queuedBytes += frame.header.length + frame.payload.length;
      this.pump();
    });
  }

  send(meta: FrameMeta, tensor: Tensor, f16 = false): Promise<void> {
    return this.sendEncoded(encodeFrame(meta, tensor, { f16, crc: nativeCrc32 }));
  }

  sendText(meta: FrameMeta, text: string): Promise<void> {
    return this.sendEncoded(textFrame(meta, text, { crc: nativeCrc32 }));
  }

  /** more than maxQueuedBytes wait to be written */
  get backedUp(): boolean {
    return !this.closed && this.queuedBytes >= this.maxQueuedBytes;
  }

  /** resolves when fewer than maxQueuedBytes wait to be written (bounded in-flight queue) */
  writable(): Promise<void> {
    if (this.closed || this.queuedBytes < this.maxQueuedBytes) return Promise.resolve();
    return new Promise((r) => this.writableWaiters.push(r));
  }

  // Writes queued frames until the socket asks us to wait for 'drain'. Frames queued in the same tick (a header and
  // its payload, a forward's three inputs, a unit's h_out and skips) leave corked, as one writev: each separate
  // write was a syscall here and a wake-up of the reader.
  private pump(): void {
    if (!this.corked && this.queue.length && !this.closed) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    while (!this.waitingDrain && this.queue.length && !this.closed) {
      const p = this.queue.shift()!;
      const n = p.frame.header.length + p.frame.payload.length;
      this.queuedBytes -= n;
      this.socket.write(p.frame.header);
      const ok = this.socket.write(p.frame.payload);
      p.resolve();
      if (!ok) {
        this.waitingDrain = true;
        this.drainWaitSince = Date.now();
      }
    }
    if (this.ending && !this.queue.length && !this.closed) this.socket.end();
    if (this.queuedBytes < this.maxQueuedBytes && this.writableWaiters.length) {
      const w = this.writableWaiters;
      this.writableWaiters = [];
      for (const f of w) f();
    }
  }

  /** close after flushing what is queued */
  end(): void {
    if (this.closed) return;
    this.ending = true;
    if (!this.queue.length) this.socket.end();
  }

  destroy(err?: Error): void {
    if (err && !this.closedErr) this.closedErr = err;
    this.socket.destroy();
    this.finish(this.closedErr ?? new Error(`${this.name}: connection closed`));
  }

  private finish(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closedErr = err;
    for (const p of this.queue.splice(0)) p.reject(err);
    this.queuedBytes = 0;
    for (const w of this.writableWaiters.splice(0)) w();
    this.opts.onClose?.(err, this);
  }
}

export function parseAddress(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const port = Number(addr.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`bad address "${addr}": expected HOST:PORT`);
  }
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

/** who a client proves to be when it connects to a stage (wire/auth.ts) */
export interface ClientAuth {
  secret: GroupSecret;
  role: AuthRole;
  /** the index of the stage at the address */
  stage: number;
  /** driver: its origin; peer: its own stage index */
  id: number;
}

/**
 * Connect, retrying refused connections until `timeoutMs` (a stage may still be starting). With `auth`, resolves only
 * after the handshake: both sides proved the group secret; frames reach `onFrame` from then on.
 */
export async function connectFrames(
  address: string,
  opts: Omit<FrameSocketOptions, 'name'> & { name?: string; timeoutMs?: number; auth?: ClientAuth },
): Promise<FrameSocket> {
  const { host, port } = parseAddress(address);
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  const name = opts.name ?? address;
  for (let attempt = 0; ; attempt++) {
    let socket: net.Socket;
    try {
      socket = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host, port });
        s.once('connect', () => {
          s.removeListener('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      });
    } catch (e) {
      if (Date.now() >= deadline) throw new Error(`${name}: cannot connect to ${address}: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 250)));
      continue;
    }
    if (!opts.auth) return new FrameSocket(socket, { ...opts, name });
    return handshake(socket, { ...opts, name }, opts.auth, Math.max(deadline - Date.now(), 5000));
  }
}

/** the client side of wire/auth.ts: answer the challenge, check the stage's accept, then hand frames to the owner */
function handshake(socket: net.Socket, opts: FrameSocketOptions, auth: ClientAuth, ms: number): Promise<FrameSocket> {
  return new Promise<FrameSocket>((resolve, reject) => {
    let open = false;
    let expectAccept: Uint8Array | undefined;
    const fail = (msg: string) => {
      clearTimeout(timer);
      const err = new Error(`${opts.name}: handshake failed: ${msg}`);
      reject(err);
      conn.destroy(err);
    };
    const timer = setTimeout(() => fail(`no answer within ${ms} ms`), ms);
    const conn = new FrameSocket(socket, {
      ...opts,
      onFrame: (f, c) => {
        if (open) return opts.onFrame(f, c);
        try {
          if (f.header.kind !== 'auth') throw new Error(`expected an auth frame, got a ${f.header.kind} frame`);
          const bytes = f.tensor.data as Uint8Array;
          if (!expectAccept) {
            const a = answerChallenge(auth.secret, bytes, auth);
            expectAccept = a.expectAccept;
            c.send(AUTH_META, authTensor(a.proof)).catch(() => {});
          } else {
            checkAccept(expectAccept, bytes);
            open = true;
            clearTimeout(timer);
            resolve(c);
          }
        } catch (e) {
          fail((e as Error).message);
        }
      },
      onFrameError: (e, c) => (open ? opts.onFrameError?.(e, c) : fail(e.message)),
      onClose: (e, c) => {
        if (open) return opts.onClose?.(e, c);
        fail('the stage closed the connection (not this group\'s secret, or not the stage index it expected)');
      },
    });
  });
}
