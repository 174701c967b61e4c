// One forward over a plan's segments in route order, in one process: the stream tensor h goes from each segment to
// the next, long skips wait in a map until their consumer runs. The Engine's forward; callers record what they need
// through the hooks (intermediates and timings; the CLI: bytes that would cross a stage boundary).
import type * as ort from 'onnxruntime-node';
import { type Segment, TENSOR } from '../model/chain.ts';

export interface RouteSegment {
  segment: Segment;
  session: ort.InferenceSession;
}

export interface RouteHooks {
  /** a tensor handed from a segment on stage `fromStage` to `to` (kind 'h': the stream, 'skip': a long skip) */
  onHandOver?(kind: 'h' | 'skip', t: ort.Tensor, fromStage: number, to: Segment): void;
  /** after each segment ran: its outputs and the ms session.run took */
  onRun?(r: RouteSegment, out: ort.InferenceSession.OnnxValueMapType, ms: number): void;
}

/** Runs `route` (segments sorted by index) on the embed inputs; returns the head's eps output. */
export async function runRoute(route: readonly RouteSegment[], embedFeeds: Record<string, ort.Tensor>, hooks: RouteHooks = {}): Promise<ort.Tensor> {
  const skips = new Map<number, { t: ort.Tensor; stage: number }>();
  let h: { t: ort.Tensor; stage: number } | undefined;
  for (const r of route) {
    const { segment: s, session } = r;
    const feeds: Record<string, ort.Tensor> = {};
    if (s.embed) Object.assign(feeds, embedFeeds);
    else {
      if (!h) throw new Error(`segment ${s.index}: no stream input h (no earlier segment produced ${TENSOR.hOut})`);
      feeds[TENSOR.hIn] = h.t;
      hooks.onHandOver?.('h', h.t, h.stage, s);
    }
    for (const i of s.skipsIn) {
      const sk = skips.get(i);
      if (!sk) throw new Error(`segment ${s.index}: skip_${i} was not produced by an earlier segment`);
      feeds[TENSOR.skip(i)] = sk.t;
      hooks.onHandOver?.('skip', sk.t, sk.stage, s);
      skips.delete(i);
    }
    const t0 = performance.now();
    const out = await session.run(feeds);
    hooks.onRun?.(r, out, performance.now() - t0);
    for (const i of s.skipsOut) skips.set(i, { t: out[TENSOR.skip(i)], stage: s.stage });
    if (s.head) return out[TENSOR.eps];
    h = { t: out[TENSOR.hOut], stage: s.stage };
  }
  throw new Error('plan has no head segment: no eps produced');
}
