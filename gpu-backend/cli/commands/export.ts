// uvit export: one ONNX model per plan segment + plan.json, through partition/export.ts exportPlan: each segment is
// built from its own tensors streamed from the weights file and written with its weights as external data, so the
// export holds about one segment's weights at a time (not a whole stage's), and stages open the files by path.
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { str, type Command } from '../command.ts';
import { readConfigFlag, requireFile } from '../io.ts';
import { makePlan, MODEL_OPTIONS, PARTITIONS, runSetup } from './common.ts';

export const exportCommand: Command = {
  name: 'export',
  summary: 'write the stage ONNX models (one per segment) and plan.json for a split',
  usage: 'export --config C.json --weights W.safetensors --stages N --partition sequential|folded|auto --out DIR',
  options: {
    ...MODEL_OPTIONS,
    stages: { type: 'string', value: 'N', required: true, help: 'number of pipeline stages' },
    partition: { type: 'string', value: 'P', required: true, choices: PARTITIONS, help: 'split kind' },
    out: { type: 'string', value: 'DIR', required: true, help: 'output directory (created if missing)' },
  },
  notes: `
Writes DIR/plan.json (format "uvit-plan": config, weights path relative to DIR, segment files, plan, cost-model
figures) and DIR/segment-<i>-stage-<k>.onnx for every segment i (folded splits give a stage two segments), each with
its weights as ONNX external data in <file>.data beside it.`,
  async run(v, ctx) {
    const t0 = performance.now();
    const setup = runSetup('export', v);
    const cfg = readConfigFlag(str(v.config)!);
    const weightsPath = resolve(requireFile('weights', str(v.weights)!));
    const dir = resolve(str(v.out)!);
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`--out: ${dir} exists and is not a directory`);
    await makePlan(cfg, setup); // checks --stages/--partition first, with the CLI's wording
    const { loadWeights } = await import('../../model/weights.ts');
    const { exportPlan } = await import('../../partition/export.ts');
    loadWeights(weightsPath, cfg, []); // validate the weights against the config before creating anything
    const r = exportPlan({
      config: cfg,
      weightsPath,
      numStages: setup.stages,
      partition: setup.partition,
      outDir: dir,
      relativeWeights: true,
      log: (line) => ctx.log(`export: ${line}`),
    });
    ctx.out(r.planPath);
    ctx.log(`export: ${r.plan.segments.length} segment(s) on ${r.plan.numStages} stage(s), ${r.plan.partition} -> ${dir} (${(performance.now() - t0).toFixed(0)} ms)`);
  },
};
