// uvit sample: DPM-Solver++ (or ancestral / re-noising sampling) from z_init with optional classifier-free guidance.
import type { Tensor } from '../../../shared/tensor.ts';
import { Rng } from '../../driver/rng.ts';
import { derive } from '../../model/config.ts';
import { writeNpy } from '../../model/npy.ts';
import { guidedEps, nullClassLabels, repeatContext, zerosContext, type Condition } from '../../sampler/guidance.ts';
import { sample } from '../../sampler/index.ts';
import { SOLVERS, type SolverName } from '../../sampler/types.ts';
import { intValue, numberValue, str, type Command } from '../command.ts';
import { readConfigFlag, readFloat32, requireFile, requireOutputDir, shapeStr } from '../io.ts';
import { readConditioning, readLatent } from '../inputs.ts';
import { buildReport, writeReport } from '../report.ts';
import { MODEL_OPTIONS, openRunner, RUN_OPTIONS, runSetup } from './common.ts';

export const sampleCommand: Command = {
  name: 'sample',
  summary: 'sample latents with DPM-Solver++ (official fast order 3, or 2M) or continuous-time DPM-Solver, and classifier-free guidance',
  usage:
    'sample --config C.json --weights W.safetensors --z-init Z.npy [--y Y.npy | --context CTX.npy] --steps N\n' +
    '       --solver dpmpp-fast3|dpmpp-2m|dpm-solver-fast|ancestral|renoise [--noise-seed K] --guidance S [--empty-context E.npy]\n' +
    '       [--stages N] --out OUT.npy',
  options: {
    ...MODEL_OPTIONS,
    'z-init': { type: 'string', value: 'Z.npy', required: true, help: "initial noise [B,C,S,S] (video: [B,C,F',S,S]) float32, x at t=1" },
    y: { type: 'string', value: 'Y.npy', help: 'class labels [B] int64 (class-conditional models; required for them)' },
    context: { type: 'string', value: 'CTX.npy', help: 'text context [B,num_clip_token,clip_dim] float32 (text models; required for them)' },
    steps: { type: 'string', value: 'N', default: '50', help: 'model evaluations (NFE); official scripts use 50' },
    solver: { type: 'string', value: 'NAME', choices: SOLVERS, default: 'dpmpp-fast3', help: 'sampler' },
    'noise-seed': { type: 'string', value: 'K', default: '0', help: 'ancestral, renoise: seed of the step noise (the driver PRNG, Rng(K))' },
    guidance: { type: 'string', value: 'S', default: '0', help: 'CFG scale s: eps = cond + s*(cond - uncond); applied only when s > 0' },
    'empty-context': {
      type: 'string',
      value: 'E.npy',
      help: 'text models, s > 0: unconditional context [num_clip_token,clip_dim] or [1|B,...] (default: zeros)',
    },
    'cfg-mode': {
      type: 'string',
      value: 'MODE',
      choices: ['batch', 'micro'],
      default: 'batch',
      help: 'run the CFG branches as one batch of 2B or as two micro-batches (same result)',
    },
    out: { type: 'string', value: 'OUT.npy', required: true, help: 'where to write the sampled latents (float32, shape of z-init)' },
    quiet: { type: 'boolean', help: 'no per-step progress on stderr' },
    ...RUN_OPTIONS,
  },
  notes: `
Time: the model is called at t_input = t_continuous * 1000 (float32), t from 1 down to 1/1000 on a time-uniform grid.
dpm-solver-fast (continuous-time checkpoints, eval.py / eval_ldm.py): the linear VP SDE, a log-SNR grid from 1 down to
1e-4, the model called at t_continuous * 999.
Class models: the unconditional branch uses the null class num_classes - 1.
Text models: the unconditional branch uses --empty-context (the CLIP encoding of "" in the official scripts); without
it, an all-zeros context is used (documented default; pass the real empty-string encoding for faithful results).`,
  async run(v, ctx) {
    const t0 = performance.now();
    const setup = runSetup('sample', v);
    const steps = intValue('sample', 'steps', v.steps)!;
    const solver = str(v.solver) as SolverName;
    const scale = numberValue('sample', 'guidance', v.guidance)!;
    const noiseSeed = intValue('sample', 'noise-seed', v['noise-seed'], 0)!;
    const cfg = readConfigFlag(str(v.config)!);
    const d = derive(cfg);
    requireFile('weights', str(v.weights)!);
    const z = readLatent('z-init', str(v['z-init'])!, d);
    const B = z.dims[0];
    const cond: Condition = readConditioning(cfg, d, B, str(v.y), str(v.context));
    const emptyPath = str(v['empty-context']);
    if (emptyPath && d.variant !== 'text') throw new Error(`--empty-context is for text models; the config describes a ${d.variant} model`);
    let uncond: Condition | undefined;
    if (scale > 0) {
      if (d.variant === 'class') uncond = { y: nullClassLabels(d.numClasses, B) };
      else if (d.variant === 'text') {
        const n = cfg.num_clip_token!;
        const c = cfg.clip_dim!;
        let empty: Tensor<'float32'> = zerosContext(1, n, c);
        if (emptyPath) {
          empty = readFloat32('empty-context', emptyPath);
          const dims = empty.dims;
          const tail = dims.slice(-2);
          if (tail.length !== 2 || tail[0] !== n || tail[1] !== c || dims.length > 3) {
            throw new Error(`--empty-context: shape mismatch: ${emptyPath} has shape ${shapeStr(dims)}, expected [${n},${c}] or [1|${B},${n},${c}]`);
          }
        }
        uncond = { context: repeatContext(empty, B) };
      } else {
        throw new Error(`--guidance ${scale} > 0 needs a conditional model; the config describes an unconditional model (use --guidance 0)`);
      }
    }
    const out = requireOutputDir('out', str(v.out)!);
    const report = str(v.report);
    if (report) requireOutputDir('report', report);

    const runner = await openRunner(cfg, str(v.weights)!, setup, ctx);
    try {
      const epsFn = guidedEps({
        model: (inp) => runner.forward(inp),
        cond,
        uncond,
        scale,
        mode: str(v['cfg-mode']) as 'batch' | 'micro',
      });
      const quiet = v.quiet === true;
      const tStart = performance.now();
      const rng = new Rng(noiseSeed);
      const x = await sample(solver, epsFn, z, {
        steps,
        noise: () => rng.fillNormal(new Float32Array(z.data.length)),
        onStep: (i, total, tInput) => {
          if (!quiet) {
            const el = (performance.now() - tStart) / 1000;
            ctx.log(`step ${i + 1}/${total} t=${tInput.toFixed(4)} elapsed ${el.toFixed(1)}s`);
          }
        },
      });
      writeNpy(out, x);
      const wallMs = performance.now() - t0;
      if (report) {
        writeReport(report, buildReport('sample', runner, wallMs, setup, { batch: B, steps, solver, guidance: scale, cfgMode: v['cfg-mode'] }));
      }
      ctx.log(`sample: ${solver} ${steps} steps, guidance ${scale}: ${shapeStr(x.dims)} -> ${out} (${wallMs.toFixed(0)} ms)`);
    } finally {
      await runner.release();
    }
  },
};
