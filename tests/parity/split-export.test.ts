// exportPlan (uvit export): segment ONNX files with external data + plan.json; running the exported files in route
// order with a local skip map (what the stage processes do over TCP) reproduces the golden output and the
// in-process Engine exactly.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import type { Tensor } from '../../shared/tensor.ts';
import { Engine } from '../../gpu-backend/engine/engine.ts';
import { createSession } from '../../gpu-backend/engine/session.ts';
import { parseConfig } from '../../gpu-backend/model/config.ts';
import { readNpy } from '../../gpu-backend/model/npy.ts';
import { exportPlan } from '../../gpu-backend/partition/export.ts';
import { readPlanFile } from '../../gpu-backend/partition/planFile.ts';
import { segmentParams } from '../../gpu-backend/partition/plan.ts';
import { modelInfoFromConfig } from '../../gpu-backend/partition/configInfo.ts';
import { TENSOR } from '../../gpu-backend/model/chain.ts';
import { GOLDEN_DIR } from '../golden.ts';

const gdir = GOLDEN_DIR;
const cfg = parseConfig(JSON.parse(readFileSync(join(gdir, 'case.json'), 'utf8')).config);
const x = readNpy(join(gdir, 'input_x.npy')) as Tensor<'float32'>;
const t = readNpy(join(gdir, 'input_timesteps.npy')) as Tensor<'float32'>;
const y = readNpy(join(gdir, 'input_y.npy')) as Tensor<'int64'>;
const golden = readNpy(join(gdir, 'output.npy')) as Tensor<'float32'>;
const out = mkdtempSync(join(tmpdir(), 'uvit-export-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('exportPlan', () => {
  for (const [S, partition] of [[3, 'folded'], [2, 'sequential'], [2, 'auto']] as const) {
    it(`S=${S} ${partition}: exported files run stage by stage give the golden output`, async () => {
      const dir = join(out, `${partition}-${S}`);
      const ex = exportPlan({ config: cfg, weightsPath: join(gdir, 'weights.safetensors'), numStages: S, partition, outDir: dir });
      const lp = readPlanFile(ex.planPath);
      expect(lp.plan).toEqual(ex.plan);
      expect(lp.segmentPaths.every((p) => existsSync(p) && existsSync(`${p}.data`))).toBe(true);
      expect((lp.file.cost as { requested: string }).requested).toBe(partition);
      // each .onnx.data holds exactly its segment's shard (float32, no other tensors)
      for (const seg of lp.plan.segments) {
        const bytes = readFileSync(`${lp.segmentPaths[seg.index]}.data`).length;
        const info = modelInfoFromConfig(cfg);
        const own = segmentParams(info, seg).reduce((a, n) => a + info.paramBytes(n), 0);
        expect(bytes).toBeGreaterThanOrEqual(0.9 * own); // small tensors may stay inline in the .onnx
        expect(bytes).toBeLessThanOrEqual(own + 4096 * 64); // alignment padding only
      }
      const sessions = await Promise.all(lp.segmentPaths.map((p) => createSession(p, { threads: 1 })));
      try {
        const skips = new Map<number, ort.Tensor>();
        let h: ort.Tensor | undefined;
        let eps: ort.Tensor | undefined;
        for (const seg of lp.plan.segments) {
          const feeds: Record<string, ort.Tensor> = seg.embed
            ? {
                [TENSOR.x]: new ort.Tensor('float32', x.data, x.dims),
                [TENSOR.timesteps]: new ort.Tensor('float32', t.data, t.dims),
                [TENSOR.y]: new ort.Tensor('int64', y.data, y.dims),
              }
            : { [TENSOR.hIn]: h! };
          for (const i of seg.skipsIn) feeds[TENSOR.skip(i)] = skips.get(i)!;
          const r = await sessions[seg.index].run(feeds);
          for (const i of seg.skipsOut) skips.set(i, r[TENSOR.skip(i)]);
          if (seg.head) eps = r[TENSOR.eps];
          else h = r[TENSOR.hOut];
        }
        const got = eps!.data as Float32Array;
        expect(maxAbs(got, golden.data)).toBeLessThanOrEqual(1e-4);
        const engine = await Engine.create({ config: cfg, weightsPath: join(gdir, 'weights.safetensors'), threads: 1 });
        try {
          const ref = await engine.forward({ x, timesteps: t, y });
          expect(maxAbs(got, ref.data)).toBeLessThanOrEqual(1e-5);
        } finally {
          await engine.release();
        }
      } finally {
        for (const s of sessions) await s.release();
      }
    });
  }
});
