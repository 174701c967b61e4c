// Starts `wrangler dev` for the edge on a free loopback port with its own state dir, waits for /healthz, and stops
// it (whole process group). Used by bench:edge; reusable by the local stack and the end-to-end tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EdgeOptions {
  port?: number; // default: a free port
  persistTo?: string; // default: a fresh dir under /tmp
  vars?: Record<string, string>; // ADMIN_TOKEN, BACKEND_SECRET, CDN_SECRET, LEASE_TTL_MS, …
  cwd?: string; // repo root (default process.cwd())
  config?: string; // another worker's wrangler.toml (default: the repo's, i.e. this edge)
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface EdgeHandle {
  url: string;
  port: number;
  persistTo: string;
  /** wrangler's inspector proxy (DevTools protocol of the app's isolate) */
  inspectorPort: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export async function startEdge(o: EdgeOptions = {}): Promise<EdgeHandle> {
  const port = o.port ?? (await freePort());
  const inspector = await freePort();
  const persistTo = o.persistTo ?? mkdtempSync(join(tmpdir(), 'uvit-edge-'));
  const cwd = o.cwd ?? process.cwd();
  const args = [join(cwd, 'node_modules/wrangler/bin/wrangler.js'), 'dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector),
    '--persist-to', persistTo, '--show-interactive-dev-session=false', '--log-level', 'warn'];
  if (o.config) args.push('--config', o.config);
  for (const [k, v] of Object.entries(o.vars ?? {})) args.push('--var', `${k}:${v}`);
  const child = spawn(process.execPath, args, {
    cwd,
    detached: true, // own process group, so stop() also ends workerd
    stdio: ['ignore', 'pipe', 'pipe'],
    // no debug log file: it would land in ~/.config and record DevTools traffic (bench:soak's heap snapshots); no
    // local data explorer on the port (docs/security.md)
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', CI: '1', NO_UPDATE_NOTIFIER: '1', WRANGLER_WRITE_LOGS: 'false',
      X_LOCAL_EXPLORER: 'false', X_LOCAL_OBSERVABILITY: 'false' },
  });
  let output = '';
  const onData = (b: Buffer) => {
    output = (output + b.toString()).slice(-8000);
    for (const line of b.toString().split('\n')) if (line.trim()) o.log?.(line);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      try { process.kill(-child.pid!, 'SIGTERM'); } catch { resolve(); }
      setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000).unref();
    });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (o.timeoutMs ?? 90_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode} before becoming healthy:\n${output}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev on port ${port} not healthy after ${o.timeoutMs ?? 90_000} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, port, persistTo, inspectorPort: inspector, child, stop };
}
