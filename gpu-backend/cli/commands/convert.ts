// uvit convert: an official PyTorch checkpoint (.pth, read without Python) -> safetensors, optionally checked against
// a U-ViT config given by official name, JSON file or inline JSON. Nothing is written for a refused input.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfig, parseConfig, type UViTConfig } from '../../model/config.ts';
import { officialModel } from '../../model/officialConfigs.ts';
import { str, UsageError, type Command } from '../command.ts';
import { requireFile, requireOutputDir } from '../io.ts';

/** --config: an official config name (imagenet256_uvit_huge ...), a JSON file, or inline JSON */
export function configArg(arg: string): UViTConfig {
  if (arg.trimStart().startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(arg);
    } catch (e) {
      throw new Error(`--config: inline JSON does not parse: ${(e as Error).message}`);
    }
    return parseConfig(json, ' (--config)');
  }
  if (existsSync(arg)) return loadConfig(arg);
  return parseConfig(officialModel(arg).nnet, ` ${arg}`);
}

export const convertCommand: Command = {
  name: 'convert',
  summary: 'convert an official .pth checkpoint to safetensors (no Python; only tensor data is read from the pickle)',
  usage: 'convert --in MODEL.pth --out MODEL.safetensors [--config NAME|C.json|JSON]',
  options: {
    in: { type: 'string', value: 'MODEL.pth', required: true, help: 'torch.save(state_dict) checkpoint (zip format), or safetensors' },
    out: { type: 'string', value: 'MODEL.safetensors', required: true, help: 'output file (written only if everything checks out)' },
    config: { type: 'string', value: 'NAME|C.json|JSON', help: 'check the tensors against this U-ViT config: an official name (imagenet256_uvit_huge, ...), a JSON file or inline JSON' },
  },
  notes: `
The pickle inside a .pth is read by an allow-list: the opcodes torch.save(state_dict) writes and the globals
collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and torch.{Float,Half,
BFloat16}Storage. Anything else is refused with its name and never executed. Tensors keep their dtype (F32/F16/BF16).
Every --weights flag also takes a .pth directly; converting once saves re-reading the pickle at each start.`,
  async run(v, ctx) {
    const t0 = performance.now();
    const inPath = requireFile('in', str(v.in)!);
    const out = requireOutputDir('out', str(v.out)!);
    if (resolve(inPath) === resolve(out)) throw new UsageError('uvit convert: --in and --out are the same file');
    const cfg = str(v.config) === undefined ? undefined : configArg(str(v.config)!);
    const { convertToSafetensors } = await import('../../model/convert.ts');
    const r = convertToSafetensors(inPath, out, cfg);
    ctx.log(`convert: ${r.tensors} tensors (${r.dtypes.join(', ')})${cfg ? ', match the config' : ''} -> ${out} (${(performance.now() - t0).toFixed(0)} ms)`);
  },
};
