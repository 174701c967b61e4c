// `npm run demo:clip [-- --prompt TEXT --seed N --out FILE --config demo.json --steps N --seconds S --stages N]`:
// makes the full 16-second demo clip end to end (prompt → MP4) with the in-process engine (or, with --stages N, on N
// spawned stage processes), verifies it with ffprobe,
// and prints per-phase timings. The weights and the text encoder / decoder are seeded random (untrained): the clip is
// noise-like by design.
import { mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEMO_CONFIG, createDriver, demoFileMakers } from './demo.ts';
import { loadGroupConfig } from '../serve/groupConfig.ts';
import { prepareModelFiles } from '../serve/modelFiles.ts';
import { pipelineBackend, type Backend } from '../serve/backend.ts';
import { exportStages } from '../serve/stages.ts';
import { probeMp4 } from '../driver/ffmpeg.ts';

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
      stages: { type: 'string', default: '0' },
    },
    strict: true,
  });
  const out = resolve(values.out!);
  mkdirSync(dirname(out), { recursive: true });
  const tAll = performance.now();
  const nStages = Number(values.stages);
  let backend: Backend | undefined;
  if (nStages > 0) {
    // the group as it is served: N stage processes (1 thread each), CFG halves as two micro-batches in flight
    const cfg0 = loadGroupConfig(values.config!);
    prepareModelFiles(cfg0, (s) => console.error(s), demoFileMakers(cfg0));
    const { planPath } = exportStages(cfg0, nStages, join(dirname(out), 'stages'), (s) => console.error(s));
    backend = await pipelineBackend({ planPath, cfg: cfg0, log: (s) => console.error(s) });
  }
  const cpu0 = process.cpuUsage();
  const built = await createDriver(values.config!, { log: (s) => console.error(s), forward: backend?.forward });
  const { driver, cfg } = built;
  const cfgMode = backend ? 'micro' : cfg.sampler.cfg_mode;
  const fps = cfg.video.fps;
  const seconds = values.seconds ? Number(values.seconds) : cfg.video.seconds;
  const steps = values.steps ? Number(values.steps) : cfg.sampler.steps;
  const guidance = values.guidance ? Number(values.guidance) : cfg.sampler.guidance;
  const numFrames = Math.round(seconds * fps);
  console.error(`model ${cfg.model_id}: ${numFrames} frames at ${fps} fps, ${driver.frameSize.width}x${driver.frameSize.height}, ` +
    `${driver.latentFramesFor(numFrames)} latent frames, ${steps} steps ${cfg.sampler.solver}, guidance ${guidance} (CFG ${cfgMode})`);
  const where = backend ? backend.describe() : 'in-process engine';
  let lastStep = performance.now();
  const r = await driver.generate({
    jobId: 'demo',
    prompt: values.prompt!,
    seed: Number(values.seed),
    steps,
    guidance,
    solver: cfg.sampler.solver,
    cfgMode,
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
  const cpu = process.cpuUsage(cpu0);
  const p = probeMp4(out);
  await built.close();
  await backend?.close();
  const s = (ms: number) => (ms / 1000).toFixed(2).padStart(6);
  console.log(`clip        ${out} (${r.bytes} bytes)`);
  console.log(`ffprobe     ${p.codec} ${p.pixFmt} ${p.width}x${p.height} ${p.fps} fps ${p.frames} frames ${p.duration.toFixed(3)} s faststart=${p.faststart}`);
  console.log(`load        ${s(built.loadMs)} s   (config, demo files, engine + text encoder + decoder sessions)`);
  console.log(`encode text ${s(r.timings.textMs)} s`);
  console.log(`sample      ${s(r.timings.sampleMs)} s   (${r.steps} steps, ${r.stepsPerSecond.toFixed(2)} steps/s, CFG ${cfgMode}, ${where})`);
  console.log(`decode      ${s(r.timings.decodeMs)} s`);
  console.log(`mp4         ${s(r.timings.mp4Ms)} s`);
  console.log(`job total   ${s(r.timings.totalMs)} s   (prompt → MP4)`);
  console.log(`wall total  ${s(wallMs)} s   (incl. load)`);
  console.log(`driver CPU  ${s((cpu.user + cpu.system) / 1000)} s   (this process, all threads; stage processes not included; load average ${loadavg()[0].toFixed(1)} on ${cpus().length} cores)`);
  if (Math.abs(p.duration - seconds) > 1e-3 || p.fps !== fps || p.frames !== numFrames) {
    throw new Error(`ffprobe disagrees: ${p.duration} s, ${p.fps} fps, ${p.frames} frames; expected ${seconds} s, ${fps} fps, ${numFrames}`);
  }
}

main().catch((e) => {
  console.error(`demo:clip failed: ${(e as Error).message}`);
  process.exit(1);
});
