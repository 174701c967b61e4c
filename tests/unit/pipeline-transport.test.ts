// FrameSocket over a real loopback TCP connection: ordering, integrity, backpressure with a slow reader.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NO_SEGMENT, type Frame, type FrameMeta } from '../../shared/frame.ts';
import { connectFrames, FrameSocket, parseAddress } from '../../gpu-backend/pipeline/wire/transport.ts';

const meta = (step: number): FrameMeta => ({
  kind: 'data', jobId: 'ab'.repeat(16), origin: 1, step, microBatch: 0, segment: NO_SEGMENT, role: 'stream', roleIndex: 0,
});

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup) f();
  cleanup = [];
});

async function server(onFrame: (f: Frame, s: FrameSocket) => void, onSocket?: (s: net.Socket) => void): Promise<string> {
  const srv = net.createServer((s) => {
    onSocket?.(s);
    new FrameSocket(s, { name: 'test server', onFrame });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => srv.close());
  return `127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
}

describe('frame transport', () => {
  it('delivers large frames intact and in order while the reader is slow (backpressure)', async () => {
    const got: Frame[] = [];
    let sock!: net.Socket;
    const addr = await server((f) => got.push(f), (s) => {
      sock = s;
      s.pause(); // a reader that does not read yet: the sender must queue, not lose or reorder
    });
    const c = await connectFrames(addr, { onFrame: () => {}, maxQueuedBytes: 4 * 2 ** 20 });
    cleanup.push(() => c.destroy());
    const N = 12;
    const n = 2 ** 20; // 4 MiB per frame
    const sends: Promise<void>[] = [];
    for (let i = 0; i < N; i++) {
      const data = new Float32Array(n);
      for (let k = 0; k < n; k += 997) data[k] = i + k;
      sends.push(c.send(meta(i), { dtype: 'float32', dims: [n], data }));
    }
    await new Promise((r) => setTimeout(r, 100));
    // 48 MiB cannot all sit in the kernel's buffers: the rest waits in our queue and writers are held back
    expect(c.pendingBytes).toBeGreaterThan(4 * 2 ** 20);
    let resolved = false;
    const w = c.writable().then(() => (resolved = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(resolved).toBe(false);
    sock.resume();
    await w;
    await Promise.all(sends);
    while (got.length < N) await new Promise((r) => setTimeout(r, 10));
    expect(got.map((f) => f.header.step)).toEqual(Array.from({ length: N }, (_, i) => i));
    for (const f of got) {
      const d = f.tensor.data as Float32Array;
      expect(d.length).toBe(n);
      expect(d[997 * 5]).toBe(f.header.step + 997 * 5);
    }
  });

  it('rejects sends after the peer closes and reports why', async () => {
    const addr = await server(() => {}, (s) => s.destroy());
    const closed = new Promise<Error | undefined>((r) => {
      void connectFrames(addr, { name: 'to test', onFrame: () => {}, onClose: (e) => r(e) }).then((c) => cleanup.push(() => c.destroy()));
    });
    expect((await closed)?.message).toMatch(/^to test: /);
  });

  it('fails to connect with the address in the message', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const { port } = srv.address() as net.AddressInfo;
    await new Promise((r) => srv.close(r));
    await expect(connectFrames(`127.0.0.1:${port}`, { onFrame: () => {}, timeoutMs: 200 })).rejects.toThrow(
      new RegExp(`cannot connect to 127\\.0\\.0\\.1:${port}`),
    );
    expect(() => parseAddress('nohost')).toThrow(/expected HOST:PORT/);
  });
});
