// The float64 reference forward against the official PyTorch golden case (docs/model.md §7), and proof that the
// comparison is sensitive to the deliberately wrong variants listed there.
import { describe, expect, it } from 'vitest';
import { float32, type Tensor } from '../../shared/tensor.ts';
import { readNpy } from '../../gpu-backend/model/npy.ts';
import { referenceForward } from '../../gpu-backend/model/reference.ts';
import { GOLDEN, loadGolden, maxAbsDiff } from './referenceUtil.ts';

const NAMES = ['tokens_after_pos_embed', 'in_blocks.0', 'in_blocks.1', 'in_blocks.2', 'mid_block', 'out_blocks.0',
  'out_blocks.1', 'out_blocks.2', 'norm', 'decoder_pred', 'unpatchified_before_final_layer'];

describe('reference forward vs golden a_cls_conv', () => {
  const g = loadGolden();
  const want = readNpy(`${GOLDEN}/output.npy`);
  const r = referenceForward(g.cfg, g.weights, g.inputs);

  it('output and every intermediate within 1e-4 (measured ~1e-6)', () => {
    const figures: Record<string, number> = { output: maxAbsDiff(r.output, want) };
    expect([...r.intermediates.keys()]).toEqual(NAMES);
    for (const k of NAMES) figures[k] = maxAbsDiff(r.intermediates.get(k)!, readNpy(`${GOLDEN}/intermediates/${k}.npy`));
    console.log('reference vs golden max abs:', JSON.stringify(figures));
    for (const [k, v] of Object.entries(figures)) {
      expect(v, k).toBeLessThanOrEqual(1e-4);
      // float32 timestep arithmetic like torch: everything agrees to a few float32 ulps
      expect(v, k).toBeLessThanOrEqual(1e-5);
    }
  });

  it('float64 timestep arithmetic still meets 1e-4 (time token off by ~1.5e-5, docs/model.md §3.2 precision note)', () => {
    const r64 = referenceForward(g.cfg, g.weights, g.inputs, { timestepPrecision: 'float64' });
    expect(maxAbsDiff(r64.output, want)).toBeLessThanOrEqual(1e-4);
    const tok = maxAbsDiff(r64.intermediates.get('tokens_after_pos_embed')!, readNpy(`${GOLDEN}/intermediates/tokens_after_pos_embed.npy`));
    expect(tok).toBeLessThanOrEqual(1e-4);
    expect(tok).toBeGreaterThan(1e-6); // the two modes really differ
  });

  describe('the comparison catches the deliberately wrong variants of docs/model.md §7', () => {
    const D = 64;
    const swapSkip = () => {
      const w = new Map(g.weights);
      for (let j = 0; j < 3; j++) {
        const k = `out_blocks.${j}.skip_linear.weight`;
        const src = g.weights.get(k)!.data;
        const dst = new Float32Array(src.length);
        for (let o = 0; o < D; o++) {
          for (let i = 0; i < D; i++) {
            dst[o * 2 * D + i] = src[o * 2 * D + D + i];
            dst[o * 2 * D + D + i] = src[o * 2 * D + i];
          }
        }
        w.set(k, float32([D, 2 * D], dst));
      }
      return w;
    };
    // decoder rows permuted so that the correct (p1,p2,C) unpatchify acts like a wrong (C,p1,p2) one
    const cppUnpatchify = () => {
      const w = new Map(g.weights);
      const p = 2;
      const C = 4;
      const src = g.weights.get('decoder_pred.weight')!.data;
      const bsrc = g.weights.get('decoder_pred.bias')!.data;
      const dst = new Float32Array(src.length);
      const bdst = new Float32Array(bsrc.length);
      for (let c = 0; c < C; c++) {
        for (let p1 = 0; p1 < p; p1++) {
          for (let p2 = 0; p2 < p; p2++) {
            const right = (p1 * p + p2) * C + c; // row the correct unpatchify reads for (c, p1, p2)
            const wrongRow = (c * p + p1) * p + p2; // row a (C,p,p) unpatchify would read
            dst.set(src.subarray(wrongRow * D, wrongRow * D + D), right * D);
            bdst[right] = bsrc[wrongRow];
          }
        }
      }
      w.set('decoder_pred.weight', float32([16, D], dst));
      w.set('decoder_pred.bias', float32([16], bdst));
      return w;
    };
    const cases: Array<[string, number, () => Tensor]> = [
      ['sin-first embedding', 1e-2, () => referenceForward(g.cfg, g.weights, g.inputs, { wrong: { sinFirst: true } }).output],
      // measured 1.1e-4; the reference itself agrees to 1.7e-6
      ['tanh GELU', 5e-5, () => referenceForward(g.cfg, g.weights, g.inputs, { wrong: { tanhGelu: true } }).output],
      ['skip concat [skip, x]', 1, () => referenceForward(g.cfg, swapSkip(), g.inputs).output],
      ['(C,p,p) unpatchify', 1, () => referenceForward(g.cfg, cppUnpatchify(), g.inputs).output],
    ];
    it.each(cases)('%s moves the output by more than %s', (_name, min, run) => {
      const d = maxAbsDiff(run(), want);
      console.log(`${_name}: max abs vs golden ${d.toExponential(2)}`);
      expect(d).toBeGreaterThan(min);
    });
  });
});
