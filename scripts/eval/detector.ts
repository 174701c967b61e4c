// A simple detector for clips of the shapes world (one flat-coloured object on a flat background), used by
// `npm run eval:prompts`. Per frame (RGB24):
//   background  the per-channel median of the frame (the object covers well under half of it);
//   object      pixels differing from the background by > 60 in some channel give a rough mask; the object colour is
//               the per-channel median over its core, the quarter of it that differs most from the background (the
//               median over the whole rough mask is pulled towards the background by the decoder's blurred edges: a
//               small object's edge outnumbers its inside, and a yellow or white one then reads as green); the final
//               mask is every pixel at least half-way from the background towards that colour (a 50 % threshold on
//               the blurred edge);
//   visible     the mask holds between 1 % and 25 % of the frame (the smallest object covers ~4 %);
//   colour      the palette colour nearest (RGB distance) to the object colour;
//   centre      the circular mean of the mask's coordinates (objects wrap around the edges);
//   objects     the mask's separate pieces (4-connected, joined across the wrapping edges) of at least 1 % of the
//               frame each: a second object or a large fragment of one makes 2 or more;
//   fill        mask area / its bounding box area, measured around the centre: a sharp disk fills π/4 of its box, a
//               square 1, an upright triangle 0.5; after the decoder's blur, rendered clips give per-frame fills of
//               0.66–0.89 (ball), 0.78–1 (square), 0.55–0.74 (triangle), medians about 0.77 / 0.96 / 0.63, so the
//               thresholds sit between the medians: triangle < 0.70 <= ball < 0.88 <= square.
// Per clip: colour and shape are the majority over visible frames; the motion comes from the centre track
// (unwrapped across the edges): >= 3 vertical reversals of > 0.03 frame with little horizontal travel is 'bouncing';
// otherwise a net displacement >= 0.1 frame along the larger axis gives its direction; else 'still'; one object is the
// fraction of visible frames whose mask is one piece.
export type Rgb = readonly [number, number, number];

export interface FrameObs {
  visible: boolean;
  colour: string | null;
  /** centre in frame units, [0, 1) */
  cx: number;
  cy: number;
  fill: number;
  /** mask pixels / frame pixels */
  area: number;
  /** separate pieces of the mask of at least MIN_AREA of the frame each (0 when not visible) */
  objects: number;
}

export interface ClipObs {
  colour: string | null;
  shape: string | null;
  motion: string;
  /** fraction of frames where the object is visible */
  visible: number;
  /** fraction of the visible frames that show one object (0 when none is visible) */
  single: number;
  /** visible frames' centres, unwrapped (frame units) */
  track: { t: number; x: number; y: number }[];
}

const ROUGH = 60;
/** the object colour is read from the 1/CORE of the rough mask that differs most from the background */
const CORE = 4;
const MIN_AREA = 0.01;
const MAX_AREA = 0.25;
/** fill-ratio thresholds: triangle < TRI_BALL <= ball < BALL_SQUARE <= square */
export const TRI_BALL = 0.7;
export const BALL_SQUARE = 0.88;

function median256(hist: Uint32Array, n: number): number {
  let acc = 0;
  for (let v = 0; v < 256; v++) {
    acc += hist[v];
    if (acc * 2 >= n) return v;
  }
  return 255;
}

function nearest(c: Rgb, palette: Record<string, Rgb>): string {
  let best = '';
  let bd = Infinity;
  for (const [name, p] of Object.entries(palette)) {
    const d = (c[0] - p[0]) ** 2 + (c[1] - p[1]) ** 2 + (c[2] - p[2]) ** 2;
    if (d < bd) [best, bd] = [name, d];
  }
  return best;
}

function circularMean(sumCos: number, sumSin: number): number {
  const a = Math.atan2(sumSin, sumCos) / (2 * Math.PI);
  return a < 0 ? a + 1 : a;
}

const trigCache = new Map<number, { cos: Float64Array; sin: Float64Array }>();
/** cos and sin of each pixel centre's angle around a wrapping axis of n pixels */
function trig(n: number): { cos: Float64Array; sin: Float64Array } {
  let t = trigCache.get(n);
  if (!t) {
    const a = Float64Array.from({ length: n }, (_, i) => (2 * Math.PI * (i + 0.5)) / n);
    t = { cos: a.map(Math.cos), sin: a.map(Math.sin) };
    trigCache.set(n, t);
  }
  return t;
}

/** one RGB24 frame, W×H, row-major */
export function observeFrame(rgb: Uint8Array, W: number, H: number, palette: Record<string, Rgb>): FrameObs {
  const n = W * H;
  const hist = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)];
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) hist[c][rgb[i * 3 + c]]++;
  const bg = [0, 1, 2].map((c) => median256(hist[c], n));
  const dist = new Uint8Array(n);
  const distHist = new Uint32Array(256);
  let nRough = 0;
  for (let i = 0; i < n; i++) {
    const o = i * 3;
    dist[i] = Math.max(Math.abs(rgb[o] - bg[0]), Math.abs(rgb[o + 1] - bg[1]), Math.abs(rgb[o + 2] - bg[2]));
    if (dist[i] > ROUGH) {
      nRough++;
      distHist[dist[i]]++;
    }
  }
  const none: FrameObs = { visible: false, colour: null, cx: 0, cy: 0, fill: 0, area: nRough / n, objects: 0 };
  if (nRough < MIN_AREA * n) return none;
  // the core: rough pixels at or above the distance that a quarter of them reach
  let coreMin = 255;
  for (let acc = 0; coreMin > ROUGH && (acc += distHist[coreMin]) * CORE < nRough; ) coreMin--;
  const core = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)];
  let nCore = 0;
  for (let i = 0; i < n; i++) {
    if (dist[i] <= ROUGH || dist[i] < coreMin) continue;
    nCore++;
    for (let c = 0; c < 3; c++) core[c][rgb[i * 3 + c]]++;
  }
  const obj: Rgb = [median256(core[0], nCore), median256(core[1], nCore), median256(core[2], nCore)];
  const dir = [obj[0] - bg[0], obj[1] - bg[1], obj[2] - bg[2]];
  const dd = dir[0] ** 2 + dir[1] ** 2 + dir[2] ** 2;
  const mask = new Uint8Array(n);
  let count = 0;
  let xc = 0, xs = 0, yc = 0, ys = 0;
  const tx = trig(W);
  const ty = trig(H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      const o = i * 3;
      const proj = ((rgb[o] - bg[0]) * dir[0] + (rgb[o + 1] - bg[1]) * dir[1] + (rgb[o + 2] - bg[2]) * dir[2]) / dd;
      if (proj < 0.5) continue;
      mask[i] = 1;
      count++;
      xc += tx.cos[x]; xs += tx.sin[x]; yc += ty.cos[y]; ys += ty.sin[y];
    }
  }
  const area = count / n;
  if (area < MIN_AREA || area > MAX_AREA) return { ...none, area };
  const cx = circularMean(xc, xs);
  const cy = circularMean(yc, ys);
  // bounding box with the frame rolled so that the centre is in the middle (a wrapping object is in one piece)
  const sx = Math.round(W / 2 - cx * W);
  const sy = Math.round(H / 2 - cy * H);
  let x0 = W, x1 = -1, y0 = H, y1 = -1;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if (!mask[y * W + x]) continue;
      const rx = (((x + sx) % W) + W) % W;
      const ry = (((y + sy) % H) + H) % H;
      if (rx < x0) x0 = rx;
      if (rx > x1) x1 = rx;
      if (ry < y0) y0 = ry;
      if (ry > y1) y1 = ry;
    }
  }
  const fill = count / ((x1 - x0 + 1) * (y1 - y0 + 1));
  return { visible: true, colour: nearest(obj, palette), cx, cy, fill, area, objects: pieces(mask, W, H, MIN_AREA * n) };
}

/** 4-connected pieces of a W×H mask on a torus (the frame's edges wrap) with at least `minSize` pixels each */
function pieces(mask: Uint8Array, W: number, H: number, minSize: number): number {
  const seen = new Uint8Array(mask.length);
  const stack = new Int32Array(mask.length);
  let count = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    let top = 0, size = 0;
    stack[top++] = start;
    seen[start] = 1;
    while (top) {
      const i = stack[--top];
      size++;
      const x = i % W, y = (i - x) / W;
      for (const j of [y * W + ((x + 1) % W), y * W + ((x + W - 1) % W), ((y + 1) % H) * W + x, ((y + H - 1) % H) * W + x]) {
        if (mask[j] && !seen[j]) {
          seen[j] = 1;
          stack[top++] = j;
        }
      }
    }
    if (size >= minSize) count++;
  }
  return count;
}

export function shapeOf(fill: number): string {
  return fill < TRI_BALL ? 'triangle' : fill < BALL_SQUARE ? 'ball' : 'square';
}

function majority(xs: string[]): string | null {
  const counts = new Map<string, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  let best: string | null = null;
  let bc = 0;
  for (const [k, c] of counts) if (c > bc) [best, bc] = [k, c];
  return best;
}

/** reversals of direction by more than `h` (a zig-zag count with hysteresis) */
function reversals(v: number[], h: number): number {
  let dir = 0;
  let hi = v[0];
  let lo = v[0];
  let n = 0;
  for (const y of v) {
    hi = Math.max(hi, y);
    lo = Math.min(lo, y);
    if (dir !== -1 && y < hi - h) {
      if (dir === 1) n++;
      dir = -1;
      lo = y;
    } else if (dir !== 1 && y > lo + h) {
      if (dir === -1) n++;
      dir = 1;
      hi = y;
    }
  }
  return n;
}

/** wrapped difference in (-0.5, 0.5] */
const wrap = (d: number) => d - Math.round(d);

export function observeClip(frames: Uint8Array[], W: number, H: number, palette: Record<string, Rgb>): ClipObs {
  const obs = frames.map((f) => observeFrame(f, W, H, palette));
  const vis = obs.map((o, t) => ({ o, t })).filter((v) => v.o.visible);
  const track: ClipObs['track'] = [];
  for (const { o, t } of vis) {
    const prev = track.at(-1);
    track.push(prev ? { t, x: prev.x + wrap(o.cx - obs[prev.t].cx), y: prev.y + wrap(o.cy - obs[prev.t].cy) } : { t, x: o.cx, y: o.cy });
  }
  let motion = 'still';
  if (track.length >= 2) {
    const xs = track.map((p) => p.x);
    const ys = track.map((p) => p.y);
    const dx = xs.at(-1)! - xs[0];
    const dy = ys.at(-1)! - ys[0];
    if (reversals(ys, 0.03) >= 3 && Math.max(...xs) - Math.min(...xs) < 0.1) motion = 'bouncing';
    else if (Math.max(Math.abs(dx), Math.abs(dy)) >= 0.1) {
      motion = Math.abs(dx) >= Math.abs(dy) ? (dx < 0 ? 'moving left' : 'moving right') : dy < 0 ? 'moving up' : 'moving down';
    }
  }
  return {
    colour: majority(vis.map((v) => v.o.colour!)),
    shape: majority(vis.map((v) => shapeOf(v.o.fill))),
    motion,
    visible: obs.length ? vis.length / obs.length : 0,
    single: vis.length ? vis.filter((v) => v.o.objects === 1).length / vis.length : 0,
    track,
  };
}
