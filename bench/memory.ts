// npm run bench:memory -- [--stages 4] [--partition folded|sequential|auto|both] [--modes prebuilt,external,inline]
//                          [--threads 1] [--dir /tmp/uvit-bench-memory] [--json OUT.json]
// A U-ViT-H/2-sized config (img 32, p 2, C 4, D 1152, depth 28, H 16, 1001 classes, conv false: ~501 M params,
// ~2.0 GB float32) gets seeded weights in a file (made once, reused), is split S ways and exported (one ONNX per
// segment, external data). Each stage is then loaded in its OWN child process (process.execPath) exactly like a stage
// server would, one forward is run, and the child reports its peak RSS (VmHWM). Ratio = peak RSS / shard bytes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../gpu-backend/model/config.ts';
import { expectedParams } from '../gpu-backend/model/weights.ts';
import { initWeightsToFile } from '../gpu-backend/model/initWeights.ts';
import { exportPlan } from '../gpu-backend/partition/export.ts';
import type { PartitionChoice } from '../gpu-backend/partition/costModel.ts';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const S = Number(opt('stages', '4'));
const partArg = opt('partition', 'both');
const partitions: PartitionChoice[] = partArg === 'both' ? ['folded', 'sequential'] : [partArg as PartitionChoice];
const modes = opt('modes', 'prebuilt,external').split(',');
const threads = opt('threads', '1');
const dir = opt('dir', '/tmp/uvit-bench-memory');
const jsonOut = args.includes('--json') ? opt('json', '') : '';

const cfg = parseConfig({ img_size: 32, patch_size: 2, in_chans: 4, embed_dim: 1152, depth: 28, num_heads: 16, num_classes: 1001, conv: false });
const params = [...expectedParams(cfg).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
mkdirSync(dir, { recursive: true });
const weights = join(dir, 'uvit-h2-seed0.safetensors');
const MiB = 2 ** 20;
if (!existsSync(weights) || statSync(weights).size < params * 4) {
  const t0 = performance.now();
  process.stderr.write(`init weights: ${(params / 1e6).toFixed(1)} M params -> ${weights} ... `);
  initWeightsToFile(cfg, 0, weights);
  process.stderr.write(`${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}
console.log(`U-ViT-H/2-sized: ${(params / 1e6).toFixed(1)} M params, ${(params * 4 / MiB).toFixed(0)} MiB float32; S=${S}; ` +
  `threads ${threads}; node ${process.version}`);

type Row = Record<string, number | string>;
const rows: Row[] = [];
for (const partition of partitions) {
  const out = join(dir, `${partition}-${S}`);
  const t0 = performance.now();
  const ex = exportPlan({ config: cfg, weightsPath: weights, numStages: S, partition, outDir: out });
  process.stderr.write(`exported ${ex.plan.partition} S=${S} -> ${ex.planPath} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  for (const mode of modes) {
    for (let k = 0; k < S; k++) {
      const r = spawnSync(process.execPath, ['--expose-gc', join(import.meta.dirname, 'memoryStage.ts'), ex.planPath, String(k), mode, threads],
        { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (r.status !== 0) throw new Error(`stage ${k} (${mode}) child failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
      const row = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Row;
      rows.push({ partition: ex.plan.partition, ...row });
      process.stderr.write(`  ${ex.plan.partition} ${mode} stage ${k}: shard ${(Number(row.paramBytes) / MiB).toFixed(0)} MiB, ` +
        `peak RSS ${(Number(row.peak) / MiB).toFixed(0)} MiB (${row.ms} ms)\n`);
    }
  }
}

const mib = (v: number | string) => (Number(v) / MiB).toFixed(0);
const head = ['partition', 'mode', 'stage', 'blocks (chain ranges)', 'n', 'shard MiB', 'base MiB', 'build peak', 'serve peak', 'peak RSS MiB', 'RSS/shard', '(RSS-base)/shard', 's'];
const table = rows.map((r) => [
  r.partition, r.mode, r.stage, r.blocks, r.nBlocks, mib(r.paramBytes), mib(r.baseRss), r.buildPeak ? mib(r.buildPeak) : '-',
  mib(r.serveHwm), mib(r.peak), (Number(r.peak) / Number(r.paramBytes)).toFixed(2),
  ((Number(r.peak) - Number(r.baseRss)) / Number(r.paramBytes)).toFixed(2), (Number(r.ms) / 1000).toFixed(1),
].map(String));
const w = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |';
console.log(line(head));
console.log('|' + w.map((x) => '-'.repeat(x + 2)).join('|') + '|');
for (const t of table) console.log(line(t));
console.log('build peak: VmHWM while reading the shard and encoding the ONNX (external/inline modes); serve peak: VmHWM from ' +
  'session creation through one forward (prebuilt: the whole process); base: RSS of node + onnxruntime before loading.');
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ params, S, threads, rows }, null, 2));
