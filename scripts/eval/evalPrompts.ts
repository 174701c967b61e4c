// `npm run eval:prompts [-- options]`: does the trained model's clip show what the prompt says? Generates clips for
// every colour × shape × motion of the model's world (models/…/world.json), the combinations held out of training
// included, through the driver the service runs (text encoder → U-ViT sampling → decoder → H.264 MP4), decodes the
// MP4 back to frames with ffmpeg, and reads each clip with the detector (scripts/eval/detector.ts). Prints a table
// (colour, motion, shape accuracy, visible fraction and the fraction of visible frames showing one object; seen vs
// held-out) and writes a PNG contact sheet (one row per clip: 8 frames, 2 s apart) and results.json into --out.
// `--reread` reads the clips an earlier run left in --out again with the current detector, without generating them.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createDriver } from '../../gpu-backend/demo/demo.ts';
import { ffmpegPath, probeMp4, splitFrames } from '../../gpu-backend/driver/ffmpeg.ts';
import { observeClip, type ClipObs, type Rgb } from './detector.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SHAPES_CONFIG = join(ROOT, 'models/uvit-t2v-shapes/group.json');

export interface World {
  colours: Record<string, Rgb>;
  shapes: string[];
  motions: string[];
  held_out: [string, string, string][];
  seconds: number;
  fps: number;
}

export interface EvalCase {
  prompt: string;
  colour: string;
  shape: string;
  motion: string;
  heldOut: boolean;
  seed: number;
}

export interface EvalResult extends EvalCase {
  got: Omit<ClipObs, 'track'>;
  ms: number;
}

export function readWorld(configPath: string): World {
  return JSON.parse(readFileSync(join(dirname(configPath), 'world.json'), 'utf8')) as World;
}

/** every combination; `seeds` clips each, `heldOutSeeds` for the held-out ones (they are few: more clips per row) */
export function evalCases(w: World, seeds: number, heldOutSeeds: number): EvalCase[] {
  const held = new Set(w.held_out.map((h) => h.join('|')));
  const out: EvalCase[] = [];
  for (const colour of Object.keys(w.colours)) {
    for (const shape of w.shapes) {
      for (const motion of w.motions) {
        const heldOut = held.has([colour, shape, motion].join('|'));
        for (let k = 0; k < (heldOut ? heldOutSeeds : seeds); k++) {
          out.push({ prompt: `a ${colour} ${shape} ${motion}`, colour, shape, motion, heldOut, seed: 1000 + out.length });
        }
      }
    }
  }
  return out;
}

/** an MP4's frames as RGB24 (what a user's player shows, H.264 losses included) */
export function decodeMp4(path: string, width: number, height: number): Uint8Array[] {
  const r = spawnSync(ffmpegPath(), ['-v', 'error', '-i', path, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`ffmpeg could not decode ${path}: ${r.stderr?.toString().trim()}`);
  return splitFrames(new Uint8Array(r.stdout), width, height);
}

/** one generated MP4 decoded and read by the detector */
function readClip(path: string, width: number, height: number, w: World): { clip: { frames: Uint8Array[]; width: number; height: number }; got: EvalResult['got'] } {
  const frames = decodeMp4(path, width, height);
  const { track: _t, ...got } = observeClip(frames, width, height, w.colours);
  return { clip: { frames, width, height }, got };
}

export interface Score {
  n: number;
  colour: number;
  motion: number;
  shape: number;
  visible: number;
  single: number;
}

export function score(rs: EvalResult[]): Score {
  const n = rs.length;
  const frac = (f: (r: EvalResult) => number) => (n ? rs.reduce((a, r) => a + f(r), 0) / n : NaN);
  return {
    n,
    colour: frac((r) => Number(r.got.colour === r.colour)),
    motion: frac((r) => Number(r.got.motion === r.motion)),
    shape: frac((r) => Number(r.got.shape === r.shape)),
    visible: frac((r) => r.got.visible),
    single: frac((r) => r.got.single),
  };
}

export function table(rs: EvalResult[], w: World): string {
  const pct = (x: number) => (Number.isNaN(x) ? '–' : `${(100 * x).toFixed(1)} %`);
  const row = (name: string, s: Score) => `| ${name} | ${s.n} | ${pct(s.colour)} | ${pct(s.motion)} | ${pct(s.shape)} | ${pct(s.visible)} | ${pct(s.single)} |`;
  const lines = ['| prompts | clips | colour | motion | shape | visible | one object |', '|---|---|---|---|---|---|---|',
    row('all', score(rs)), row('seen combinations', score(rs.filter((r) => !r.heldOut))), row('held-out combinations', score(rs.filter((r) => r.heldOut)))];
  for (const c of Object.keys(w.colours)) lines.push(row(c, score(rs.filter((r) => r.colour === c))));
  for (const s of w.shapes) lines.push(row(s, score(rs.filter((r) => r.shape === s))));
  for (const m of w.motions) lines.push(row(m, score(rs.filter((r) => r.motion === m))));
  return lines.join('\n');
}

/** contact sheet: per clip one row of `cols` frames, evenly spaced, each downscaled by `down` (box filter) */
export function contactSheet(clips: { frames: Uint8Array[]; width: number; height: number }[], cols: number, down: number): { rgb: Uint8Array; width: number; height: number } {
  const w = clips[0].width / down;
  const h = clips[0].height / down;
  const width = cols * w;
  const height = clips.length * h;
  const rgb = new Uint8Array(width * height * 3);
  clips.forEach((clip, r) => {
    for (let k = 0; k < cols; k++) {
      const f = clip.frames[Math.floor((k * clip.frames.length) / cols)];
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          for (let c = 0; c < 3; c++) {
            let s = 0;
            for (let dy = 0; dy < down; dy++) for (let dx = 0; dx < down; dx++) s += f[((y * down + dy) * clip.width + x * down + dx) * 3 + c];
            rgb[((r * h + y) * width + k * w + x) * 3 + c] = Math.round(s / (down * down));
          }
        }
      }
    }
  });
  return { rgb, width, height };
}

export function writePng(path: string, img: { rgb: Uint8Array; width: number; height: number }): void {
  const r = spawnSync(ffmpegPath(), ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${img.width}x${img.height}`, '-i', '-', '-frames:v', '1', path], { input: img.rgb });
  if (r.status !== 0) throw new Error(`ffmpeg could not write ${path}: ${r.stderr?.toString().trim()}`);
}

export interface EvalOptions {
  config: string;
  cases: EvalCase[];
  steps?: number;
  guidance?: number;
  /** where the MP4s go */
  dir: string;
  log?: (s: string) => void;
}

/** generates and reads every case; returns the results and the decoded clips (for the contact sheet) */
export async function runEval(o: EvalOptions): Promise<{ results: EvalResult[]; clips: { frames: Uint8Array[]; width: number; height: number }[] }> {
  const built = await createDriver(o.config, { log: o.log });
  const { driver, cfg } = built;
  const w = readWorld(o.config);
  const results: EvalResult[] = [];
  const clips = [];
  try {
    mkdirSync(o.dir, { recursive: true });
    for (const [i, c] of o.cases.entries()) {
      const t0 = performance.now();
      const out = join(o.dir, `clip-${i}.mp4`);
      const r = await driver.generate({
        jobId: `eval-${i}`, prompt: c.prompt, seed: c.seed, steps: o.steps ?? cfg.sampler.steps, guidance: o.guidance ?? cfg.sampler.guidance,
        solver: cfg.sampler.solver, cfgMode: cfg.sampler.cfg_mode, numFrames: w.seconds * w.fps, fps: w.fps, out,
      });
      const { clip, got } = readClip(r.path, r.width, r.height, w);
      results.push({ ...c, got, ms: performance.now() - t0 });
      clips.push(clip);
      o.log?.(`${i + 1}/${o.cases.length} ${c.prompt}${c.heldOut ? ' (held out)' : ''} seed ${c.seed}: ${got.colour} ${got.shape} ${got.motion}, visible ${(100 * got.visible).toFixed(0)} %, one object ${(100 * got.single).toFixed(0)} %`);
    }
  } finally {
    await built.close();
  }
  return { results, clips };
}

/** an earlier run's clips (results.json and clips/ in `out`) read again by the current detector */
export function rereadEval(out: string, w: World): { results: EvalResult[]; clips: { frames: Uint8Array[]; width: number; height: number }[] } {
  const saved = join(out, 'results.json');
  if (!existsSync(saved)) throw new Error(`--reread: ${out} holds no earlier run (no results.json); run the eval with --out ${out} first`);
  const before = JSON.parse(readFileSync(saved, 'utf8')) as EvalResult[];
  const clips = [];
  const results: EvalResult[] = [];
  for (const [i, r] of before.entries()) {
    const path = join(out, 'clips', `clip-${i}.mp4`);
    const { width, height } = probeMp4(path);
    const { clip, got } = readClip(path, width, height, w);
    results.push({ ...r, got });
    clips.push(clip);
  }
  return { results, clips };
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      config: { type: 'string', default: SHAPES_CONFIG },
      seeds: { type: 'string', default: '1' },
      'held-out-seeds': { type: 'string', default: '6' },
      steps: { type: 'string' },
      guidance: { type: 'string' },
      out: { type: 'string', default: join(ROOT, '.data/eval') },
      reread: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (v.help) {
    console.log('usage: npm run eval:prompts -- [--config GROUP.json] [--seeds N] [--held-out-seeds N] [--steps N] [--guidance X] [--out DIR] [--reread]');
    return;
  }
  const config = resolve(v.config!);
  const w = readWorld(config);
  const cases = evalCases(w, Number(v.seeds), Number(v['held-out-seeds']));
  const out = resolve(v.out!);
  const t0 = performance.now();
  const { results, clips } = v.reread ? rereadEval(out, w) : await runEval({
    config, cases, dir: join(out, 'clips'), steps: v.steps ? Number(v.steps) : undefined, guidance: v.guidance ? Number(v.guidance) : undefined,
    log: (s) => console.error(s),
  });
  const sheet = join(out, 'contact-sheet.png');
  writePng(sheet, contactSheet(clips, 8, 2));
  writeFileSync(join(out, 'results.json'), `${JSON.stringify(results, null, 1)}\n`);
  console.log(table(results, w));
  console.log(`\n${results.length} clips in ${((performance.now() - t0) / 1000).toFixed(0)} s; contact sheet ${sheet} (rows in the order of ${join(out, 'results.json')})`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
