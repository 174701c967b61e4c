// How stages cut plan segments into scheduling units (block granularity: skips leave as soon as they are made).
import { describe, expect, it } from 'vitest';
import { parseConfig, derive } from '../../gpu-backend/model/config.ts';
import { planFolded, planSequential } from '../../gpu-backend/partition/index.ts';
import { stageUnits } from '../../gpu-backend/pipeline/stage/units.ts';

const cfg = parseConfig({ img_size: 16, patch_size: 2, in_chans: 4, embed_dim: 64, depth: 7, num_heads: 4, num_classes: 10 });
const n = derive(cfg).n; // 3: chain in_0 in_1 in_2 mid out_0 out_1 out_2

describe('stage units', () => {
  it('sequential, 2 stages: one unit per block, each skip sent from its in-block straight to its consumer', () => {
    const plan = planSequential(cfg, 2);
    const all = [0, 1].flatMap((k) => stageUnits(plan, n, k, 'block'));
    // auto: every crossing skip goes to / comes from the adjacent segment, so no cut pays: one unit per segment
    expect([0, 1].flatMap((k) => stageUnits(plan, n, k)).map((u) => u.key)).toEqual(['s0.0', 's1.0']);
    expect(all.map((u) => u.graph.end - u.graph.start)).toEqual(all.map(() => 1));
    expect(all.map((u) => u.graph.start)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const s0 = stageUnits(plan, n, 0, 'block');
    const s1Start = plan.segments[1].start;
    for (const u of s0) {
      for (const o of u.skipsOut) {
        // made by in_i, consumed by chain block 2n - i: on stage 1 when that block is past the cut
        expect(o.toStage).toBe(2 * n - o.skip >= s1Start ? 1 : 0);
        expect(u.graph.start).toBe(o.skip);
      }
    }
    expect(s0[0].streamIn).toBeNull(); // embeds the model inputs
    expect(s0[0].graph.embed).toBe(true);
    const last = stageUnits(plan, n, 1).at(-1)!;
    expect(last.graph.head).toBe(true);
    expect(last.streamOut).toBeNull();
    expect(s0.at(-1)!.streamOut).toEqual({ name: 'h@1', toSegment: 1, toStage: 1 });
  });

  it('auto cuts exactly around blocks whose skip crosses to a non-adjacent segment on another stage', () => {
    const big = parseConfig({ img_size: 16, patch_size: 2, in_chans: 4, embed_dim: 64, depth: 13, num_heads: 4, num_classes: 10 });
    const bn = derive(big).n;
    let cutsSeen = 0;
    for (const S of [2, 3, 4]) {
      for (const plan of [planSequential(big, S), planFolded(big, S)]) {
        const segOf = (c: number) => plan.segments.find((x) => x.start <= c && c < x.end)!;
        // a block whose skip's other end is on another stage, in a segment that is not a route neighbour
        const far = (c: number) => {
          if (c === bn) return false;
          const me = segOf(c);
          const other = segOf(2 * bn - c);
          return other.stage !== me.stage && Math.abs(other.index - me.index) > 1;
        };
        const expected = new Set<number>();
        for (const seg of plan.segments) {
          for (let c = seg.start + 1; c < seg.end; c++) if ((c - 1 < bn && far(c - 1)) || (c > bn && far(c))) expected.add(c);
        }
        const cuts = new Set(
          plan.stages.flatMap((_, k) => stageUnits(plan, bn, k)).filter((u) => u.piece > 0).map((u) => u.graph.start),
        );
        expect(cuts).toEqual(expected);
        if (plan.partition === 'folded' || S === 2) expect(cuts.size).toBe(0);
        cutsSeen += cuts.size;
      }
    }
    expect(cutsSeen).toBeGreaterThan(0); // sequential S >= 3 has skips between non-adjacent segments
  });

  it('folded, 2 stages: skips stay on their stage; the stream goes out and back', () => {
    const plan = planFolded(cfg, 2);
    // auto: nothing crosses, so one unit (one session) per segment
    expect(stageUnits(plan, n, 0).map((u) => u.key)).toEqual(plan.stages[0].segments.map((s) => `s${s}.0`));
    expect(stageUnits(plan, n, 0, 'block').length).toBe(plan.stages[0].segments.reduce((a, s) => a + plan.segments[s].end - plan.segments[s].start, 0));
    for (const k of [0, 1]) for (const u of stageUnits(plan, n, k)) for (const o of u.skipsOut) expect(o.toStage).toBe(k);
    const s0 = stageUnits(plan, n, 0);
    expect(new Set(s0.map((u) => u.segment))).toEqual(new Set(plan.stages[0].segments));
    // later route positions rank higher (they run first when several units are ready)
    const ranks = s0.map((u) => u.rank);
    expect([...ranks].sort((a, b) => a - b)).toEqual(ranks);
  });

  it('segment granularity: one unit per plan segment, same skips as the plan', () => {
    const plan = planSequential(cfg, 2);
    const us = stageUnits(plan, n, 0, 'segment');
    expect(us).toHaveLength(1);
    expect(us[0].graph.skipsOut).toEqual(plan.segments[0].skipsOut);
    expect(() => stageUnits(plan, n, 5)).toThrow(/plan has 2 stages/);
  });
});
