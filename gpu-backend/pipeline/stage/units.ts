// How a stage cuts its plan segments into scheduling units (pure), each one ONNX session. A cut after an in-block
// whose skip crosses the network sends that skip the moment it exists (the send overlaps the next blocks' compute);
// a cut before an out-block whose skip comes over the network lets the blocks before it start without waiting.
// Every session boundary costs CPU (outputs cross into JS and back), and a cut only pays when the skip's other end is
// NOT the adjacent segment on the route: a skip for the next segment cannot be used before the stream gets there
// (it leaves with h_out anyway), and one from the previous segment arrives with h_in. So 'auto' (default) cuts only
// for skips between non-adjacent segments on different stages (S = 2 sequential and folded: no cuts; measured on the
// demo, 2 sequential stages with 4 jobs went from 1.49x to 1.62x over one process); 'block' cuts everywhere,
// 'segment' nowhere. The ops and their order are the same either way.
import type { Plan } from '../../partition/types.ts';
import { chain, type Segment } from '../../model/chain.ts';

/** 'auto': cut a segment only where a skip to/from a non-adjacent segment on another stage is made or used */
export type Granularity = 'auto' | 'block' | 'segment';

export interface Unit {
  /** unique within the stage, e.g. "s2.1" */
  key: string;
  /** plan segment and piece within it (route order: segment, then piece) */
  segment: number;
  piece: number;
  /** route rank: units later on the route run first when several are ready */
  rank: number;
  /** the sub-range as a Segment for the graph builder (index = the plan segment's index) */
  graph: Segment;
  /** name of the stream tensor this unit reads (null when it embeds the model inputs) */
  streamIn: string | null;
  /** where h_out goes: the next unit on this stage, or segment `toSegment` (maybe on another stage); null for head */
  streamOut: { name: string; toSegment: number; toStage: number } | null;
  /** skips made here and used elsewhere: where each goes */
  skipsOut: { skip: number; toSegment: number; toStage: number }[];
}

/** the stream tensor name a segment's first unit reads */
export const streamName = (segment: number, piece = 0) => (piece === 0 ? `h@${segment}` : `h@${segment}.${piece}`);

function skipsFor(n: number, start: number, end: number): { skipsIn: number[]; skipsOut: number[] } {
  const inside = (c: number) => c >= start && c < end;
  const skipsIn: number[] = [];
  const skipsOut: number[] = [];
  for (let i = 0; i < n; i++) {
    const consumer = chain.skipSource(n, i);
    if (inside(consumer) && !inside(i)) skipsIn.push(i);
    if (inside(i) && !inside(consumer)) skipsOut.push(i);
  }
  return { skipsIn, skipsOut };
}

/** the units of stage `stage`, in route order */
export function stageUnits(plan: Plan, n: number, stage: number, granularity: Granularity = 'auto'): Unit[] {
  const info = plan.stages[stage];
  if (!info) throw new Error(`stage ${stage}: the plan has ${plan.stages.length} stages`);
  const len = chain.length(n);
  const segOf = (c: number) => {
    const s = plan.segments.find((x) => x.start <= c && c < x.end);
    if (!s) throw new Error(`plan: no segment holds chain block ${c}`);
    return s;
  };
  const units: Unit[] = [];
  for (const si of info.segments) {
    const seg = plan.segments[si];
    const crossing = (c: number) => {
      // block c's skip (made if an in-block, consumed if an out-block) lives on another stage, in a segment that is
      // not this one's neighbour on the route; maker <-> consumer are mirror blocks 2n - c
      if (c === n) return false;
      const other = segOf(chain.skipSource(n, c));
      return other.stage !== seg.stage && Math.abs(other.index - seg.index) > 1;
    };
    const cuts = [seg.start];
    for (let c = seg.start + 1; c < seg.end; c++) {
      const cut =
        granularity === 'block' ||
        (granularity === 'auto' && ((c - 1 < n && crossing(c - 1)) || (c > n && crossing(c))));
      if (cut) cuts.push(c);
    }
    cuts.forEach((start, piece) => {
      const end = piece + 1 < cuts.length ? cuts[piece + 1] : seg.end;
      const last = end === seg.end;
      const { skipsIn, skipsOut } = skipsFor(n, start, end);
      const graph: Segment = {
        index: seg.index, stage: seg.stage, start, end, embed: start === 0, head: end === len, skipsIn, skipsOut,
      };
      let streamOut: Unit['streamOut'] = null;
      if (!graph.head) {
        if (!last) streamOut = { name: streamName(si, piece + 1), toSegment: si, toStage: stage };
        else {
          const next = plan.segments[si + 1];
          streamOut = { name: streamName(next.index), toSegment: next.index, toStage: next.stage };
        }
      }
      units.push({
        key: `s${si}.${piece}`,
        segment: si,
        piece,
        rank: si * 10_000 + piece,
        graph,
        streamIn: graph.embed ? null : streamName(si, piece),
        streamOut,
        skipsOut: skipsOut.map((i) => {
          const to = segOf(chain.skipSource(n, i));
          return { skip: i, toSegment: to.index, toStage: to.stage };
        }),
      });
    });
  }
  return units;
}
