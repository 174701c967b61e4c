// npm run bench:service [-- --configs A.json,B.json --stages 1,2 --clips 6 --seconds 16 --singles 2]
// Clips per minute through the whole service, as a user gets them: for each group config and stage count, the local
// stack of `npm start` (edge under wrangler dev, S stage processes, the driver with its default capacity), one
// warm-up clip, then `--singles` clips one at a time (single-clip latency), then `--clips` clips submitted at once,
// timed from the first submit to the last completion (SSE). Prints clips/min, per-clip latency p50/p95, the driver's
// phase times and the CPU share (CPU seconds / wall seconds) of the driver, its ffmpeg children, each stage and the
// edge (wrangler + workerd) over the queued run. Every clip has its own seed, so none is served from the result cache.
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UvitClient } from '../client/index.ts';
import { Stack, defaultOptions, ROOT } from '../scripts/startStack.ts';
import { freePortRange } from '../scripts/startProcs.ts';
import { groupPids } from '../scripts/procMem.ts';

const { values: a } = parseArgs({
  options: {
    configs: { type: 'string', default: 'models/uvit-t2v-shapes/group.json,gpu-backend/demo/demo.json' },
    stages: { type: 'string', default: '1,2' },
    clips: { type: 'string', default: '6' },
    singles: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '16' },
  },
});
const CLIPS = Number(a.clips);
const SINGLES = Number(a.singles);
const SECONDS = Number(a.seconds);
const TICK = 100; // clock ticks per second of /proc/<pid>/stat (Linux USER_HZ)

/**
 * CPU seconds (user + system) of the live processes of a process group, by command name, plus under CHILDREN what
 * their exited children used (an ffmpeg that ran and was reaped: fields 16, 17 of proc(5))
 */
const CHILDREN = '(exited children)';
function groupCpu(pgid: number | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (pgid === undefined) return out;
  const add = (k: string, ticks: number) => out.set(k, (out.get(k) ?? 0) + ticks / TICK);
  for (const pid of groupPids(pgid)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      add(comm, Number(f[11]) + Number(f[12]));
      add(CHILDREN, Number(f[13]) + Number(f[14]));
    } catch { /* exited meanwhile */ }
  }
  return out;
}

const sum = (m: Map<string, number>, pick = (_k: string) => true) => [...m].reduce((s, [k, v]) => s + (pick(k) ? v : 0), 0);
const pct = (xs: number[], p: number) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];

interface Row {
  config: string;
  stages: number;
  capacity: string;
  single: number[];
  wallS: number;
  latencies: number[];
  phases: string;
  cpu: { driver: number; ffmpeg: number; stages: number[]; edge: number };
}

/** the driver's own report of each completed job: text, sample, decode and mp4 milliseconds */
function phaseMedians(logFile: string, from: number): string {
  const lines = readFileSync(logFile, 'utf8').slice(from).split('\n');
  const ph: Record<string, number[]> = { text: [], sample: [], decode: [], mp4: [] };
  for (const l of lines) {
    const m = /text (\d+) ms, sample (\d+) ms .*decode (\d+) ms, mp4 (\d+) ms/.exec(l);
    if (!m) continue;
    ['text', 'sample', 'decode', 'mp4'].forEach((k, i) => ph[k].push(Number(m[i + 1])));
  }
  return Object.entries(ph).map(([k, v]) => `${k} ${v.length ? pct(v, 50) : '-'}`).join(', ');
}

async function runSetup(config: string, stages: number, seedBase: number): Promise<Row> {
  const ports = await freePortRange(stages + 2);
  const state = join(tmpdir(), `uvit-bench-service-${process.pid}-${stages}`);
  rmSync(state, { recursive: true, force: true });
  const stack = new Stack({
    ...defaultOptions(),
    config, stages, edgePort: ports, stagePort: ports + 2, metricsPort: ports + 1,
    stateDir: state, log: (s) => process.stderr.write(`[bench:service] ${s}\n`),
  });
  try {
    await stack.start();
    const client = new UvitClient({ baseUrl: stack.baseUrl, apiKey: await stack.apiKey(), maxRetries: 0 });
    let seed = seedBase;
    const clip = async (): Promise<number> => {
      const t0 = performance.now();
      const v = await client.create({ prompt: 'a red ball bouncing', seconds: SECONDS, seed: seed++ });
      const done = await client.wait(v.id);
      if (done.status !== 'completed') throw new Error(`clip ${v.id} ended ${done.status}: ${JSON.stringify(done.error)}`);
      return (performance.now() - t0) / 1000;
    };
    await clip(); // warm-up: sessions, page cache, the edge's first requests
    const single: number[] = [];
    for (let i = 0; i < SINGLES; i++) single.push(await clip());
    const logFile = join(state, 'logs', 'driver.log');
    const logFrom = readFileSync(logFile, 'utf8').length;
    const capacity = /capacity (\d+)/.exec(readFileSync(logFile, 'utf8'))?.[1] ?? '?';
    const snap = () => ({
      driver: groupCpu(stack.driver?.pid),
      stages: stack.stages.map((s) => sum(groupCpu(s.pid))),
      edge: sum(groupCpu(stack.edge?.pid)),
    });
    const c0 = snap();
    const t0 = performance.now();
    const latencies = await Promise.all(Array.from({ length: CLIPS }, () => clip()));
    const wallS = (performance.now() - t0) / 1000;
    const c1 = snap();
    // the driver's children are its ffmpeg encoders, running or exited
    const isFfmpeg = (k: string) => k.startsWith('ffmpeg') || k === CHILDREN;
    const d = (k: (s: typeof c0) => number) => (k(c1) - k(c0)) / wallS;
    return {
      config: relative(ROOT, config), stages, capacity, single, wallS, latencies,
      phases: phaseMedians(logFile, logFrom),
      cpu: {
        driver: d((s) => sum(s.driver, (k) => !isFfmpeg(k))),
        ffmpeg: d((s) => sum(s.driver, isFfmpeg)),
        stages: c1.stages.map((c, k) => (c - c0.stages[k]) / wallS),
        edge: d((s) => s.edge),
      },
    };
  } finally {
    await stack.stop();
    rmSync(state, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const configs = a.configs!.split(',').map((c) => resolve(ROOT, c));
  const stageCounts = a.stages!.split(',').map(Number);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`bench:service  ${CLIPS} clips of ${SECONDS} s queued at once after 1 warm-up and ${SINGLES} single clips; load average before: ${load}`);
  const rows: Row[] = [];
  const seedBase = Date.now() % 1_000_000_000; // fresh seeds every run: no clip comes from the edge's result cache
  for (const config of configs) {
    for (const s of stageCounts) {
      const r = await runSetup(config, s, seedBase + rows.length * 1000);
      rows.push(r);
      console.log(`  ${r.config}, ${s} stage(s): ${((CLIPS / r.wallS) * 60).toFixed(1)} clips/min; phases (median ms) ${r.phases}`);
    }
  }
  const f = (v: number, k = 1) => v.toFixed(k);
  const head = ['config', 'stages', 'capacity', 'single clip s', `${CLIPS} clips wall s`, 'clips/min', 'speed-up', 'latency p50 / p95 s', 'CPU share: driver + ffmpeg / stages / edge'];
  const table = rows.map((r) => {
    const base = rows.find((x) => x.config === r.config && x.stages === stageCounts[0])!;
    const cpm = (CLIPS / r.wallS) * 60;
    return [
      r.config, String(r.stages), r.capacity, r.single.length ? f(pct(r.single, 50), 2) : '-', f(r.wallS), f(cpm), `${f(cpm / ((CLIPS / base.wallS) * 60), 2)}x`,
      `${f(pct(r.latencies, 50))} / ${f(pct(r.latencies, 95))}`,
      `${f(r.cpu.driver, 2)} + ${f(r.cpu.ffmpeg, 2)} / ${r.cpu.stages.map((c) => f(c, 2)).join(' + ')} / ${f(r.cpu.edge, 2)}`,
    ];
  });
  const w = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
  console.log('');
  for (const r of [head, ...table]) console.log(r.map((v, i) => v.padEnd(w[i])).join('  '));
  console.log(`\nsingle clip = median of ${SINGLES} clips submitted one at a time (submit -> completed event); speed-up = clips/min ÷ the ` +
    `${stageCounts[0]}-stage run of the same config. CPU share = CPU seconds ÷ wall seconds of the queued run (1.0 = one core).`);
  console.log(`load average after: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
}

await main();
