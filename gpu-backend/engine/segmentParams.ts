// The official parameter names one segment needs (its shard), from the model package's own lists.
import type { UViTConfig } from '../model/config.ts';
import { embedParams, headParams, paramsOfChainBlock } from '../model/weights.ts';
import type { Segment } from '../partition/types.ts';

export function segmentParamNames(cfg: UViTConfig, s: Pick<Segment, 'start' | 'end' | 'embed' | 'head'>): string[] {
  const names: string[] = [];
  if (s.embed) names.push(...embedParams(cfg));
  for (let c = s.start; c < s.end; c++) names.push(...paramsOfChainBlock(cfg, c));
  if (s.head) names.push(...headParams(cfg));
  return names;
}
