// Classifier-free guidance: formula, null class / empty context, one batch of 2B == two micro-batches, s=0 skips uncond.
import { describe, expect, it } from 'vitest';
import {
  dpmSolverPPFast,
  guidedEps,
  nullClassLabels,
  repeatContext,
  zerosContext,
  type ModelFn,
  type ModelInputs,
} from '../../gpu-backend/sampler/index.ts';
import type { Tensor } from '../../shared/tensor.ts';

const B = 3;
const P = 8; // elements per sample
const x: Tensor<'float32'> = {
  dtype: 'float32',
  dims: [B, 2, 4],
  data: Float32Array.from({ length: B * P }, (_, i) => Math.sin(i * 1.7) * 1.3),
};

/** a per-sample fake network: depends on x, t and the sample's label or context (never on other rows) */
function fakeModel(calls: ModelInputs[], state = { inflight: 0, maxInflight: 0 }): ModelFn {
  return async (inp) => {
    calls.push(inp);
    state.inflight++;
    state.maxInflight = Math.max(state.maxInflight, state.inflight);
    await new Promise((r) => setTimeout(r, 1));
    const b = inp.x.dims[0];
    const per = inp.x.data.length / b;
    const out = new Float32Array(inp.x.data.length);
    for (let r = 0; r < b; r++) {
      let c = 0;
      if (inp.y) c = Number(inp.y.data[r]) * 0.1;
      if (inp.context) {
        const n = inp.context.data.length / b;
        for (let k = 0; k < n; k++) c += inp.context.data[r * n + k] * (k + 1) * 0.01;
      }
      for (let k = 0; k < per; k++) {
        const i = r * per + k;
        out[i] = Math.tanh(inp.x.data[i] + c) * (1 + inp.timesteps.data[r] / 2000);
      }
    }
    state.inflight--;
    return { dtype: 'float32', dims: [...inp.x.dims], data: out };
  };
}

const y: Tensor<'int64'> = { dtype: 'int64', dims: [B], data: BigInt64Array.from([1n, 7n, 3n]) };
const ctx: Tensor<'float32'> = {
  dtype: 'float32',
  dims: [B, 5, 2],
  data: Float32Array.from({ length: B * 10 }, (_, i) => Math.cos(i)),
};

describe('classifier-free guidance', () => {
  it('null class is num_classes − 1; empty context repeats over the batch; zeros default', () => {
    expect(Array.from(nullClassLabels(10, 2).data)).toEqual([9n, 9n]);
    expect(Array.from(nullClassLabels(1001, 1).data)).toEqual([1000n]);
    const e: Tensor<'float32'> = { dtype: 'float32', dims: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
    const r = repeatContext(e, 2);
    expect(r.dims).toEqual([2, 2, 3]);
    expect(Array.from(r.data)).toEqual([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
    expect(() => repeatContext({ ...e, dims: [6] }, 2)).toThrow(/empty context must be/);
    const z = zerosContext(2, 77, 8);
    expect(z.dims).toEqual([2, 77, 8]);
    expect(z.data.every((v) => v === 0)).toBe(true);
  });

  it('eps = cond + s·(cond − uncond) with the null class (class model)', async () => {
    const calls: ModelInputs[] = [];
    const model = fakeModel(calls);
    const s = 0.4;
    const eps = await guidedEps({ model, cond: { y }, uncond: { y: nullClassLabels(10, B) }, scale: s, mode: 'micro' })(x, 500);
    const cond = await model({ x, timesteps: { dtype: 'float32', dims: [B], data: new Float32Array(B).fill(500) }, y });
    const unc = await model({
      x,
      timesteps: { dtype: 'float32', dims: [B], data: new Float32Array(B).fill(500) },
      y: nullClassLabels(10, B),
    });
    for (let i = 0; i < eps.data.length; i++) {
      expect(eps.data[i]).toBeCloseTo(cond.data[i] + s * (cond.data[i] - unc.data[i]), 6);
    }
    expect(Array.from(calls[1].y!.data)).toEqual([9n, 9n, 9n]);
  });

  for (const kind of ['class', 'text'] as const) {
    it(`${kind}: one batch of 2B and two concurrent micro-batches give identical samples`, async () => {
      const cond = kind === 'class' ? { y } : { context: ctx };
      const uncond = kind === 'class' ? { y: nullClassLabels(10, B) } : { context: zerosContext(B, 5, 2) };
      const batchCalls: ModelInputs[] = [];
      const microCalls: ModelInputs[] = [];
      const microState = { inflight: 0, maxInflight: 0 };
      const a = await dpmSolverPPFast(guidedEps({ model: fakeModel(batchCalls), cond, uncond, scale: 3, mode: 'batch' }), x, {
        steps: 6,
      });
      const b = await dpmSolverPPFast(
        guidedEps({ model: fakeModel(microCalls, microState), cond, uncond, scale: 3, mode: 'micro' }),
        x,
        { steps: 6 },
      );
      expect(Array.from(a.data)).toEqual(Array.from(b.data));
      // batch: 6 calls of 2B, cond rows first; micro: 12 calls of B, two in flight at once
      expect(batchCalls.length).toBe(6);
      expect(batchCalls.every((c) => c.x.dims[0] === 2 * B && c.timesteps.dims[0] === 2 * B)).toBe(true);
      if (kind === 'class') expect(Array.from(batchCalls[0].y!.data)).toEqual([1n, 7n, 3n, 9n, 9n, 9n]);
      else expect(batchCalls[0].context!.dims).toEqual([2 * B, 5, 2]);
      expect(microCalls.length).toBe(12);
      expect(microCalls.every((c) => c.x.dims[0] === B)).toBe(true);
      expect(microState.maxInflight).toBe(2);
    });
  }

  it('scale 0 runs only the conditional branch (no uncond call), even with an uncond given', async () => {
    for (const mode of ['batch', 'micro'] as const) {
      const calls: ModelInputs[] = [];
      await dpmSolverPPFast(guidedEps({ model: fakeModel(calls), cond: { y }, uncond: { y: nullClassLabels(10, B) }, scale: 0, mode }), x, {
        steps: 4,
      });
      expect(calls.length).toBe(4);
      expect(calls.every((c) => c.x.dims[0] === B && Array.from(c.y!.data).join() === '1,7,3')).toBe(true);
    }
  });

  it('rejects s > 0 without an uncond branch, mixed kinds and batch mismatches', async () => {
    const model = fakeModel([]);
    expect(() => guidedEps({ model, cond: { y }, scale: 1 })).toThrow(/unconditional branch/);
    await expect(guidedEps({ model, cond: { y }, uncond: { context: ctx }, scale: 1 })(x, 10)).rejects.toThrow(/same kind/);
    await expect(
      guidedEps({ model, cond: { y: nullClassLabels(10, 2) }, scale: 0 })(x, 10),
    ).rejects.toThrow(/batch 2 does not match x batch 3/);
  });
});
