// The planner: cuts the 2n+1 block chain into segments and assigns them to stages (types.ts explains the layout).
//   sequential: S contiguous runs, run k on stage k, balanced on FLOPs (embed on run 0, head on the last run).
//   folded:     stage k holds in-chunk k and its mirrored out-chunk; stage S-1 also the mid block, so every skip
//               stays on the stage that made it; balanced on FLOPs of (in-block, mirrored out-block) pairs.
// Both balance with an exact dynamic programme: minimise the largest stage FLOPs, then the sum of squares.
// Pure: no I/O.

import type { Plan, PartitionKind, SkipRoute, StageInfo } from './types.ts';
import type { Segment } from '../model/chain.ts';
import { chain } from '../model/chain.ts';
import type { ModelInfo } from './modelInfo.ts';
import { chainFlops, embedFlops, headFlops } from './flops.ts';

/** Largest feasible stage count: sequential needs one block per stage, folded one in-block per stage but the last. */
export function maxStages(n: number, partition: PartitionKind): number {
  return partition === 'sequential' ? chain.length(n) : n + 1;
}

export function checkStageCount(n: number, S: number, partition: PartitionKind): void {
  const max = maxStages(n, partition);
  if (!Number.isInteger(S) || S < 1 || S > max) {
    const why =
      partition === 'sequential'
        ? `each stage needs at least one of the ${chain.length(n)} blocks`
        : `each stage but the last needs at least one of the ${n} in-blocks (the last holds the mid block)`;
    throw new Error(`invalid stage count ${S} for a ${partition} split of a chain with n=${n}: expected an integer in [1, ${max}] (${why})`);
  }
}

export function planSequential(info: ModelInfo, S: number): Plan {
  const { n } = info.dims;
  checkStageCount(n, S, 'sequential');
  const w = chainFlops(info.dims);
  w[0] += embedFlops(info.dims);
  w[w.length - 1] += headFlops(info.dims);
  const bounds = balance(w, S, false);
  const segs = bounds.map(([start, end], k) => ({ start, end, stage: k }));
  return assemble(info, 'sequential', S, segs);
}

export function planFolded(info: ModelInfo, S: number): Plan {
  const { n } = info.dims;
  checkStageCount(n, S, 'folded');
  const N = chain.length(n);
  const w = chainFlops(info.dims);
  if (S === 1) return assemble(info, 'folded', 1, [{ start: 0, end: N, stage: 0 }]);
  // pair i = in_blocks.i + out block consuming its skip (chain 2n-i); chunk 0 also carries embed + head.
  const pairs = Array.from({ length: n }, (_, i) => w[i] + w[chain.skipSource(n, i)]);
  pairs[0] += embedFlops(info.dims) + headFlops(info.dims);
  const chunks = balance(pairs, S, true, w[n]); // last chunk may be empty: it holds mid
  const segs: { start: number; end: number; stage: number }[] = [];
  // way in: stages 0..S-2 run their in-chunk; stage S-1 runs in-chunk + mid + mirrored out-chunk in one segment
  for (let k = 0; k < S - 1; k++) segs.push({ start: chunks[k][0], end: chunks[k][1], stage: k });
  const [a] = chunks[S - 1];
  segs.push({ start: a, end: 2 * n - a + 1, stage: S - 1 });
  // way back: out-chunk mirroring in-chunk [a,b) is chain [2n-b+1, 2n-a+1)
  for (let k = S - 2; k >= 0; k--) {
    const [ca, cb] = chunks[k];
    segs.push({ start: 2 * n - cb + 1, end: 2 * n - ca + 1, stage: k });
  }
  return assemble(info, 'folded', S, segs);
}

/**
 * Split weights into S contiguous runs minimising (max run sum, then sum of squares).
 * allowEmptyLast: the last run may be empty and gets `lastExtra` added (folded: the mid block).
 * Returns [start, end) per run.
 */
function balance(w: number[], S: number, allowEmptyLast: boolean, lastExtra = 0): [number, number][] {
  const N = w.length;
  const pre = [0];
  for (const x of w) pre.push(pre[pre.length - 1] + x);
  type Best = { max: number; sq: number; cut: number };
  // best[k][j]: first j items in runs 0..k
  const best: Best[][] = [];
  const better = (a: Best, b: Best | undefined) => {
    if (!b) return true;
    const tol = 1e-12 * Math.max(Math.abs(a.max), Math.abs(b.max));
    if (a.max < b.max - tol) return true;
    if (a.max > b.max + tol) return false;
    return a.sq < b.sq - 1e-12 * Math.max(a.sq, b.sq);
  };
  for (let k = 0; k < S; k++) {
    best.push([]);
    const last = k === S - 1;
    const minEnd = k + 1 - (last && allowEmptyLast ? 1 : 0);
    for (let j = minEnd; j <= N; j++) {
      if (last && j !== N) continue;
      let b: Best | undefined;
      const startLo = k; // runs 0..k-1 hold at least k items
      const startHi = last && allowEmptyLast ? j : j - 1;
      for (let i = startLo; i <= startHi; i++) {
        const prev = k === 0 ? (i === 0 ? { max: 0, sq: 0, cut: -1 } : undefined) : best[k - 1][i];
        if (!prev) continue;
        const run = pre[j] - pre[i] + (last ? lastExtra : 0);
        const cand = { max: Math.max(prev.max, run), sq: prev.sq + run * run, cut: i };
        if (better(cand, b)) b = cand;
      }
      if (b) best[k][j] = b;
    }
  }
  const out: [number, number][] = [];
  let j = N;
  for (let k = S - 1; k >= 0; k--) {
    const b = best[k][j];
    if (!b) throw new Error(`internal: no balanced split of ${N} items into ${S} runs`);
    out.unshift([b.cut, j]);
    j = b.cut;
  }
  return out;
}

/** Fill segments, skip routes and per-stage shards from the segments' chain ranges (in route order). */
export function assemble(
  info: ModelInfo,
  partition: PartitionKind,
  S: number,
  segs: { start: number; end: number; stage: number }[],
): Plan {
  const { n } = info.dims;
  const N = chain.length(n);
  const segOf = (c: number) => segs.findIndex((s) => c >= s.start && c < s.end);
  const skips: SkipRoute[] = [];
  for (let i = 0; i < n; i++) {
    const fromSegment = segOf(chain.inBlock(i));
    const toSegment = segOf(chain.skipSource(n, i));
    const fromStage = segs[fromSegment].stage;
    const toStage = segs[toSegment].stage;
    skips.push({ skip: i, fromSegment, toSegment, fromStage, toStage, crossesNetwork: fromStage !== toStage });
  }
  const segments: Segment[] = segs.map((s, index) => ({
    index,
    stage: s.stage,
    start: s.start,
    end: s.end,
    embed: s.start === 0,
    head: s.end === N,
    skipsIn: skips.filter((r) => r.toSegment === index && r.fromSegment !== index).map((r) => r.skip),
    skipsOut: skips.filter((r) => r.fromSegment === index && r.toSegment !== index).map((r) => r.skip),
  }));
  const flops = chainFlops(info.dims);
  const stages: StageInfo[] = Array.from({ length: S }, (_, stage) => {
    const mine = segments.filter((s) => s.stage === stage);
    const params: string[] = [];
    let f = 0;
    for (const s of mine) {
      params.push(...segmentParams(info, s));
      if (s.embed) f += embedFlops(info.dims);
      for (let c = s.start; c < s.end; c++) f += flops[c];
      if (s.head) f += headFlops(info.dims);
    }
    const paramBytes = params.reduce((a, p) => a + info.paramBytes(p), 0);
    return { stage, segments: mine.map((s) => s.index), params, paramBytes, flops: f };
  });
  const plan: Plan = { version: 1, partition, numStages: S, segments, stages, skips };
  validatePlan(plan, n);
  return plan;
}

/** Official names of the tensors one segment uses: embed params, its blocks' params, head params. */
export function segmentParams(info: ModelInfo, s: Pick<Segment, 'start' | 'end' | 'embed' | 'head'>): string[] {
  const out: string[] = [];
  if (s.embed) out.push(...info.embedParams);
  for (let c = s.start; c < s.end; c++) out.push(...info.blockParams(c));
  if (s.head) out.push(...info.headParams);
  return out;
}

/** Structural checks of a plan against the chain length; throws with the first violation. */
export function validatePlan(plan: Plan, n: number): void {
  const N = chain.length(n);
  const bad = (msg: string): never => {
    throw new Error(`invalid ${plan.partition} plan (S=${plan.numStages}, n=${n}): ${msg}`);
  };
  const S = plan.numStages;
  if (plan.stages.length !== S) bad(`expected ${S} stages, got ${plan.stages.length}`);
  const expectSegs = plan.partition === 'sequential' || S === 1 ? S : 2 * S - 1;
  if (plan.segments.length !== expectSegs) bad(`expected ${expectSegs} segments, got ${plan.segments.length}`);
  let pos = 0;
  plan.segments.forEach((s, i) => {
    if (s.index !== i) bad(`segment at position ${i} has index ${s.index}`);
    if (s.start !== pos) bad(`segment ${i} starts at ${s.start}, expected ${pos} (segments must tile the chain in order)`);
    if (!(s.end > s.start)) bad(`segment ${i} is empty [${s.start}, ${s.end})`);
    if (s.embed !== (s.start === 0)) bad(`segment ${i} embed flag is ${s.embed}`);
    if (s.head !== (s.end === N)) bad(`segment ${i} head flag is ${s.head}`);
    if (!(s.stage >= 0 && s.stage < S)) bad(`segment ${i} on stage ${s.stage}`);
    const want = plan.partition === 'sequential' ? i : Math.min(i, 2 * S - 2 - i);
    if (s.stage !== want) bad(`segment ${i} is on stage ${s.stage}, the ${plan.partition} layout puts it on ${want}`);
    pos = s.end;
  });
  if (pos !== N) bad(`segments end at ${pos}, the chain has ${N} blocks`);
  if (plan.skips.length !== n) bad(`expected ${n} skip routes, got ${plan.skips.length}`);
  const segOf = (c: number) => plan.segments.findIndex((s) => c >= s.start && c < s.end);
  plan.skips.forEach((r, i) => {
    const from = segOf(i);
    const to = segOf(chain.skipSource(n, i));
    if (r.skip !== i || r.fromSegment !== from || r.toSegment !== to) {
      bad(`skip route ${i} is ${JSON.stringify(r)}, expected skip ${i} from segment ${from} to ${to}`);
    }
    const fs = plan.segments[from].stage;
    const ts = plan.segments[to].stage;
    if (r.fromStage !== fs || r.toStage !== ts || r.crossesNetwork !== (fs !== ts)) bad(`skip route ${i} has wrong stages`);
  });
  plan.segments.forEach((s) => {
    const ins = plan.skips.filter((r) => r.toSegment === s.index && r.fromSegment !== s.index).map((r) => r.skip);
    const outs = plan.skips.filter((r) => r.fromSegment === s.index && r.toSegment !== s.index).map((r) => r.skip);
    if (ins.join() !== s.skipsIn.join()) bad(`segment ${s.index} skipsIn [${s.skipsIn}], expected [${ins}]`);
    if (outs.join() !== s.skipsOut.join()) bad(`segment ${s.index} skipsOut [${s.skipsOut}], expected [${outs}]`);
  });
  plan.stages.forEach((st, k) => {
    const segs = plan.segments.filter((s) => s.stage === k).map((s) => s.index);
    if (st.stage !== k) bad(`stage at position ${k} says stage ${st.stage}`);
    if (segs.join() !== st.segments.join()) bad(`stage ${k} lists segments [${st.segments}], expected [${segs}]`);
  });
  const seen = new Map<string, number>();
  for (const st of plan.stages) {
    for (const p of st.params) {
      if (seen.has(p)) bad(`parameter '${p}' is on stages ${seen.get(p)} and ${st.stage}`);
      seen.set(p, st.stage);
    }
  }
}
