// uvit init-weights: seeded random weights with the official names (random demo weights, not trained ones).
import { intValue, numberValue, str, type Command } from '../command.ts';
import { readConfigFlag, requireOutputDir } from '../io.ts';
import { MODEL_OPTIONS } from './common.ts';

export const initWeightsCommand: Command = {
  name: 'init-weights',
  summary: 'write seeded random weights (official init + N(0, perturb^2)) as safetensors with the official names',
  usage: 'init-weights --config C.json --seed N --out W.safetensors [--dtype F32|F16|BF16] [--perturb P]',
  options: {
    config: MODEL_OPTIONS.config,
    seed: { type: 'string', value: 'N', required: true, help: 'random seed (integer >= 0); same seed, same weights' },
    out: { type: 'string', value: 'W.safetensors', required: true, help: 'output file' },
    dtype: { type: 'string', value: 'D', choices: ['F32', 'F16', 'BF16'], default: 'F32', help: 'stored dtype' },
    perturb: { type: 'string', value: 'P', default: '0.05', help: 'std of the noise added to every parameter (0 = plain official init)' },
  },
  async run(v, ctx) {
    const seed = intValue('init-weights', 'seed', v.seed, 0)!;
    const perturb = numberValue('init-weights', 'perturb', v.perturb)!;
    if (perturb < 0) throw new Error(`--perturb must be >= 0, got ${perturb}`);
    const cfg = readConfigFlag(str(v.config)!);
    const out = requireOutputDir('out', str(v.out)!);
    const { initWeightsToFile } = await import('../../model/initWeights.ts');
    const t0 = performance.now();
    let last = 0;
    initWeightsToFile(cfg, seed, out, {
      perturb,
      dtype: str(v.dtype) as 'F32' | 'F16' | 'BF16',
      onProgress: (done, total) => {
        if (performance.now() - last > 2000 || done === total) {
          last = performance.now();
          ctx.log(`init-weights: ${done}/${total} tensors`);
        }
      },
    });
    ctx.log(`init-weights: seed ${seed} -> ${out} (${(performance.now() - t0).toFixed(0)} ms)`);
  },
};
