// Server-sent-event subscribers of one JobStore, pushed on every change of a job (no polling).
import type { Video } from '../../shared/api/videos.ts';
import { absolutize, TERMINAL } from './videoRow.ts';

interface Sub {
  writer: WritableStreamDefaultWriter<Uint8Array>;
  origin: string;
}

const enc = new TextEncoder();
export const SSE_KEEPALIVE_MS = 15_000;

export function eventName(v: Video): string {
  return `video.${v.status}`;
}

export function sseFrame(v: Video, origin: string, seq: number): string {
  return `id: ${seq}\nevent: ${eventName(v)}\ndata: ${JSON.stringify(absolutize(v, origin))}\n\n`;
}

export class SseHub {
  private subs = new Map<string, Set<Sub>>();
  private seq = 0;

  /** Opens a stream that starts with the current state; closes itself after a terminal state. */
  open(current: Video, origin: string): ReadableStream<Uint8Array> {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    const sub: Sub = { writer, origin };
    void writer.write(enc.encode(`retry: 2000\n\n${sseFrame(current, origin, ++this.seq)}`)).catch(() => this.drop(current.id, sub));
    if (TERMINAL.has(current.status)) {
      void writer.close().catch(() => {});
      return readable;
    }
    let set = this.subs.get(current.id);
    if (!set) this.subs.set(current.id, (set = new Set()));
    set.add(sub);
    const ping = setInterval(() => {
      writer.write(enc.encode(': keep-alive\n\n')).catch(() => {
        clearInterval(ping);
        this.drop(current.id, sub);
      });
    }, SSE_KEEPALIVE_MS);
    // A client that goes away cancels the readable, which errors the writable: drop the subscriber then, not at the
    // job's next update (a job that stays queued would otherwise keep every disconnected stream in `subs`).
    const stop = () => {
      clearInterval(ping);
      this.drop(current.id, sub);
    };
    writer.closed.then(stop, stop);
    return readable;
  }

  has(jobId: string): boolean {
    return this.subs.has(jobId);
  }

  /** Open subscriber streams over all jobs (for leak checks). */
  size(): number {
    let n = 0;
    for (const set of this.subs.values()) n += set.size;
    return n;
  }

  publish(v: Video): void {
    const set = this.subs.get(v.id);
    if (!set) return;
    const seq = ++this.seq;
    const end = TERMINAL.has(v.status);
    for (const sub of set) {
      sub.writer.write(enc.encode(sseFrame(v, sub.origin, seq))).catch(() => this.drop(v.id, sub));
      if (end) void sub.writer.close().catch(() => {});
    }
    if (end) this.subs.delete(v.id);
  }

  /** A deleted job: end its streams. */
  end(jobId: string): void {
    for (const sub of this.subs.get(jobId) ?? []) void sub.writer.close().catch(() => {});
    this.subs.delete(jobId);
  }

  private drop(jobId: string, sub: Sub): void {
    this.subs.get(jobId)?.delete(sub);
    if (this.subs.get(jobId)?.size === 0) this.subs.delete(jobId);
  }
}
