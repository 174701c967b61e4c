import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, derive, type UViTConfig } from '../../gpu-backend/model/config.ts';
import { expectedParams } from '../../gpu-backend/model/weights.ts';
import {
  choosePartition,
  dimsFromConfig,
  maxStages,
  modelInfoFromConfig,
  planCost,
  planFolded,
  planFor,
  planSequential,
} from '../../gpu-backend/partition/index.ts';
import type { Plan } from '../../gpu-backend/partition/types.ts';
import { chain } from '../../gpu-backend/model/chain.ts';
import {
  activationBytes,
  chainBlockParamCount,
  chainFlops,
  embedFlops,
  embedParamCount,
  headFlops,
  headParamCount,
  totalFlops,
} from '../../gpu-backend/partition/flops.ts';
import { specParamShapes } from '../../gpu-backend/partition/modelInfo.ts';
import { makePlanFile, readPlanFile, writePlanFile } from '../../gpu-backend/partition/planFile.ts';
import { GOLDEN_DIR } from '../golden.ts';

const golden = parseConfig(JSON.parse(readFileSync(`${GOLDEN_DIR}/case.json`, 'utf8')).config);
const CONFIGS: Record<string, UViTConfig> = {
  a_cls_conv: golden, // depth 7 -> n = 3
  text13: parseConfig({ img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 32, depth: 13, num_heads: 2, clip_dim: 16, num_clip_token: 5 }),
  uncond_mlp_qkvb: parseConfig({ img_size: 8, patch_size: 4, in_chans: 3, embed_dim: 24, depth: 5, num_heads: 3, mlp_time_embed: true, qkv_bias: true }),
  video_text: parseConfig({
    img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 48, depth: 9, num_heads: 3, clip_dim: 16, num_clip_token: 4,
    num_frames: 4, temporal_patch_size: 2,
  }),
  h2: parseConfig({ img_size: 32, patch_size: 2, in_chans: 4, embed_dim: 1152, depth: 28, num_heads: 16, num_classes: 1001, conv: false }),
};

const segOf = (plan: Plan, c: number) => plan.segments.findIndex((s) => c >= s.start && c < s.end);

function checkCommon(cfg: UViTConfig, plan: Plan) {
  const { n } = derive(cfg);
  const N = chain.length(n);
  // every chain block exactly once, in route order
  const blocks = plan.segments.flatMap((s) => Array.from({ length: s.end - s.start }, (_, k) => s.start + k));
  expect(blocks).toEqual(Array.from({ length: N }, (_, c) => c));
  expect(plan.segments[0].embed).toBe(true);
  expect(plan.segments.at(-1)!.head).toBe(true);
  expect(plan.segments.filter((s) => s.embed || s.head).length).toBe(plan.segments.length === 1 ? 1 : 2);
  // routes: out_blocks.j gets in_blocks.(n-1-j)
  for (let j = 0; j < n; j++) {
    const i = n - 1 - j;
    const r = plan.skips[i];
    expect(r.skip).toBe(i);
    expect(r.fromSegment).toBe(segOf(plan, i));
    expect(chain.name(n, chain.skipSource(n, i))).toBe(`out_blocks.${j}`);
    expect(r.toSegment).toBe(segOf(plan, chain.outBlock(n, j)));
    expect(r.crossesNetwork).toBe(plan.segments[r.fromSegment].stage !== plan.segments[r.toSegment].stage);
    if (r.fromSegment !== r.toSegment) {
      expect(plan.segments[r.fromSegment].skipsOut).toContain(i);
      expect(plan.segments[r.toSegment].skipsIn).toContain(i);
    }
  }
  // every official parameter on exactly one stage; bytes add up
  const exp = expectedParams(cfg);
  const all = plan.stages.flatMap((s) => s.params);
  expect(new Set(all).size).toBe(all.length);
  expect([...all].sort()).toEqual([...exp.keys()].sort());
  const bytes = (names: string[]) => names.reduce((a, k) => a + 4 * exp.get(k)!.reduce((x, y) => x * y, 1), 0);
  for (const st of plan.stages) expect(st.paramBytes).toBe(bytes(st.params));
  // FLOPs add up to the whole model
  const total = plan.stages.reduce((a, s) => a + s.flops, 0);
  expect(total).toBeCloseTo(totalFlops(dimsFromConfig(cfg)), -3);
}

describe('flops and parameter counts', () => {
  it('parameter counts from the dimensions equal the official shapes (model/weights.ts expectedParams) and the spec names', () => {
    for (const cfg of Object.values(CONFIGS)) {
      const d = dimsFromConfig(cfg);
      const exp = expectedParams(cfg);
      const numel = (k: string) => exp.get(k)!.reduce((a, b) => a * b, 1);
      let sum = embedParamCount(d) + headParamCount(d);
      for (let c = 0; c < chain.length(d.n); c++) sum += chainBlockParamCount(d, c);
      expect(sum).toBe([...exp.keys()].reduce((a, k) => a + numel(k), 0));
      expect([...specParamShapes(d).keys()].sort()).toEqual([...exp.keys()].sort());
    }
  });

  it('U-ViT-H/2 is ~500 M parameters and ~270 GFLOP per sample; out blocks cost more (skip_linear)', () => {
    const d = dimsFromConfig(CONFIGS.h2);
    const params = [...expectedParams(CONFIGS.h2).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    expect(params).toBeGreaterThan(495e6);
    expect(params).toBeLessThan(505e6);
    const f = chainFlops(d);
    // matmul part of one block: 2*T*(3D^2 + D^2 + 2*D*hidden) + 4*T^2*D
    const T = 258, D = 1152;
    const mm = 2 * T * (4 * D * D + 2 * D * 4 * D) + 4 * T * T * D;
    expect(f[0]).toBeGreaterThan(mm);
    expect(f[0]).toBeLessThan(mm * 1.02);
    expect(f[d.n + 1] - f[d.n]).toBeCloseTo(2 * T * 2 * D * D + T * D, -3);
    expect(totalFlops(d) / 1e9).toBeGreaterThan(250);
    expect(totalFlops(d) / 1e9).toBeLessThan(290);
    expect(activationBytes(d, 2)).toBe(2 * 258 * 1152 * 4);
    expect(embedFlops(d)).toBeGreaterThan(2 * 256 * 16 * 1152);
    expect(headFlops(d)).toBeGreaterThan(2 * 258 * 1152 * 16);
  });
});

describe('planner', () => {
  for (const [name, cfg] of Object.entries(CONFIGS)) {
    const { n } = derive(cfg);
    const Ss = [1, 2, 3, 4].filter((S) => S <= n + 1);
    for (const S of Ss) {
      it(`${name} (n=${n}) S=${S}: sequential`, () => {
        const plan = planSequential(cfg, S);
        checkCommon(cfg, plan);
        expect(plan.segments.length).toBe(S);
        plan.segments.forEach((s, k) => expect(s.stage).toBe(k));
        // a skip crosses iff a cut lies between in_i and its consumer
        const cuts = plan.segments.slice(1).map((s) => s.start);
        for (const r of plan.skips) {
          expect(r.crossesNetwork).toBe(cuts.some((c) => c > r.skip && c <= chain.skipSource(n, r.skip)));
        }
        // FLOP balance: the minimax contiguous split is within one block of the mean
        const d = dimsFromConfig(cfg);
        const w = chainFlops(d);
        w[0] += embedFlops(d);
        w[w.length - 1] += headFlops(d);
        const max = Math.max(...plan.stages.map((s) => s.flops));
        expect(max).toBeLessThanOrEqual(totalFlops(d) / S + Math.max(...w) + 1);
        // skip bytes the cost model counts = crossing skips x one activation
        const cost = planCost(modelInfoFromConfig(cfg), plan, { batch: 2 });
        const crossing = plan.skips.filter((r) => r.crossesNetwork).length;
        expect(cost.skipBytes).toBe(crossing * activationBytes(d, 2));
        expect(cost.hops.filter((h) => h.kind === 'stream').length).toBe(S - 1);
        if (S === 2) expect(crossing).toBeGreaterThan(0);
      });

      it(`${name} (n=${n}) S=${S}: folded`, () => {
        const plan = planFolded(cfg, S);
        checkCommon(cfg, plan);
        expect(plan.segments.length).toBe(2 * S - 1);
        expect(plan.segments.map((s) => s.stage)).toEqual(
          Array.from({ length: 2 * S - 1 }, (_, i) => Math.min(i, 2 * S - 2 - i)),
        );
        expect(plan.skips.filter((r) => r.crossesNetwork)).toEqual([]);
        // stage S-1 holds the mid block, and each stage's in-blocks mirror its out-blocks
        expect(plan.segments[segOf(plan, n)].stage).toBe(S - 1);
        for (let i = 0; i < n; i++) {
          expect(plan.segments[segOf(plan, i)].stage).toBe(plan.segments[segOf(plan, chain.skipSource(n, i))].stage);
        }
        const cost = planCost(modelInfoFromConfig(cfg), plan);
        expect(cost.skipBytes).toBe(0);
        expect(cost.hops.filter((h) => h.kind === 'stream').length).toBe(2 * (S - 1));
        expect(cost.streamBytes).toBe(2 * (S - 1) * activationBytes(dimsFromConfig(cfg), 1));
        // FLOP balance: within one (in, out) pair + mid of the mean
        const d = dimsFromConfig(cfg);
        const w = chainFlops(d);
        const pair = Math.max(...Array.from({ length: n }, (_, i) => w[i] + w[2 * n - i]));
        const max = Math.max(...plan.stages.map((s) => s.flops));
        expect(max).toBeLessThanOrEqual(totalFlops(d) / S + pair + w[n] + embedFlops(d) + headFlops(d));
      });
    }
  }

  it('S=1 is one segment [0, 2n+1) with embed and head, in both partitions', () => {
    for (const p of ['sequential', 'folded'] as const) {
      const plan = planFor(golden, 1, p);
      expect(plan.segments).toEqual([{ index: 0, stage: 0, start: 0, end: 7, embed: true, head: true, skipsIn: [], skipsOut: [] }]);
      expect(plan.skips.every((r) => r.fromSegment === 0 && r.toSegment === 0 && !r.crossesNetwork)).toBe(true);
    }
    const auto = choosePartition(golden, 1);
    expect(auto.chosen).toBe('sequential');
    expect(auto.plan.segments.length).toBe(1);
    expect(auto.folded!.forwardSec).toBe(auto.sequential.forwardSec);
  });

  it('golden depth 7, S=2 layouts', () => {
    const seq = planSequential(golden, 2);
    const fold = planFolded(golden, 2);
    expect(seq.segments.map((s) => [s.start, s.end])).toEqual([[0, 4], [4, 7]]);
    expect(seq.segments[0].skipsOut).toEqual([0, 1, 2]);
    expect(seq.segments[1].skipsIn).toEqual([0, 1, 2]);
    // folded: stage 0 = in_0, in_1 (+embed) and out_1, out_2 (+head): 4 blocks; stage 1 = in_2, mid, out_0: 3 blocks
    // (the other split, 2 blocks vs 5, has the larger maximum)
    expect(fold.segments.map((s) => [s.stage, s.start, s.end])).toEqual([[0, 0, 2], [1, 2, 5], [0, 5, 7]]);
    expect(fold.segments[0].skipsOut).toEqual([0, 1]);
    expect(fold.segments[2].skipsIn).toEqual([0, 1]);
    expect(fold.stages[0].params).toContain('label_emb.weight');
    expect(fold.stages[0].params).toContain('final_layer.weight');
    expect(fold.stages[0].params).toContain('out_blocks.2.skip_linear.weight');
    expect(fold.stages[1].params).toContain('mid_block.attn.qkv.weight');
  });

  it('the largest feasible S works and one more fails with a precise message', () => {
    const { n } = derive(golden); // 3
    expect(maxStages(n, 'sequential')).toBe(7);
    expect(maxStages(n, 'folded')).toBe(4);
    const seq = planSequential(golden, 7);
    expect(seq.segments.every((s) => s.end - s.start === 1)).toBe(true);
    const fold = planFolded(golden, 4);
    expect(fold.segments.map((s) => [s.start, s.end])).toEqual([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6], [6, 7]]);
    expect(() => planSequential(golden, 8)).toThrow(/invalid stage count 8 for a sequential split .* \[1, 7\]/);
    expect(() => planFolded(golden, 5)).toThrow(/invalid stage count 5 for a folded split .* \[1, 4\]/);
    for (const S of [0, -1, 1.5, Number.NaN]) expect(() => planFor(golden, S, 'auto')).toThrow(/invalid stage count/);
    expect(() => planFor(golden, 2, 'zigzag' as never)).toThrow(/unknown partition 'zigzag'/);
  });
});

describe('cost model', () => {
  const info = modelInfoFromConfig(CONFIGS.h2);

  it('per-stage figures follow the formula', () => {
    const plan = planSequential(CONFIGS.h2, 3);
    const o = { linkBytesPerSec: 5e9, latencySec: 1e-5, flopsPerSec: 50e12, microBatches: 4, batch: 2, overlapSkips: false };
    const c = planCost(info, plan, o);
    const act = 2 * 258 * 1152 * 4;
    for (const s of c.perStage) {
      const nSkip = plan.skips.filter((r) => r.crossesNetwork && r.fromStage === s.stage).length;
      expect(s.skipBytes).toBe(nSkip * act);
      expect(s.computeSec).toBeCloseTo((plan.stages[s.stage].flops * 2) / 50e12, 12);
      expect(s.stageSec).toBeCloseTo(s.computeSec + s.sendSec, 12);
      expect(s.sendSec).toBeCloseTo((s.streamBytes + s.skipBytes) / 5e9 + s.messages * 1e-5, 12);
    }
    expect(c.forwardSec).toBeCloseTo((4 + 3 - 1) * Math.max(...c.perStage.map((s) => s.stageSec)), 12);
    // overlapping skips can only help
    expect(planCost(info, plan, { ...o, overlapSkips: true }).forwardSec).toBeLessThanOrEqual(c.forwardSec);
  });

  it('a slow link picks folded (sequential pays the skips); a free link picks the better FLOP balance', () => {
    for (const S of [2, 3, 4]) {
      const slow = choosePartition(CONFIGS.h2, S, { linkBytesPerSec: 1e9 });
      expect(slow.chosen).toBe('folded');
      expect(slow.sequential.skipBytes).toBeGreaterThan(0);
      expect(slow.sequential.forwardSec).toBeGreaterThan(slow.folded!.forwardSec);
      const free = choosePartition(CONFIGS.h2, S, { linkBytesPerSec: Infinity, latencySec: 0 });
      const maxFlops = (p: Plan) => Math.max(...p.stages.map((s) => s.flops));
      const seqBetter = maxFlops(planSequential(CONFIGS.h2, S)) < maxFlops(planFolded(CONFIGS.h2, S));
      expect(free.chosen).toBe(seqBetter ? 'sequential' : 'folded');
    }
    // derived, not assumed: at S = 3 and 4 the finer-grained sequential cut balances H/2 better
    expect(choosePartition(CONFIGS.h2, 4, { linkBytesPerSec: Infinity, latencySec: 0 }).chosen).toBe('sequential');
    expect(choosePartition(CONFIGS.h2, 4, { linkBytesPerSec: 1e12 }).chosen).toBe('sequential');
  });

  it('auto = the cheaper of the two; folded is skipped when S > n+1', () => {
    const ch = choosePartition(golden, 2);
    expect(planFor(golden, 2, 'auto')).toEqual(ch.plan);
    expect(Math.min(ch.sequential.forwardSec, ch.folded!.forwardSec)).toBe(
      (ch.chosen === 'sequential' ? ch.sequential : ch.folded!).forwardSec,
    );
    const big = choosePartition(golden, 6);
    expect(big.folded).toBeNull();
    expect(big.chosen).toBe('sequential');
    expect(() => choosePartition(golden, 2, { linkBytesPerSec: 0 })).toThrow(/linkBytesPerSec must be > 0/);
  });
});

describe('plan file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'plan-'));

  it('round-trips and resolves relative paths', () => {
    const plan = planFolded(golden, 2);
    const pf = makePlanFile({ config: golden, weights: 'w.safetensors', plan });
    expect(pf.segmentFiles).toEqual(['segment-0-stage-0.onnx', 'segment-1-stage-1.onnx', 'segment-2-stage-0.onnx']);
    const path = join(dir, 'plan.json');
    writePlanFile(path, pf);
    const back = readPlanFile(path);
    expect(back.plan).toEqual(plan);
    expect(back.config).toEqual(golden);
    expect(back.weightsPath).toBe(join(dir, 'w.safetensors'));
    expect(back.segmentPaths[1]).toBe(join(dir, 'segment-1-stage-1.onnx'));
  });

  it('rejects tampered or mismatched files with precise errors', () => {
    const plan = planSequential(golden, 2);
    const base = JSON.parse(JSON.stringify(makePlanFile({ config: golden, weights: '/w', plan })));
    const write = (mut: (j: any) => void) => {
      const j = JSON.parse(JSON.stringify(base));
      mut(j);
      const p = join(dir, 'bad.json');
      writeFileSync(p, JSON.stringify(j));
      return () => readPlanFile(p);
    };
    expect(write((j) => j.plan.stages[0].params.pop())).toThrow(/stage 0 params do not match its segments .*missing: \[out_blocks|stage 0 params do not match/);
    expect(write((j) => (j.config.depth = 9))).toThrow(/invalid sequential plan .*n=4/);
    expect(write((j) => j.segmentFiles.pop())).toThrow(/1 segmentFiles for 2 segments/);
    expect(write((j) => (j.plan.segments[1].skipsIn = [0, 1]))).toThrow(/segment 1 skipsIn \[0,1\], expected \[0,1,2\]/);
    expect(write((j) => (j.plan.partition = 'diagonal'))).toThrow(/invalid plan file .*plan\.partition/);
    expect(write((j) => (j.config.embed_dim = 65))).toThrow(/embed_dim/);
    expect(() => readPlanFile(join(dir, 'nope.json'))).toThrow(/cannot read plan file/);
  });
});

describe('shard reader', () => {
  it('reads only the tensors of its shard and refuses others', async () => {
    const { openShard } = await import('../../gpu-backend/partition/shard.ts');
    const plan = planFolded(golden, 2);
    const shard = openShard(`${GOLDEN_DIR}/weights.safetensors`, golden, plan.stages[1].params);
    try {
      expect(shard.get('mid_block.attn.qkv.weight').length).toBe(192 * 64);
      expect(() => shard.get('label_emb.weight')).toThrow(/tensor "label_emb.weight" is not in this shard/);
      expect([...shard.read]).toEqual(['mid_block.attn.qkv.weight']);
    } finally {
      shard.close();
    }
    const bad = parseConfig({ ...golden, depth: 9 });
    expect(() => openShard(`${GOLDEN_DIR}/weights.safetensors`, bad, [])).toThrow(/do not match the config/);
  });
});
