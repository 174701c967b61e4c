// uvit forward: one network forward on .npy inputs, whole or split into stages.
import { writeNpy } from '../../model/npy.ts';
import { derive } from '../../model/config.ts';
import { str, type Command } from '../command.ts';
import { readConfigFlag, requireFile, requireOutputDir, shapeStr } from '../io.ts';
import { readConditioning, readLatent, readTimesteps } from '../inputs.ts';
import { buildReport, writeReport } from '../report.ts';
import { MODEL_OPTIONS, openRunner, RUN_OPTIONS, runSetup } from './common.ts';

export const forwardCommand: Command = {
  name: 'forward',
  summary: 'run the network once: eps = model(x, t, y | context)',
  usage:
    'forward --config C.json --weights W.safetensors --x X.npy --t T.npy [--y Y.npy | --context CTX.npy] --out OUT.npy\n' +
    '       [--stages N] [--partition sequential|folded|auto] [--threads K] [--ep cpu|cuda] [--device-id K] [--report R.json]',
  options: {
    ...MODEL_OPTIONS,
    x: { type: 'string', value: 'X.npy', required: true, help: "input latents [B,C,S,S] (video: [B,C,F',S,S]) float32" },
    t: { type: 'string', value: 'T.npy', required: true, help: 'network times [B] (float; sampling uses t_continuous*1000)' },
    y: { type: 'string', value: 'Y.npy', help: 'class labels [B] int64 (class-conditional models)' },
    context: { type: 'string', value: 'CTX.npy', help: 'text context [B,num_clip_token,clip_dim] float32 (text models)' },
    out: { type: 'string', value: 'OUT.npy', required: true, help: 'where to write eps (same shape as x, float32)' },
    ...RUN_OPTIONS,
  },
  async run(v, ctx) {
    const t0 = performance.now();
    const setup = runSetup('forward', v);
    const cfg = readConfigFlag(str(v.config)!);
    const d = derive(cfg);
    requireFile('weights', str(v.weights)!);
    const x = readLatent('x', str(v.x)!, d);
    const B = x.dims[0];
    const timesteps = readTimesteps(str(v.t)!, B);
    const cond = readConditioning(cfg, d, B, str(v.y), str(v.context));
    const out = requireOutputDir('out', str(v.out)!);
    const report = str(v.report);
    if (report) requireOutputDir('report', report);
    const runner = await openRunner(cfg, str(v.weights)!, setup, ctx);
    try {
      const eps = await runner.forward({ x, timesteps, ...cond });
      writeNpy(out, eps);
      const wallMs = performance.now() - t0;
      if (report) writeReport(report, buildReport('forward', runner, wallMs, setup, { batch: B, inputShape: x.dims }));
      ctx.log(`forward: eps ${shapeStr(eps.dims)} -> ${out} (${runner.plan.numStages} stage${runner.plan.numStages > 1 ? 's' : ''}, ${runner.plan.partition}, ${wallMs.toFixed(0)} ms)`);
    } finally {
      await runner.release();
    }
  },
};
