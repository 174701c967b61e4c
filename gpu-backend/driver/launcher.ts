// Child processes (ffmpeg) started by a small helper process instead of the driver itself.
// Starting a process forks the caller, and a fork write-protects all of the caller's memory until each page is
// written again. In the driver that is hundreds of MB: after every ffmpeg start the decoder's buffers and the
// heap fault back in (a 128-frame decode took 14 000 page faults and 3x its CPU after a start; docs/measurements.md).
// The helper is small, so its forks are cheap; it hands the child's stdin pipe back over the IPC channel (a file
// descriptor), and the driver writes the frames straight into it: no copy passes through the helper.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';

/** A started child: write its stdin; `exited` gives its exit code (128 after a signal) or rejects if it never started. */
export interface Launched {
  stdin: Writable;
  exited: Promise<number>;
  /** true once it has exited */
  readonly done: boolean;
  /** the first 8000 characters of its stderr */
  stderr(): string;
  kill(): void;
}

/** Starts `bin args` with stdin a pipe, stdout ignored and stderr collected. */
export type Launch = (bin: string, args: string[]) => Promise<Launched>;

const STDERR_MAX = 8000;

/** `bin args` as a child of this process, as both launchers start it; `exited` rejects if it never started. */
function startChild(bin: string, args: string[]): { child: ChildProcess; stderr: () => string; exited: Promise<number> } {
  const child = spawn(bin, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < STDERR_MAX) stderr += d;
  });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (e) => reject(new Error(`could not start ${bin}: ${e.message}`)));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  exited.catch(() => {}); // observed by the caller; never an unhandled rejection here
  return { child, stderr: () => stderr, exited };
}

/** A child of this process (the default where the caller is small: the CLI, tests). */
export const launchHere: Launch = async (bin, args) => {
  const { child, stderr, exited } = startChild(bin, args);
  return {
    stdin: child.stdin!,
    exited,
    get done() {
      return child.exitCode !== null || child.signalCode !== null;
    },
    stderr,
    kill: () => child.kill('SIGKILL'),
  };
};

type ToHelper = { id: number; bin: string; args: string[] } | { id: number; kill: true };
type FromHelper = { id: number; started: true } | { id: number; error: string } | { id: number; code: number; stderr: string };

const ROLE = '--uvit-launcher';

interface Pending {
  started: (stdin: Socket) => void;
  failed: (e: Error) => void;
  exit: (code: number, stderr: string) => void;
}

/** The helper process and the children it started for this driver. */
export class Launcher {
  private helper?: ChildProcess;
  private next = 1;
  private readonly pending = new Map<number, Pending>();

  /** Starts the helper now, while the caller is still small (it is restarted on demand if it dies). */
  static start(): Launcher {
    const l = new Launcher();
    l.ensure();
    return l;
  }

  /** the helper's pid (a new one after a restart) */
  get pid(): number | undefined {
    return this.helper?.pid;
  }

  private ensure(): ChildProcess {
    if (this.helper && this.helper.exitCode === null && this.helper.connected) return this.helper;
    const h = fork(fileURLToPath(import.meta.url), [ROLE], { execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    h.on('message', (m: FromHelper, handle?: Socket) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      if ('started' in m) {
        if (handle) p.started(handle);
        else p.failed(new Error('the launcher sent no stdin pipe'));
      } else if ('error' in m) {
        this.settled(m.id);
        p.failed(new Error(m.error));
      } else {
        this.settled(m.id);
        p.exit(m.code, m.stderr);
      }
    });
    h.on('error', () => {}); // a send to a helper that just died; its exit (below) reports it
    h.on('exit', () => {
      // children it started are orphaned but see their stdin close with ours; report them gone
      for (const p of this.pending.values()) p.failed(new Error('the launcher process exited'));
      this.pending.clear();
    });
    this.helper = h;
    this.hold(false);
    return h;
  }

  /** The helper keeps the caller alive only while a child of it runs (its exit is still to come over the channel). */
  private hold(on: boolean): void {
    const h = this.helper as (ChildProcess & { channel?: { ref(): void; unref(): void } }) | undefined;
    if (on) {
      h?.ref();
      h?.channel?.ref();
    } else {
      h?.unref();
      h?.channel?.unref();
    }
  }

  private settled(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.hold(false);
  }

  readonly launch: Launch = (bin, args) => {
    const h = this.ensure();
    const id = this.next++;
    let stderr = '';
    let done = false;
    return new Promise<Launched>((resolveStart, rejectStart) => {
      let settleExit: (code: number) => void = () => {};
      let failExit: (e: Error) => void = () => {};
      const exited = new Promise<number>((res, rej) => {
        settleExit = res;
        failExit = rej;
      });
      exited.catch(() => {});
      let started = false;
      this.pending.set(id, {
        started: (stdin) => {
          started = true;
          resolveStart({
            stdin,
            exited,
            get done() {
              return done;
            },
            stderr: () => stderr,
            kill: () => {
              if (!done && h.connected) h.send({ id, kill: true } satisfies ToHelper);
            },
          });
        },
        failed: (e) => {
          done = true;
          if (started) failExit(e);
          else rejectStart(e);
        },
        exit: (code, err) => {
          done = true;
          stderr = err;
          settleExit(code);
        },
      });
      this.hold(true);
      h.send({ id, bin, args } satisfies ToHelper);
    });
  };

  close(): void {
    this.helper?.kill();
    this.helper = undefined;
  }
}

/** The helper: starts what it is asked to, hands back each child's stdin, reports each exit. */
function serveLauncher(): void {
  const children = new Map<number, ChildProcess>();
  const send = (m: FromHelper, handle?: Socket) => process.connected && process.send!(m, handle);
  process.on('message', (m: ToHelper) => {
    if ('kill' in m) {
      children.get(m.id)?.kill('SIGKILL');
      return;
    }
    const { child, stderr, exited } = startChild(m.bin, m.args);
    children.set(m.id, child);
    child.on('spawn', () => send({ id: m.id, started: true }, child.stdin as Socket));
    exited.then(
      (code) => send({ id: m.id, code, stderr: stderr() }),
      (e: Error) => send({ id: m.id, error: e.message }),
    ).finally(() => children.delete(m.id));
  });
  // the driver is gone: nothing more will be asked
  process.on('disconnect', () => process.exit(0));
}

if (process.argv[2] === ROLE && process.argv[1] === fileURLToPath(import.meta.url) && process.send) serveLauncher();
