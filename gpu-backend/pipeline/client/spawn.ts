// Launch a backend group's stage processes on localhost (free ports), wait until each is ready, tear down cleanly.
// Each spawned group gets its own fresh group secret, handed to the stages in their environment (not their command
// line, which `ps` shows) and to the caller in StageGroup.secret for its PipelineClient.
// Used by `uvit forward|sample --stages N --spawn`, the integration tests and bench:pipeline.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type PlanFile, readPlanFile, writePlanFile } from '../../partition/planFile.ts';
import type { Plan } from '../../partition/types.ts';
import { GroupSecret, SECRET_ENV } from '../wire/auth.ts';
import type { Granularity } from '../stage/units.ts';

const STAGE_MAIN = join(dirname(fileURLToPath(import.meta.url)), '../stage/main.ts');

/**
 * glibc malloc settings for a stage process (environment, read at exec). Every forward brings new tensors of up to
 * a few MB (frames received, ONNX Runtime outputs); with glibc's defaults they were mapped fresh from the kernel and
 * given back after use, so each forward page-faulted its tensors in again. Allocations below 32 MiB come from the
 * heap and up to 128 MiB of free heap is kept: on the demo model (2 folded stages) minor faults per forward went from
 * 760 to 450 and CPU per forward from 218 to 200 ms (the same segments in one process: 197 ms).
 */
export const STAGE_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(32 * 2 ** 20),
  MALLOC_TRIM_THRESHOLD_: String(128 * 2 ** 20),
};

export interface SpawnOptions {
  /** intra-op threads per stage (default 1) */
  threads?: number;
  host?: string;
  /** how long to wait for every stage to print its ready line (default 60 s) */
  readyTimeoutMs?: number;
  /** execution provider per stage, with device id = stage index unless deviceIds is given */
  ep?: 'cpu' | 'cuda';
  deviceIds?: number[];
  /** forward the stages' stderr to this process's stderr (default: keep the tail for error messages) */
  inheritStderr?: boolean;
  /**
   * start each stage in its own session (default true), as if on its own host: with Linux scheduler autogroups a
   * session shares CPU as one unit, so stages in the driver's session would split one share between them under load.
   * Stages exit when this process dies either way (they watch their stdin pipe).
   */
  ownSession?: boolean;
  /** extra `uvit stage` flags for every stage (limits, timeouts) */
  stageArgs?: string[];
  /** ONNX sessions per stage segment: 'auto' (default), 'block' or 'segment' (see stage/units.ts) */
  granularity?: Granularity;
}

export interface StageGroup {
  plan: Plan;
  planPath: string;
  addresses: string[];
  /** the secret the stages require: give it to PipelineClient.connect */
  secret: GroupSecret;
  pids: number[];
  /** the last stderr lines of stage k */
  stderr(k: number): string;
  /** SIGKILL stage k (tests: a dying stage) */
  kill(k: number): void;
  close(): Promise<void>;
}

/** plan: a plan file path, or a plan file object (relative paths in it resolve against baseDir) */
export async function spawnStages(plan: string | { file: PlanFile; baseDir: string }, opts: SpawnOptions = {}): Promise<StageGroup> {
  let planPath: string;
  let tmp: string | undefined;
  if (typeof plan === 'string') planPath = resolve(plan);
  else {
    tmp = mkdtempSync(join(tmpdir(), 'uvit-stages-'));
    planPath = join(tmp, 'plan.json');
    const abs = (p: string) => resolve(plan.baseDir, p);
    writePlanFile(planPath, { ...plan.file, weights: abs(plan.file.weights), segmentFiles: plan.file.segmentFiles.map(abs) });
  }
  const loaded = readPlanFile(planPath);
  const S = loaded.plan.numStages;
  const host = opts.host ?? '127.0.0.1';
  const secret = GroupSecret.generate();
  const procs: ChildProcess[] = [];
  const tails: string[] = new Array(S).fill('');
  const exited: (string | null)[] = new Array(S).fill(null);
  let closing = false;

  const close = async (): Promise<void> => {
    closing = true;
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((r) => {
            if (p.exitCode !== null || p.signalCode !== null) return r();
            const t = setTimeout(() => p.kill('SIGKILL'), 3000);
            p.once('exit', () => {
              clearTimeout(t);
              r();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  };

  const ready: Promise<string>[] = [];
  for (let k = 0; k < S; k++) {
    const args = [STAGE_MAIN, '--plan', planPath, '--index', String(k), '--listen', `${host}:0`, '--threads', String(opts.threads ?? 1), '--exit-with-stdin'];
    if (opts.granularity) args.push('--granularity', opts.granularity);
    if (opts.stageArgs) args.push(...opts.stageArgs);
    if (opts.ep === 'cuda') args.push('--ep', 'cuda', '--device-id', String(opts.deviceIds?.[k] ?? k));
    const p = spawn(process.execPath, args, {
      stdio: ['pipe', 'pipe', opts.inheritStderr ? 'inherit' : 'pipe'],
      detached: opts.ownSession ?? true,
      env: { ...STAGE_MALLOC_ENV, ...process.env, [SECRET_ENV]: secret.reveal() },
    });
    p.stdin!.on('error', () => {}); // the stage may be gone already
    procs.push(p);
    p.stderr?.on('data', (d: Buffer) => {
      tails[k] = (tails[k] + d.toString()).slice(-4000);
    });
    ready.push(
      new Promise<string>((res, rej) => {
        let out = '';
        const onData = (d: Buffer) => {
          out += d.toString();
          const m = /uvit-stage ready stage=(\d+) address=(\S+)/.exec(out);
          if (m) {
            p.stdout!.off('data', onData);
            res(m[2]);
          }
        };
        p.stdout!.on('data', onData);
        p.once('exit', (code, sig) => {
          exited[k] = `exit code ${code ?? sig}`;
          if (!closing) rej(new Error(`stage ${k} exited before it was ready (${exited[k]}): ${tails[k].trim().slice(-1500)}`));
        });
        p.once('error', (e) => rej(new Error(`stage ${k}: cannot start ${process.execPath}: ${e.message}`)));
      }),
    );
  }
  let addresses: string[];
  try {
    const ms = opts.readyTimeoutMs ?? 60_000;
    addresses = await Promise.race([
      Promise.all(ready),
      new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`stages not ready within ${ms} ms`)), ms).unref()),
    ]);
  } catch (e) {
    await close();
    throw e;
  }
  return {
    plan: loaded.plan,
    planPath,
    addresses,
    secret,
    pids: procs.map((p) => p.pid!),
    stderr: (k) => tails[k],
    kill: (k) => void procs[k].kill('SIGKILL'),
    close,
  };
}
