// The JavaScript heap of the app's isolate under `wrangler dev`, read over the DevTools protocol through wrangler's
// inspector proxy (--inspector-port). Process RSS cannot tell an app leak from the runtime's allocator caches; the
// isolate's heap can: workerd's own memory is not in it.

export interface LiveHeap { totalBytes: number; codeBytes: number }

export interface IsolateInspector {
  /**
   * Exact live JS heap from a heap snapshot (V8 runs a full GC for it; pauses the isolate ~1 s): all of it, and the part
   * that is V8's compiled code and type feedback (which keeps growing for a while as the JIT optimizes hot paths).
   */
  liveHeap(): Promise<LiveHeap>;
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
  let snapshot: { chunks: string[]; finished: boolean; lastChunk: number } | undefined;
  let nextId = 1;
  let closed: Error | undefined;
  ws.addEventListener('message', (m) => {
    const msg = JSON.parse(String(m.data)) as { id?: number; method?: string; params?: { chunk?: string; finished?: boolean }; result?: unknown; error?: { message: string } };
    if (snapshot && msg.method === 'HeapProfiler.addHeapSnapshotChunk') {
      snapshot.chunks.push(msg.params!.chunk!);
      snapshot.lastChunk = Date.now();
    }
    if (snapshot && msg.method === 'HeapProfiler.reportHeapSnapshotProgress' && msg.params!.finished) snapshot.finished = true;
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
    async liveHeap() {
      // streamed as chunk events; the command's own reply does not reliably come back through wrangler's proxy, so
      // the snapshot is complete once V8 reported it finished and the chunks stopped
      snapshot = { chunks: [], finished: false, lastChunk: Date.now() };
      ws.send(JSON.stringify({ id: nextId++, method: 'HeapProfiler.enable' }));
      ws.send(JSON.stringify({ id: nextId++, method: 'HeapProfiler.takeHeapSnapshot', params: { reportProgress: true } }));
      const s = snapshot;
      // (on a loaded machine the chunks can pause longer than that: a snapshot that does not parse yet is waited for)
      type Snapshot = { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[] };
      let snap: Snapshot | undefined;
      for (const deadline = Date.now() + 120_000; !snap;) {
        if (closed) throw closed;
        if (Date.now() > deadline) throw new Error('inspector: heap snapshot not complete after 120 s');
        await new Promise((r) => setTimeout(r, 100));
        if (s.finished && s.chunks.length > 0 && Date.now() - s.lastChunk > 500) {
          try {
            snap = JSON.parse(s.chunks.join('')) as Snapshot;
          } catch {
            s.lastChunk = Date.now();
          }
        }
      }
      snapshot = undefined;
      const { node_fields: fields, node_types: [types] } = snap.snapshot.meta;
      const [size, type, code] = [fields.indexOf('self_size'), fields.indexOf('type'), types.indexOf('code')];
      const out = { totalBytes: 0, codeBytes: 0 };
      for (let i = 0; i < snap.nodes.length; i += fields.length) {
        out.totalBytes += snap.nodes[i + size];
        if (snap.nodes[i + type] === code) out.codeBytes += snap.nodes[i + size];
      }
      return out;
    },
    close: () => ws.close(),
  };
}
