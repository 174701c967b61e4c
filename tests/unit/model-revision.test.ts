// The result cache's key carries the served model's revision (shared/lease.ts paramsHash, scripts/startStack.ts
// modelRevision): new weights or sampler settings under the same model id must not answer a repeated seeded request
// with the previous model's clip, which they did while the key was the request alone.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadGroupConfig } from '../../gpu-backend/serve/groupConfig.ts';
import { paramsHash, sha256Hex } from '../../shared/lease.ts';
import { edgeCatalogEntry, modelRevision } from '../../scripts/startStack.ts';
import type { PreparedModel } from '../../scripts/startModel.ts';

const SHAPES = 'models/uvit-t2v-shapes';
const tmp = mkdtempSync(join(tmpdir(), 'uvit-revision-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const prepared = (config: string): PreparedModel =>
  ({ modelId: 'uvit-t2v-shapes', cfg: loadGroupConfig(config), planPath: '', stageSettings: [], cached: true }) as PreparedModel;

/** a copy of the shapes model folder whose group.json points at its own files */
function copyModel(name: string, edit: (group: Record<string, any>) => void = () => {}): string {
  const group = JSON.parse(readFileSync(join(SHAPES, 'group.json'), 'utf8'));
  for (const f of ['model.json', 'weights.safetensors', 'text_encoder.safetensors', 'vocab.json']) {
    copyFileSync(join(SHAPES, f), join(tmp, `${name}-${f}`));
  }
  group.model = `${name}-model.json`;
  group.weights = `${name}-weights.safetensors`;
  group.text_encoder.tokenizer.vocab = `${name}-vocab.json`;
  group.build.text_encoder = `${name}-text_encoder.safetensors`;
  group.text_encoder.onnx = `${name}-text_encoder.onnx`;
  group.decoder.onnx = `${name}-decoder.onnx`;
  edit(group);
  writeFileSync(join(tmp, `${name}.json`), JSON.stringify(group));
  return join(tmp, `${name}.json`);
}

describe('the served model revision in the result-cache key', () => {
  it('without a revision the key is the canonical params hash; revisions give different keys', async () => {
    const canonical = JSON.stringify({ model: 'm', prompt: 'a red ball bouncing', seed: 42 });
    expect(await paramsHash(canonical)).toBe(await sha256Hex(canonical));
    const [a, b] = [await paramsHash(canonical, 'rev-a'), await paramsHash(canonical, 'rev-b')];
    expect(a).not.toBe(b);
    expect(a).not.toBe(await sha256Hex(canonical));
  });

  it('the local stack gives the edge a revision that follows the weights and the sampler settings', () => {
    const base = modelRevision(prepared(copyModel('a')));
    expect(edgeCatalogEntry(prepared(copyModel('a')))).toMatchObject({ id: 'uvit-t2v-shapes', revision: base });
    const other = copyModel('b', (g) => { g.sampler.solver = g.sampler.solver === 'renoise' ? 'ancestral' : 'renoise'; });
    expect(modelRevision(prepared(other))).not.toBe(base);
    const retrained = copyModel('a');
    const w = join(tmp, 'a-weights.safetensors');
    const bytes = readFileSync(w);
    bytes[bytes.length - 1] ^= 1; // one bit of one weight
    writeFileSync(w, bytes);
    expect(modelRevision(prepared(retrained))).not.toBe(base);
  });
});
