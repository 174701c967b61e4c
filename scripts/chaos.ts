// `npm run test:chaos [-- vitest args]`: the whole chaos suite (tests/chaos: faults, bad input, isolation, load,
// attacks) against the real local stack, one file at a time, with larger fuzz counts than `npm test`; then a table of
// what was injected and what held. Exit status ≠ 0 when a test failed or any accepted request was lost.
//   CHAOS_SEED (default 20261125), CHAOS_API_N (1000), CHAOS_FRAME_N (3000), CHAOS_STAGE_N (200),
//   CHAOS_CLIENTS (50), CHAOS_LOAD_MS (60000)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZERO, type Counts } from '../tests/chaos/stats.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const statsDir = mkdtempSync(join(tmpdir(), 'uvit-chaos-stats-'));
const env = {
  ...process.env,
  CHAOS_STATS_DIR: statsDir,
  CHAOS_API_N: process.env.CHAOS_API_N ?? '1000',
  CHAOS_FRAME_N: process.env.CHAOS_FRAME_N ?? '3000',
  CHAOS_STAGE_N: process.env.CHAOS_STAGE_N ?? '200',
};
const t0 = performance.now();
const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--config', join(ROOT, 'tests/chaos/vitest.config.ts'), ...process.argv.slice(2)], {
  cwd: ROOT, env, stdio: 'inherit',
});
const secs = (performance.now() - t0) / 1000;

const rows: { name: string; counts: Counts; notes: string[] }[] = existsSync(statsDir)
  ? readdirSync(statsDir).filter((f) => f.endsWith('.json')).sort().map((f) => JSON.parse(readFileSync(join(statsDir, f), 'utf8')))
  : [];
rmSync(statsDir, { recursive: true, force: true });
const total: Counts = { ...ZERO };
for (const row of rows) for (const k of Object.keys(total) as (keyof Counts)[]) total[k] += row.counts[k];

const pad = (s: string | number, n: number) => String(s).padStart(n);
const line = (name: string, c: Counts) =>
  `${name.padEnd(10)}${pad(`${c.faults_injected} / ${c.faults_survived}`, 20)}${pad(`${c.bad_inputs_tried} / ${c.bad_inputs_handled}`, 22)}${pad(`${c.requests_accepted} / ${c.requests_rejected} / ${c.requests_lost}`, 30)}${pad(`${c.attacks_tried} / ${c.attacks_held}`, 22)}`;
const out = [
  '',
  `chaos summary (seed ${process.env.CHAOS_SEED ?? '20261125'}, ${secs.toFixed(0)} s, vitest exit ${r.status ?? r.signal})`,
  `${'suite'.padEnd(10)}${pad('faults inj / surv', 20)}${pad('bad inputs tried / ok', 22)}${pad('requests acc / rej / lost', 30)}${pad('attacks tried / held', 22)}`,
  ...rows.map((row) => line(row.name, row.counts)),
  line('TOTAL', total),
  ...rows.flatMap((row) => row.notes.map((n) => `  ${row.name}: ${n}`)),
  '',
];
process.stdout.write(out.join('\n'));
const missing = ['api', 'backend', 'stage', 'security'].filter((n) => !rows.some((row) => row.name === n));
if (missing.length && process.argv.length <= 2) process.stdout.write(`missing results from: ${missing.join(', ')} (a file did not finish)\n`);
const ok = r.status === 0 && total.requests_lost === 0 && total.faults_injected === total.faults_survived && total.bad_inputs_tried === total.bad_inputs_handled && total.attacks_tried === total.attacks_held;
process.exit(ok ? 0 : 1);
