// The JavaScript heap of the app's isolate under `wrangler dev`, read over the DevTools protocol through wrangler's
// inspector proxy (--inspector-port). Process RSS cannot tell an app leak from the runtime's allocator caches; the
// isolate's heap can: workerd's own memory is not in it.

export interface HeapUsage { usedBytes: number; totalBytes: number }

export interface IsolateInspector {
  heapUsage(): Promise<HeapUsage>;
  close(): void;
}

/**
 * Connects to the isolate behind wrangler's inspector proxy on `port`. The proxy only accepts DevTools-like clients:
 * a `localhost` Host and Origin (it answers 400/401 otherwise).
 */
export async function connectIsolate(port: number, timeoutMs = 10_000): Promise<IsolateInspector> {
  // Node's WebSocket (undici) takes headers as a non-standard init field
  const ws = new WebSocket(`ws://localhost:${port}/ws`, { headers: { Origin: 'http://localhost' } } as unknown as string[]);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let closed: Error | undefined;
  ws.addEventListener('message', (m) => {
    const msg = JSON.parse(String(m.data)) as { id?: number; result?: unknown; error?: { message: string } };
    const p = msg.id === undefined ? undefined : pending.get(msg.id);
    if (!p) return; // events (console, contexts) and the proxy's own calls
    pending.delete(msg.id!);
    if (msg.error) p.reject(new Error(`inspector: ${msg.error.message}`));
    else p.resolve(msg.result);
  });
  ws.addEventListener('close', () => {
    closed = new Error('inspector connection closed');
    for (const p of pending.values()) p.reject(closed);
    pending.clear();
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`inspector on port ${port}: no connection within ${timeoutMs} ms`)), timeoutMs);
    ws.addEventListener('open', () => { clearTimeout(t); resolve(); });
    ws.addEventListener('error', () => { clearTimeout(t); reject(new Error(`inspector on port ${port}: connection refused (a DevTools window already attached?)`)); });
  });
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve, reject) => {
      if (closed) return reject(closed);
      const id = nextId++;
      const t = setTimeout(() => { pending.delete(id); reject(new Error(`inspector: ${method} unanswered after ${timeoutMs} ms`)); }, timeoutMs);
      pending.set(id, { resolve: (v) => { clearTimeout(t); resolve(v); }, reject: (e) => { clearTimeout(t); reject(e); } });
      ws.send(JSON.stringify({ id, method, params }));
    });
  // the proxy attaches to the runtime after the client's upgrade; the first call must wait until it answers
  for (const deadline = Date.now() + timeoutMs; ;) {
    try {
      await Promise.race([call('Runtime.getHeapUsage'), new Promise((_, rej) => setTimeout(() => rej(new Error('retry')), 500))]);
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`inspector on port ${port}: the isolate does not answer (${(e as Error).message})`);
    }
  }
  return {
    async heapUsage() {
      const r = (await call('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number };
      return { usedBytes: r.usedSize, totalBytes: r.totalSize };
    },
    close: () => ws.close(),
  };
}
