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
 * Grew and levelled off, or still climbing? Compares the last third of a series with its middle third, by their peaks
 * (RSS: allocator caches fill during warm-up and then plateau; a leak keeps climbing) or by their medians (a noisy series
 * such as a live heap sampled while requests are in flight).
 */
export function plateau(xs: number[], by: 'peak' | 'median' = 'peak'): { head: number; tail: number; grew: number } {
  const third = Math.floor(xs.length / 3);
  const pick = (ys: number[]) => (by === 'peak' ? Math.max(...ys) : [...ys].sort((a, b) => a - b)[Math.floor(ys.length / 2)]);
  const head = pick(xs.slice(third, 2 * third));
  const tail = pick(xs.slice(2 * third));
  return { head, tail, grew: tail - head };
}
