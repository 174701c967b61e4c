// npm run bench:engine — forward time of the demo video config vs the measured ORT MatMul GFLOP/s of this machine
// (model FLOP utilisation, MFU), for 1 and 2 intra-op threads.
// The machine is shared, so MatMul and forward timings are interleaved in rounds (outside load hits both alike) and
// two clocks are reported: median wall time, and the minimum process CPU time per call (with 1 thread the CPU time
// excludes time spent descheduled, so it is the robust figure on a busy machine; with 2 threads it also counts
// ORT's spinning workers and is not used).
// Peak = the prescribed [2048,1024]x[1024,4096] MatMul, and also the best of a few other MatMul shapes.
// Options: --config PATH (default gpu-backend/demo/model.json), --batch B (1), --rounds R (4), --threads 1,2,
//          --attention contrib|ops|mha, --no-spin (ORT workers sleep instead of spinning), --json OUT.json
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { float32 } from '../shared/tensor.ts';
import { Engine, type ForwardInputs } from '../gpu-backend/engine/engine.ts';
import type { AttentionImpl } from '../gpu-backend/model/build/layers.ts';
import { derive, loadConfig, parseConfig, type UViTConfig } from '../gpu-backend/model/config.ts';
import {
  EXTRA_SHAPES, forwardMatmulFlops, matmulSession, PRESCRIBED_SHAPE, randomFill, randomWeights, timeIt,
} from './engineLib.ts';

// Used only if the demo config is absent: text-conditioned video, 16x16x4 latents, p2, 32 latent frames, pt 2.
const FALLBACK: unknown = {
  img_size: 16, patch_size: 2, in_chans: 4, embed_dim: 256, depth: 6, num_heads: 4, mlp_ratio: 4,
  clip_dim: 64, num_clip_token: 16, num_frames: 32, temporal_patch_size: 2,
};

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    batch: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '4' },
    threads: { type: 'string', default: '1,2' },
    attention: { type: 'string', default: 'contrib' },
    'no-spin': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const demoPath = join(import.meta.dirname, '../gpu-backend/demo/model.json');
const cfgPath = values.config ?? (existsSync(demoPath) ? demoPath : undefined);
const cfg: UViTConfig = cfgPath ? loadConfig(cfgPath) : parseConfig(FALLBACK);
const d = derive(cfg);
const B = Number(values.batch);
const rounds = Number(values.rounds);
const attention = values.attention as AttentionImpl;
const flops = forwardMatmulFlops(cfg) * B;
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const gf = (f: number, ms: number) => f / (ms * 1e6);

console.log(`config ${cfgPath ?? '(built-in fallback)'}: ${d.variant} video=${d.video} D${d.D} blocks ${d.numBlocks} ` +
  `H${d.H} tokens ${d.T} (extras ${d.extras}), x [${d.inputShape(B)}], attention ${attention}`);
console.log(`model matmul FLOPs per forward (batch ${B}): ${(flops / 1e9).toFixed(2)} GFLOP; onnxruntime ${ort.env.versions.common}`);

const weights = randomWeights(cfg);
const xShape = d.inputShape(B);
const inputs: ForwardInputs = {
  x: float32(xShape, randomFill(xShape.reduce((a, b) => a * b, 1), 9, 1)),
  timesteps: new Float32Array(B).fill(500.5),
};
if (d.variant === 'text') inputs.context = float32([B, d.extras - 1, cfg.clip_dim!], randomFill(B * (d.extras - 1) * cfg.clip_dim!, 11, 1));
if (d.variant === 'class') inputs.y = new BigInt64Array(B);

const results: Record<string, unknown>[] = [];
for (const threads of values.threads.split(',').map(Number)) {
  const engine = await Engine.create({ config: cfg, weights, threads, attention, spin: !values['no-spin'] });
  const prescribed = await matmulSession(threads, PRESCRIBED_SHAPE, !values['no-spin']);
  const extras = await Promise.all(EXTRA_SHAPES.map((s) => matmulSession(threads, s, !values['no-spin'])));
  const rec = { pWall: [] as number[], pCpu: [] as number[], bWall: [] as number[], bCpu: [] as number[], fWall: [] as number[], fCpu: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    const p = await timeIt(prescribed.run, 600, 2);
    rec.pWall.push(gf(prescribed.flops, p.wallMs));
    rec.pCpu.push(gf(prescribed.flops, p.cpuMs));
    let bw = rec.pWall[r];
    let bc = rec.pCpu[r];
    for (const m of extras) {
      const t = await timeIt(m.run, 300, 2);
      bw = Math.max(bw, gf(m.flops, t.wallMs));
      bc = Math.max(bc, gf(m.flops, t.cpuMs));
    }
    rec.bWall.push(bw);
    rec.bCpu.push(bc);
    const f = await timeIt(() => engine.forward(inputs), 1000, 2);
    rec.fWall.push(f.wallMs);
    rec.fCpu.push(f.cpuMs);
  }
  await engine.release();
  await prescribed.release();
  for (const m of extras) await m.release();
  const fwdWallMs = median(rec.fWall);
  const fwdCpuMs = Math.min(...rec.fCpu);
  const row = {
    threads,
    batch: B,
    wall: { forwardMs: fwdWallMs, gflops: gf(flops, fwdWallMs), peakPrescribed: median(rec.pWall), peakBest: median(rec.bWall) },
    cpu: { forwardMs: fwdCpuMs, gflops: gf(flops, fwdCpuMs), peakPrescribed: Math.max(...rec.pCpu), peakBest: Math.max(...rec.bCpu) },
  };
  results.push(row);
  const line = (what: string, r: typeof row.wall) =>
    `  ${what}: forward ${r.forwardMs.toFixed(1)} ms = ${r.gflops.toFixed(1)} GFLOP/s | MatMul [${PRESCRIBED_SHAPE.join('x')}] ` +
    `${r.peakPrescribed.toFixed(1)} GFLOP/s -> MFU ${(100 * r.gflops / r.peakPrescribed).toFixed(0)} % | best MatMul shape ` +
    `${r.peakBest.toFixed(1)} GFLOP/s -> MFU ${(100 * r.gflops / r.peakBest).toFixed(0)} %`;
  console.log(`threads ${threads} (goal: MFU >= 60 %)`);
  console.log(line('wall, medians    ', row.wall));
  if (threads === 1) console.log(line('cpu time, best   ', row.cpu));
}
if (values.json) writeFileSync(values.json, JSON.stringify({ config: cfgPath ?? 'fallback', attention, flops, results }, null, 2));
