// Resident memory of local processes, read from /proc (Linux): the chaos load test and `npm run bench:soak` sample the
// stack's processes (wrangler and its two workerd processes, stages, driver) while they are under load.
import { readFileSync, readdirSync } from 'node:fs';

/** Live pids in process group `pgid` (a stack part and its children, e.g. wrangler + workerd). */
export function groupPids(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

/** VmRSS of a process in bytes (0 when it is gone). */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch { return 0; }
}

export function commOf(pid: number): string {
  try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return '?'; }
}

export function cmdlineOf(pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim(); } catch { return ''; }
}

/**
 * The two workerd processes `wrangler dev` runs: `proxy` (wrangler's own ProxyWorker on the public port, in front of
 * the app) and `user` (the app's isolate; the one started with --inspector-addr). Missing ones are undefined.
 */
export function wranglerWorkerds(pgid: number): { proxy?: number; user?: number } {
  const out: { proxy?: number; user?: number } = {};
  for (const pid of groupPids(pgid)) {
    if (commOf(pid) !== 'workerd') continue;
    if (cmdlineOf(pid).includes('--inspector-addr')) out.user = pid;
    else out.proxy = pid;
  }
  return out;
}

/**
 * Grew and levelled off, or still climbing? Compares the peak of the last third of a series with the peak of its
 * middle third: allocator caches and V8 heaps fill during warm-up and then plateau; a leak keeps climbing.
 */
export function plateau(xs: number[]): { head: number; tail: number; grew: number } {
  const third = Math.floor(xs.length / 3);
  const head = Math.max(...xs.slice(third, 2 * third));
  const tail = Math.max(...xs.slice(2 * third));
  return { head, tail, grew: tail - head };
}
