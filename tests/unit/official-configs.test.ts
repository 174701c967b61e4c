// The published checkpoints' configs (gpu-backend/model/officialConfigs.ts) describe exactly the state_dicts of the
// official classes: tensor count, parameter count and a digest of every "name:shape", taken from libs/uvit.py and
// libs/uvit_t2i.py on the meta device (tests/fixtures/pth/make.py --official-configs).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../gpu-backend/model/config.ts';
import { OFFICIAL_MODELS, officialModel } from '../../gpu-backend/model/officialConfigs.ts';
import { expectedParams } from '../../gpu-backend/model/weights.ts';

const official = JSON.parse(readFileSync(resolve(import.meta.dirname, '../fixtures/pth/official_shapes.json'), 'utf8')) as
  Record<string, { tensors: number; params: number; digest: string }>;

describe('official U-ViT configs', () => {
  it('every published checkpoint is listed', () => {
    expect(OFFICIAL_MODELS.map((m) => m.name).sort()).toEqual(Object.keys(official).sort());
    expect(() => officialModel('imagenet256_uvit_giant')).toThrow(/unknown official config "imagenet256_uvit_giant" \(known: cifar10_uvit_small,/);
  });

  it.each(OFFICIAL_MODELS.map((m) => [m.name, m] as const))('%s: the official state_dict, name for name and shape for shape', (name, m) => {
    const exp = expectedParams(parseConfig(m.nnet));
    const lines = [...exp].map(([k, s]) => `${k}:${s.join(',')}`).sort();
    expect(exp.size).toBe(official[name].tensors);
    expect([...exp.values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0)).toBe(official[name].params);
    expect(createHash('sha256').update(lines.join('\n')).digest('hex')).toBe(official[name].digest);
  });
});
