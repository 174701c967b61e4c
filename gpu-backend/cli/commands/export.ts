// uvit export: one ONNX model per plan segment (each built from its stage's shard only) + the plan JSON.
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Tensor } from '../../../shared/tensor.ts';
import { str, type Command } from '../command.ts';
import { readConfigFlag, requireFile } from '../io.ts';
import { makePlan, PARTITIONS, runSetup } from './common.ts';

const EXTERNAL_DATA_OVER = 1.5 * 2 ** 30;

export const exportCommand: Command = {
  name: 'export',
  summary: 'write the stage ONNX models (one per segment) and plan.json for a split',
  usage: 'export --config C.json --weights W.safetensors --stages N --partition sequential|folded|auto --out DIR',
  options: {
    config: { type: 'string', value: 'C.json', required: true, help: 'model config JSON' },
    weights: { type: 'string', value: 'W.safetensors', required: true, help: 'weights (official names)' },
    stages: { type: 'string', value: 'N', required: true, help: 'number of pipeline stages' },
    partition: { type: 'string', value: 'P', required: true, choices: PARTITIONS, help: 'split kind' },
    out: { type: 'string', value: 'DIR', required: true, help: 'output directory (created if missing)' },
  },
  notes: `
Writes DIR/plan.json (format "uvit-plan": config, weights path relative to DIR, segment files, plan) and
DIR/segment-<i>-stage-<k>.onnx for every segment i (folded splits give a stage two segments). Segments whose
parameters exceed 1.5 GiB store them as ONNX external data in <file>.data beside the model.`,
  async run(v, ctx) {
    const t0 = performance.now();
    const setup = runSetup('export', v);
    const cfg = readConfigFlag(str(v.config)!);
    const weightsPath = resolve(requireFile('weights', str(v.weights)!));
    const dir = resolve(str(v.out)!);
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`--out: ${dir} exists and is not a directory`);
    const plan = await makePlan(cfg, setup);
    const { loadWeights } = await import('../../model/weights.ts');
    const { buildSegmentModel } = await import('../../model/build/segment.ts');
    const { segmentParamNames } = await import('../../engine/segmentParams.ts');
    const { defaultSegmentFile, makePlanFile, writePlanFile } = await import('../../partition/planFile.ts');
    const { choosePartition } = await import('../../partition/index.ts');
    // validate the weights against the config before creating anything
    loadWeights(weightsPath, cfg, []);
    mkdirSync(dir, { recursive: true });
    const files = plan.segments.map((_, i) => defaultSegmentFile(plan, i));
    for (const st of plan.stages) {
      const names = st.segments.flatMap((i) => segmentParamNames(cfg, plan.segments[i]));
      const weights: Map<string, Tensor<'float32'>> = loadWeights(weightsPath, cfg, names);
      for (const i of st.segments) {
        const seg = plan.segments[i];
        const segBytes = segmentParamNames(cfg, seg).reduce((a, k) => a + weights.get(k)!.data.byteLength, 0);
        const path = join(dir, files[i]);
        const ext = segBytes > EXTERNAL_DATA_OVER ? { externalDataPath: `${path}.data` } : {};
        writeFileSync(path, buildSegmentModel(cfg, weights, seg, ext));
        ctx.log(`export: stage ${st.stage} segment ${i} blocks [${seg.start}, ${seg.end}) -> ${files[i]}${ext.externalDataPath ? ' (+ external data)' : ''}`);
      }
      weights.clear();
    }
    let cost: unknown;
    if (setup.partition === 'auto') {
      const c = choosePartition(cfg, setup.stages);
      cost = { chosen: c.chosen, sequential: c.sequential, folded: c.folded };
    }
    const planPath = join(dir, 'plan.json');
    writePlanFile(planPath, makePlanFile({ config: cfg, weights: relative(dir, weightsPath), plan, segmentFiles: files, cost }));
    ctx.out(planPath);
    ctx.log(`export: ${plan.segments.length} segment(s) on ${plan.numStages} stage(s), ${plan.partition} -> ${dir} (${(performance.now() - t0).toFixed(0)} ms)`);
  },
};
