// The ONNX engine against the official PyTorch golden vectors (docs/model.md §7): output and every intermediate <= 1e-4.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../shared/tensor.ts';
import { Engine, type ForwardResult } from '../../gpu-backend/engine/engine.ts';
import { parseConfig } from '../../gpu-backend/model/config.ts';
import { readNpy } from '../../gpu-backend/model/npy.ts';
import { GOLDEN_DIR } from '../golden.ts';

const dir = GOLDEN_DIR;
const caseJson = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8'));
const cfg = parseConfig(caseJson.config);

function maxAbs(a: Tensor, b: Tensor): number {
  expect(a.dims).toEqual(b.dims);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  return m;
}

describe('golden a_cls_conv (official libs/uvit.py, float32)', () => {
  let engine: Engine;
  let res: ForwardResult;
  beforeAll(async () => {
    engine = await Engine.create({ config: cfg, weightsPath: join(dir, 'weights.safetensors'), intermediates: true, threads: 1 });
    res = await engine.forwardDetailed({
      x: readNpy(join(dir, 'input_x.npy')) as Tensor<'float32'>,
      timesteps: readNpy(join(dir, 'input_timesteps.npy')) as Tensor<'float32'>,
      y: readNpy(join(dir, 'input_y.npy')) as Tensor<'int64'>,
    });
  });
  afterAll(async () => engine?.release());

  it('output eps within 1e-4 max abs', () => {
    const err = maxAbs(res.eps, readNpy(join(dir, 'output.npy')));
    console.log(`golden a_cls_conv output max abs err ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-4);
  });

  for (const name of Object.keys(caseJson.intermediates)) {
    it(`intermediate ${name} within 1e-4 max abs`, () => {
      const got = res.intermediates.get(name);
      expect(got, `engine output ${name}`).toBeDefined();
      const err = maxAbs(got!, readNpy(join(dir, caseJson.intermediates[name].file)));
      console.log(`golden a_cls_conv ${name} max abs err ${err.toExponential(2)}`);
      expect(err).toBeLessThanOrEqual(1e-4);
    });
  }
});
