// npm run bench:engine — forward time of the demo video config vs the measured ORT MatMul GFLOP/s of this machine
// (model FLOP utilisation), for 1 and 2 intra-op threads. Matmul and forward timings are interleaved in rounds so
// that load from other processes hits both alike; medians are reported.
// Options: --config PATH (default gpu-backend/demo/model.json), --batch B (default 1), --rounds R (default 5),
//          --threads 1,2  --attention ops|contrib  --json OUT.json
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { float32 } from '../shared/tensor.ts';
import { Engine } from '../gpu-backend/engine/engine.ts';
import type { AttentionImpl } from '../gpu-backend/model/build/layers.ts';
import { derive, loadConfig, parseConfig, type UViTConfig } from '../gpu-backend/model/config.ts';
import { forwardMatmulFlops, matmulPeak, randomFill, randomWeights, timeIt } from './engineLib.ts';

// Used until the demo config exists: text-conditioned video, 16x16x4 latents, p2, 32 latent frames, pt 2.
const FALLBACK: unknown = {
  img_size: 16, patch_size: 2, in_chans: 4, embed_dim: 256, depth: 6, num_heads: 4, mlp_ratio: 4,
  clip_dim: 64, num_clip_token: 16, num_frames: 32, temporal_patch_size: 2,
};

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    batch: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '5' },
    threads: { type: 'string', default: '1,2' },
    attention: { type: 'string', default: 'ops' },
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

console.log(`config ${cfgPath ?? '(built-in fallback)'}: ${d.variant} video=${d.video} D${d.D} blocks ${d.numBlocks} ` +
  `H${d.H} tokens ${d.T} (extras ${d.extras}), x [${d.inputShape(B)}], attention ${attention}`);
console.log(`model matmul FLOPs per forward (batch ${B}): ${(flops / 1e9).toFixed(2)} GFLOP; ` +
  `ort ${ort.env.versions.common}, cpu ${process.arch}`);

const weights = randomWeights(cfg);
const x = float32(d.inputShape(B), randomFill(d.inputShape(B).reduce((a, b) => a * b, 1), 9, 1));
const inputs = {
  x,
  timesteps: new Float32Array(B).fill(500.5),
  ...(d.variant === 'text' ? { context: float32([B, d.extras - 1, cfg.clip_dim!], randomFill(B * (d.extras - 1) * cfg.clip_dim!, 11, 1)) } : {}),
  ...(d.variant === 'class' ? { y: BigInt64Array.from({ length: B }, () => 0n) } : {}),
};

const results: Record<string, unknown>[] = [];
for (const threads of values.threads.split(',').map(Number)) {
  const engine = await Engine.create({ config: cfg, weights, threads, attention });
  const peaks: number[] = [];
  const fwd: number[] = [];
  for (let r = 0; r < rounds; r++) {
    peaks.push(await matmulPeak(threads));
    fwd.push(await timeIt(() => engine.forward(inputs), 1000, 2));
  }
  await engine.release();
  const peak = median(peaks);
  const ms = median(fwd);
  const achieved = flops / (ms * 1e6);
  const row = { threads, batch: B, matmulPeakGflops: peak, forwardMs: ms, modelGflop: flops / 1e9, achievedGflops: achieved, mfu: achieved / peak };
  results.push(row);
  console.log(`threads ${threads}: MatMul [2048,1024]x[1024,4096] ${peak.toFixed(1)} GFLOP/s | forward ${ms.toFixed(1)} ms ` +
    `= ${achieved.toFixed(1)} GFLOP/s | MFU ${(100 * achieved / peak).toFixed(1)} % of MatMul peak (goal >= 60 %)`);
  console.log(`  per-round peaks [${peaks.map((p) => p.toFixed(0))}] forward ms [${fwd.map((p) => p.toFixed(0))}]`);
}
if (values.json) writeFileSync(values.json, JSON.stringify({ config: cfgPath ?? 'fallback', attention, results }, null, 2));
