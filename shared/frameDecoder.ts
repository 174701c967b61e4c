// The receiving side of a byte stream of frames (format and single-frame decoding: shared/frame.ts).
import { type DecodeOptions, type Frame, FrameError, type FrameHeader, HEADER_BYTES, decodeBody, decodeHeader } from './frame.ts';

export interface StreamDecodeOptions extends DecodeOptions {
  /**
   * Called once a header has parsed, before any of its payload is kept: false skips the payload as it arrives, never
   * buffering it (the stream stays in step). Lets a receiver refuse a frame by its header before allocating for it.
   */
  admit?: (header: FrameHeader) => boolean;
}

/**
 * Reassembles frames from a byte stream cut at arbitrary points. push() returns the complete frames; a framing error
 * throws, and the decoder is then poisoned (a torn stream cannot be resynchronised).
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private header: FrameHeader | null = null;
  private headerBytes: Uint8Array | null = null;
  /** payload bytes of a refused frame still to skip */
  private skipping = 0;
  private failed: FrameError | null = null;
  private readonly opts: StreamDecodeOptions;

  constructor(opts: StreamDecodeOptions = {}) {
    this.opts = opts;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  /** part of a frame has arrived and the rest has not */
  get midFrame(): boolean {
    return this.buffered > 0 || this.header !== null || this.skipping > 0;
  }

  /** payload size of the admitted frame being reassembled (what it will hold once complete), 0 between frames */
  get pendingPayloadBytes(): number {
    return this.header?.payloadBytes ?? 0;
  }

  /** like push(), but frames decoded before a framing error are returned along with the error */
  feed(chunk: Uint8Array): { frames: Frame[]; error: FrameError | null } {
    const frames: Frame[] = [];
    try {
      this.pushInto(chunk, frames);
      return { frames, error: null };
    } catch (e) {
      return { frames, error: e as FrameError };
    }
  }

  push(chunk: Uint8Array): Frame[] {
    const out: Frame[] = [];
    this.pushInto(chunk, out);
    return out;
  }

  private pushInto(chunk: Uint8Array, out: Frame[]): void {
    if (this.failed) throw this.failed;
    if (chunk.length) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    try {
      for (;;) {
        if (this.skipping) {
          const n = Math.min(this.skipping, this.buffered);
          this.take(n, false);
          this.skipping -= n;
          if (this.skipping) break;
        }
        if (!this.header) {
          if (this.buffered < HEADER_BYTES) break;
          const headerBytes = this.take(HEADER_BYTES);
          const h = decodeHeader(headerBytes, this.opts);
          if (this.opts.admit && !this.opts.admit(h)) {
            this.skipping = h.payloadBytes;
            continue;
          }
          this.headerBytes = headerBytes;
          this.header = h;
        }
        if (this.buffered < this.header.payloadBytes) break;
        const payload = this.take(this.header.payloadBytes);
        const h = this.header;
        this.header = null;
        out.push(decodeBody(h, this.headerBytes!, payload, this.opts));
      }
    } catch (e) {
      this.failed = e instanceof FrameError ? e : new FrameError('bad_header', String(e));
      throw this.failed;
    }
  }

  /** remove n bytes from the front (a view when they sit in one chunk, else a copy; nothing when !keep) */
  private take(n: number, keep = true): Uint8Array {
    this.buffered -= n;
    const first = this.chunks[0];
    if (n === 0) return new Uint8Array(0);
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(keep ? n : 0);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - off);
      if (keep) out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}
