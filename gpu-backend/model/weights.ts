// Official state_dict names and shapes (docs/model.md §2, video shapes §8), shard lists per chain block, and validation
// of a weights file (safetensors or .pth) against a config.
import { float32, type Tensor } from '../../shared/tensor.ts';
import { chain } from './chain.ts';
import { derive, type UViTConfig } from './config.ts';
import { listNames, openTensorFile, tensorProblems, type TensorReader } from './tensorFile.ts';

/** parameters of one transformer block, in module registration order (norm1, attn, norm2, mlp, skip_linear) */
function blockParams(cfg: UViTConfig, prefix: string, skip: boolean): Array<[string, number[]]> {
  const d = derive(cfg);
  const { D, hidden } = d;
  const out: Array<[string, number[]]> = [
    [`${prefix}.norm1.weight`, [D]],
    [`${prefix}.norm1.bias`, [D]],
    [`${prefix}.attn.qkv.weight`, [3 * D, D]],
  ];
  if (cfg.qkv_bias) out.push([`${prefix}.attn.qkv.bias`, [3 * D]]);
  out.push(
    [`${prefix}.attn.proj.weight`, [D, D]],
    [`${prefix}.attn.proj.bias`, [D]],
    [`${prefix}.norm2.weight`, [D]],
    [`${prefix}.norm2.bias`, [D]],
    [`${prefix}.mlp.fc1.weight`, [hidden, D]],
    [`${prefix}.mlp.fc1.bias`, [hidden]],
    [`${prefix}.mlp.fc2.weight`, [D, hidden]],
    [`${prefix}.mlp.fc2.bias`, [D]],
  );
  if (skip && cfg.skip) out.push([`${prefix}.skip_linear.weight`, [D, 2 * D]], [`${prefix}.skip_linear.bias`, [D]]);
  return out;
}

function embedList(cfg: UViTConfig): Array<[string, number[]]> {
  const d = derive(cfg);
  const { D, C, p, pt } = d;
  const out: Array<[string, number[]]> = [
    ['pos_embed', [1, d.T, D]],
    ['patch_embed.proj.weight', d.video ? [D, C, pt, p, p] : [D, C, p, p]],
    ['patch_embed.proj.bias', [D]],
  ];
  if (cfg.mlp_time_embed) {
    out.push(
      ['time_embed.0.weight', [4 * D, D]],
      ['time_embed.0.bias', [4 * D]],
      ['time_embed.2.weight', [D, 4 * D]],
      ['time_embed.2.bias', [D]],
    );
  }
  if (d.variant === 'class') out.push(['label_emb.weight', [d.numClasses, D]]);
  if (d.variant === 'text') out.push(['context_embed.weight', [D, cfg.clip_dim!]], ['context_embed.bias', [D]]);
  return out;
}

function headList(cfg: UViTConfig): Array<[string, number[]]> {
  const d = derive(cfg);
  const { D, C, p, pt } = d;
  const out: Array<[string, number[]]> = [
    ['norm.weight', [D]],
    ['norm.bias', [D]],
    ['decoder_pred.weight', [pt * p * p * C, D]],
    ['decoder_pred.bias', [pt * p * p * C]],
  ];
  if (cfg.conv) out.push(['final_layer.weight', d.video ? [C, C, 3, 3, 3] : [C, C, 3, 3]], ['final_layer.bias', [C]]);
  return out;
}

function chainList(cfg: UViTConfig, c: number): Array<[string, number[]]> {
  const { n, numBlocks } = derive(cfg);
  if (!Number.isInteger(c) || c < 0 || c >= numBlocks) {
    throw new Error(`chain index ${c} out of range [0, ${numBlocks}) for depth ${cfg.depth}`);
  }
  return blockParams(cfg, chain.name(n, c), c > n);
}

/** every official parameter name -> shape, in order: embed, chain blocks 0..2n, head */
export function expectedParams(cfg: UViTConfig): Map<string, number[]> {
  const { numBlocks } = derive(cfg);
  const m = new Map<string, number[]>(embedList(cfg));
  for (let c = 0; c < numBlocks; c++) for (const [k, v] of chainList(cfg, c)) m.set(k, v);
  for (const [k, v] of headList(cfg)) m.set(k, v);
  return m;
}

/** parameter names of chain block c (in_blocks.i = i, mid_block = n, out_blocks.j = n+1+j) */
export function paramsOfChainBlock(cfg: UViTConfig, c: number): string[] {
  return chainList(cfg, c).map(([k]) => k);
}

/** pos_embed, patch_embed.*, time_embed.* (if mlp), label_emb / context_embed */
export function embedParams(cfg: UViTConfig): string[] {
  return embedList(cfg).map(([k]) => k);
}

/** norm.*, decoder_pred.*, final_layer.* (if conv) */
export function headParams(cfg: UViTConfig): string[] {
  return headList(cfg).map(([k]) => k);
}

/** Throws one Error listing every missing, unexpected, mis-shaped or non-float tensor. */
export function validateWeightsFile(file: TensorReader, cfg: UViTConfig): void {
  const problems = tensorProblems(file, expectedParams(cfg));
  if (problems.length === 0) return;
  const d = derive(cfg);
  const hints: string[] = [];
  const fileBlocks = file.names.filter((k) => /^in_blocks\.\d+\.norm1\.weight$/.test(k)).length;
  if (fileBlocks !== d.n) hints.push(`the file has ${fileBlocks} in_blocks, config depth ${cfg.depth} gives ${d.n}`);
  const fileVariant = file.has('label_emb.weight') ? 'class' : file.has('context_embed.weight') ? 'text' : 'uncond';
  if (fileVariant !== d.variant) hints.push(`the file looks ${fileVariant}-conditioned, the config is ${d.variant}`);
  if (file.has('final_layer.weight') !== cfg.conv) hints.push(`conv=${cfg.conv} in the config, but the file ${cfg.conv ? 'lacks' : 'has'} final_layer`);
  const pe = file.has('patch_embed.proj.weight') ? file.info('patch_embed.proj.weight').shape.length : 0;
  if (pe && (pe === 5) !== d.video) hints.push(`the file's patch_embed is ${pe === 5 ? '3-D (video)' : '2-D'}, the config is ${d.video ? 'video' : '2-D'}`);
  throw new Error(`weights ${file.path} do not match the config: ${problems.join('; ')}` +
    (hints.length ? ` (hint: ${hints.join('; ')})` : ''));
}

/**
 * Open a weights file (safetensors or .pth), validate its whole header against cfg, and read `names` (default: all) as float32 tensors.
 * Only the requested tensors' bytes are read.
 */
export function loadWeights(path: string, cfg: UViTConfig, names?: string[]): Map<string, Tensor<'float32'>> {
  const file = openTensorFile(path);
  try {
    validateWeightsFile(file, cfg);
    const exp = expectedParams(cfg);
    const want = names ?? [...exp.keys()];
    const unknown = want.filter((k) => !exp.has(k));
    if (unknown.length) throw new Error(`loadWeights ${path}: requested names not in the config's parameters: ${listNames(unknown)}`);
    const out = new Map<string, Tensor<'float32'>>();
    for (const k of want) out.set(k, float32([...exp.get(k)!], file.readFloat32(k)));
    return out;
  } finally {
    file.close();
  }
}
