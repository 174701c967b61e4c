// `npm run demo:clip [-- --prompt TEXT --seed N --out FILE --config demo.json --steps N --seconds S]`:
// makes the full 16-second demo clip end to end (prompt → MP4) with the in-process engine, verifies it with ffprobe,
// and prints per-phase timings. The weights and the text encoder / decoder are seeded random (untrained): the clip is
// noise-like by design.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEMO_CONFIG, createDriver } from './demo.ts';
import { probeMp4 } from './ffmpeg.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string', default: DEMO_CONFIG },
      prompt: { type: 'string', default: 'a red ball bouncing on a wooden floor' },
      seed: { type: 'string', default: '42' },
      steps: { type: 'string' },
      seconds: { type: 'string' },
      guidance: { type: 'string' },
      out: { type: 'string', default: '/tmp/uvit-demo/clip.mp4' },
    },
    strict: true,
  });
  const out = resolve(values.out!);
  mkdirSync(dirname(out), { recursive: true });
  const tAll = performance.now();
  const built = await createDriver(values.config!, { log: (s) => console.error(s) });
  const { driver, cfg } = built;
  const fps = cfg.video.fps;
  const seconds = values.seconds ? Number(values.seconds) : cfg.video.seconds;
  const steps = values.steps ? Number(values.steps) : cfg.sampler.steps;
  const guidance = values.guidance ? Number(values.guidance) : cfg.sampler.guidance;
  const numFrames = Math.round(seconds * fps);
  console.error(`model ${cfg.model_id}: ${numFrames} frames at ${fps} fps, ${driver.frameSize.width}x${driver.frameSize.height}, ` +
    `${driver.latentFramesFor(numFrames)} latent frames, ${steps} steps ${cfg.sampler.solver}, guidance ${guidance} (${cfg.sampler.cfg_mode})`);
  let lastStep = performance.now();
  const r = await driver.generate({
    jobId: 'demo',
    prompt: values.prompt!,
    seed: Number(values.seed),
    steps,
    guidance,
    solver: cfg.sampler.solver,
    cfgMode: cfg.sampler.cfg_mode,
    numFrames,
    fps,
    out,
    onProgress: (e) => {
      if (e.phase === 'sample' && e.step) {
        const now = performance.now();
        console.error(`  step ${e.step}/${e.total}  ${(now - lastStep).toFixed(0)} ms  (${e.percent}%)`);
        lastStep = now;
      }
    },
  });
  const wallMs = performance.now() - tAll;
  const p = probeMp4(out);
  await built.close();
  const s = (ms: number) => (ms / 1000).toFixed(2).padStart(6);
  console.log(`clip        ${out} (${r.bytes} bytes)`);
  console.log(`ffprobe     ${p.codec} ${p.pixFmt} ${p.width}x${p.height} ${p.fps} fps ${p.frames} frames ${p.duration.toFixed(3)} s faststart=${p.faststart}`);
  console.log(`load        ${s(built.loadMs)} s   (config, demo files, engine + text encoder + decoder sessions)`);
  console.log(`encode text ${s(r.timings.textMs)} s`);
  console.log(`sample      ${s(r.timings.sampleMs)} s   (${r.steps} steps, ${r.stepsPerSecond.toFixed(2)} steps/s, CFG ${cfg.sampler.cfg_mode})`);
  console.log(`decode      ${s(r.timings.decodeMs)} s`);
  console.log(`mp4         ${s(r.timings.mp4Ms)} s`);
  console.log(`job total   ${s(r.timings.totalMs)} s   (prompt → MP4)`);
  console.log(`wall total  ${s(wallMs)} s   (incl. load)`);
  if (Math.abs(p.duration - seconds) > 1e-3 || p.fps !== fps || p.frames !== numFrames) {
    throw new Error(`ffprobe disagrees: ${p.duration} s, ${p.fps} fps, ${p.frames} frames; expected ${seconds} s, ${fps} fps, ${numFrames}`);
  }
}

main().catch((e) => {
  console.error(`demo:clip failed: ${(e as Error).message}`);
  process.exit(1);
});
