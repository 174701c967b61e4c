// Child processes of the local stack: each in its own process group (so a stop takes its children too: wrangler's
// workerd, a driver's ffmpeg), output appended to a log file and kept as a tail for error messages, stopped with
// SIGTERM then SIGKILL. Logs are the user's alone (0600 in a 0700 dir: they hold CDN URLs and lease ids), and every
// child runs under umask 077, so what it writes (SQLite, R2 blobs, work files) is too. Also port checks and polling.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, createWriteStream, mkdirSync, openSync, readFileSync, readdirSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';

export type ProcSpec = {
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  logFile: string;
  /** Echo output lines to this stream with a `[name]` prefix (npm start); tests keep it quiet. */
  echo?: NodeJS.WritableStream;
};

export class Proc {
  readonly spec: ProcSpec;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private tailLines: string[] = [];
  private listeners = new Set<(line: string) => void>();
  private log: WriteStream;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  stopping = false;

  constructor(spec: ProcSpec) {
    this.spec = spec;
    mkdirSync(dirname(spec.logFile), { recursive: true, mode: 0o700 });
    chmodSync(dirname(spec.logFile), 0o700); // made wider by an older version
    closeSync(openSync(spec.logFile, 'a', 0o600));
    chmodSync(spec.logFile, 0o600);
    this.log = createWriteStream(spec.logFile, { flags: 'a' });
    this.log.write(`\n--- ${new Date().toISOString()} ${spec.command} ${spec.args.join(' ')}\n`);
    // exec keeps the pid, so the child is still its group's leader
    this.child = spawn('/bin/sh', ['-c', 'umask 077 && exec "$0" "$@"', spec.command, ...spec.args], {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group: kill(-pid) reaches grandchildren
    });
    for (const s of [this.child.stdout!, this.child.stderr!]) {
      let partial = '';
      s.setEncoding('utf8');
      s.on('data', (chunk: string) => {
        this.log.write(chunk);
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) this.line(line);
      });
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        this.log.end(`--- exited code=${code} signal=${signal}\n`);
        resolve(this.exitInfo);
      });
      this.child.once('error', (e) => {
        this.line(`spawn error: ${e.message}`);
        this.exitInfo = { code: -1, signal: null };
        resolve(this.exitInfo);
      });
    });
  }

  get pid(): number | undefined { return this.child.pid; }
  get alive(): boolean { return this.exitInfo === undefined; }

  private line(line: string): void {
    this.tailLines.push(line);
    if (this.tailLines.length > 60) this.tailLines.shift();
    this.spec.echo?.write(`[${this.spec.name}] ${line}\n`);
    for (const l of this.listeners) l(line);
  }

  tail(n = 20): string {
    return this.tailLines.slice(-n).join('\n');
  }

  /** Resolves with the first output line matching `re` (already seen lines count); rejects on exit or timeout. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    for (const l of this.tailLines) { const m = l.match(re); if (m) return Promise.resolve(m); }
    return new Promise((resolve, reject) => {
      const done = (f: () => void) => { clearTimeout(t); this.listeners.delete(on); f(); };
      const on = (l: string) => { const m = l.match(re); if (m) done(() => resolve(m)); };
      const t = setTimeout(() => done(() => reject(new Error(`${this.spec.name}: no line matching ${re} within ${timeoutMs} ms; last output:\n${this.tail()}`))), timeoutMs);
      this.listeners.add(on);
      void this.exited.then((x) => done(() => reject(new Error(`${this.spec.name} exited (code ${x.code}, signal ${x.signal}) before ${re}; last output:\n${this.tail()}`))));
    });
  }

  /** Signal the whole process group. */
  signal(sig: NodeJS.Signals): void {
    if (!this.alive || this.pid === undefined) return;
    try { process.kill(-this.pid, sig); } catch { try { this.child.kill(sig); } catch { /* gone */ } }
  }

  /**
   * SIGTERM the leader first (wrangler then shuts its workerd down and reaps it), the rest of the group once the
   * leader is gone or after graceMs, SIGKILL after that. Resolves when the leader has exited.
   */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    if (this.alive && this.pid !== undefined) {
      try { process.kill(this.pid, 'SIGTERM'); } catch { /* gone */ }
      const t = setTimeout(() => this.signal('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    if (this.pid === undefined) return;
    // leftovers of the group (leader gone, children not)
    const pgid = this.pid;
    const term = () => { try { process.kill(-pgid, 'SIGTERM'); } catch { /* none */ } };
    term();
    for (let i = 0; i < 20 && groupAlive(pgid); i++) await new Promise((r) => setTimeout(r, 100));
    try { process.kill(-pgid, 'SIGKILL'); } catch { /* none */ }
  }
}

/**
 * Is a live (non-zombie) process left in process group `pgid`? On Linux from /proc, so orphans that exited but that
 * no init reaps (containers without one) do not count; elsewhere kill(-pgid, 0).
 */
export function groupAlive(pgid: number): boolean {
  if (process.platform === 'linux') {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      let stat: string;
      try { stat = readFileSync(`/proc/${d}/stat`, 'utf8'); } catch { continue; }
      // pid (comm) state ppid pgrp ...; comm may contain spaces or parentheses: parse after the last ')'
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z' && f[0] !== 'X') return true;
    }
    return false;
  }
  try { process.kill(-pgid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

export async function assertPortFree(host: string, port: number, what: string, hint: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => {
      reject(new Error(e.code === 'EADDRINUSE'
        ? `port ${port} on ${host} (${what}) is already in use by another process; stop it or choose another port (${hint})`
        : `cannot listen on ${host}:${port} for ${what}: ${e.message}`));
    });
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve()));
  });
}

/** A port the OS says is free right now (tests; a small race is accepted). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ host, port: 0 }, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** `n` consecutive free ports (stage k listens on base + k). */
export async function freePortRange(n: number, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    try {
      for (let k = 0; k < n; k++) await assertPortFree(host, base + k, 'probe', '');
      return base;
    } catch { /* taken: try another */ }
  }
  throw new Error(`no ${n} consecutive free ports found on ${host}`);
}

/** Polls `probe` until it returns a value (not undefined) or the deadline passes. */
export async function poll<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 250, onFail?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) { last = (e as Error).message; }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}${onFail ? `\n${onFail()}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
