// A fast subset of `npm run eval:prompts`: clips from the shipped trained model through the driver the service runs
// (built text encoder → U-ViT sampling → interpolation decoder → H.264 MP4, decoded back with ffmpeg) and read by the
// eval's detector. The model does not yet meet the eval's goals (docs/training.md): this checks the path (full
// 16-second clips of 128×128 come back from the MP4, the same seed gives the same clip and the same reading, a
// different seed a different clip, which with the re-noising sampler also covers its seeded step noise) and what the
// model does reliably: an object of the prompt's colour, visible in most frames.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readWorld, runEval, SHAPES_CONFIG, type EvalCase } from '../../scripts/eval/evalPrompts.ts';

const tmp = mkdtempSync(join(tmpdir(), 'uvit-shapes-eval-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('trained shapes model through the service path', () => {
  it('16-second 128×128 clips from the MP4, read by the detector; seeded: same seed same clip, other seed other clip', async () => {
    const w = readWorld(SHAPES_CONFIG);
    const [colour, shape, motion] = w.held_out[0];
    const c: EvalCase = { prompt: `a ${colour} ${shape} ${motion}`, colour, shape, motion, heldOut: true, seed: 5 };
    const { results, clips } = await runEval({ config: SHAPES_CONFIG, cases: [c, c, { ...c, seed: 6 }], dir: tmp });
    expect(clips.map((k) => [k.frames.length, k.width, k.height])).toEqual([[128, 128, 128], [128, 128, 128], [128, 128, 128]]);
    const bytes = clips.map((k) => Buffer.concat(k.frames));
    expect(bytes[0].equals(bytes[1])).toBe(true);
    expect(bytes[0].equals(bytes[2])).toBe(false);
    expect(results[1].got).toEqual(results[0].got);
    for (const r of results) {
      expect(r.got.visible).toBeGreaterThanOrEqual(0);
      expect(r.got.visible).toBeLessThanOrEqual(1);
      expect(w.motions.concat('still')).toContain(r.got.motion);
    }
  }, 120_000);

  // Visible: the eval's goal is over all frames of all clips (99.9 % of them), not every clip; of these five, the green
  // triangle fades in over its first 5 s (visible in 64 % of its frames), the others are visible throughout.
  it('the clip takes the prompt colour, for each of the five colours (all 100 eval clips do), and shows the object', async () => {
    const cases: EvalCase[] = [['red', 'ball', 'moving right'], ['green', 'triangle', 'moving up'], ['blue', 'square', 'bouncing'],
      ['yellow', 'square', 'moving left'], ['white', 'ball', 'moving down']]
      .map(([colour, shape, motion]) => ({ prompt: `a ${colour} ${shape} ${motion}`, colour, shape, motion, heldOut: false, seed: 11 }));
    const { results } = await runEval({ config: SHAPES_CONFIG, cases, dir: join(tmp, 'colours') });
    expect(results.map((r) => r.got.colour)).toEqual(['red', 'green', 'blue', 'yellow', 'white']);
    for (const r of results) expect(r.got.visible).toBeGreaterThanOrEqual(0.5);
    expect(results.filter((r) => r.got.visible >= 0.95).length).toBeGreaterThanOrEqual(4);
  }, 120_000);
});
