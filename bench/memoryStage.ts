// Child of bench/memory.ts: loads ONE stage of an exported plan the way a stage process does, runs one forward of
// each of its segments on dummy inputs, and prints a JSON line with its memory figures (from /proc/self/status).
//   node --expose-gc bench/memoryStage.ts PLAN.json STAGE MODE [THREADS]
// MODE: prebuilt  = open the exported segment .onnx files (weights as external data; ORT reads them itself)
//       external  = stream the shard from safetensors into the builder (one tensor at a time), write the ONNX with
//                   external data into a temp dir, then let ORT load the file
//       inline    = read the whole shard (loadWeights), build the ONNX with weights inline, hand the bytes to ORT
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { derive } from '../gpu-backend/model/config.ts';
import { loadWeights } from '../gpu-backend/model/weights.ts';
import { buildSegmentModel } from '../gpu-backend/model/build/segment.ts';
import { createSession } from '../gpu-backend/engine/session.ts';
import { readPlanFile } from '../gpu-backend/partition/planFile.ts';
import { segmentParams } from '../gpu-backend/partition/plan.ts';
import { modelInfoFromConfig } from '../gpu-backend/partition/configInfo.ts';
import { TENSOR } from '../gpu-backend/model/chain.ts';
import { openShard } from '../gpu-backend/partition/shard.ts';

const [planPath, stageArg, mode, threadsArg] = process.argv.slice(2);
const k = Number(stageArg);
const threads = Number(threadsArg ?? 1);
if (!['prebuilt', 'external', 'inline'].includes(mode)) throw new Error(`mode must be prebuilt|external|inline, got ${mode}`);

const status = () => {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
  return { hwm: kb('VmHWM'), rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
};
const resetPeak = () => writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
const gc = () => (globalThis as { gc?: () => void }).gc?.();

const t0 = performance.now();
const base = status();
const lp = readPlanFile(planPath);
const { config: cfg, plan } = lp;
const info = modelInfoFromConfig(cfg);
const st = plan.stages[k];
const d = derive(cfg);
const tmp = mkdtempSync(join(tmpdir(), `uvit-mem-${k}-`));
const sessions: ort.InferenceSession[] = [];
let buildPeak = 0;
try {
  for (const si of st.segments) {
    const seg = plan.segments[si];
    let session: ort.InferenceSession;
    if (mode === 'prebuilt') {
      session = await createSession(lp.segmentPaths[si], { threads });
    } else {
      if (mode === 'external') {
        // stream the shard tensor by tensor into the builder (partition/shard.ts), external data to a temp file
        const shard = openShard(lp.weightsPath, cfg, segmentParams(info, seg));
        const path = join(tmp, `s${si}.onnx`);
        writeFileSync(path, buildSegmentModel(cfg, (name) => shard.get(name), seg, { externalDataPath: `${path}.data` }));
        shard.close();
        gc();
        buildPeak = Math.max(buildPeak, status().hwm);
        resetPeak();
        session = await createSession(path, { threads });
      } else {
        let w: ReturnType<typeof loadWeights> | undefined = loadWeights(lp.weightsPath, cfg, segmentParams(info, seg));
        let bytes: Uint8Array | undefined = buildSegmentModel(cfg, w, seg);
        w = undefined;
        gc();
        buildPeak = Math.max(buildPeak, status().hwm);
        resetPeak();
        session = await createSession(bytes, { threads });
        bytes = undefined;
      }
    }
    gc();
    sessions.push(session);
  }
  const afterLoad = status();
  // one forward per segment on dummy inputs (batch 1): activations and ORT's arena count too
  for (const [j, si] of st.segments.entries()) {
    const seg = plan.segments[si];
    const act = () => new ort.Tensor('float32', new Float32Array(d.T * d.D).fill(0.1), [1, d.T, d.D]);
    const feeds: Record<string, ort.Tensor> = {};
    if (seg.embed) {
      const shape = d.inputShape(1);
      feeds[TENSOR.x] = new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5), shape);
      feeds[TENSOR.timesteps] = new ort.Tensor('float32', new Float32Array([500]), [1]);
      if (d.variant === 'class') feeds[TENSOR.y] = new ort.Tensor('int64', new BigInt64Array([1n]), [1]);
      if (d.variant === 'text') {
        const n = d.extras - 1;
        feeds[TENSOR.context] = new ort.Tensor('float32', new Float32Array(n * cfg.clip_dim!), [1, n, cfg.clip_dim!]);
      }
    } else feeds[TENSOR.hIn] = act();
    for (const i of seg.skipsIn) feeds[TENSOR.skip(i)] = act();
    await sessions[j].run(feeds);
  }
  const end = status();
  const blocks = st.segments.map((si) => `[${plan.segments[si].start},${plan.segments[si].end})`).join('+');
  console.log(JSON.stringify({
    stage: k, mode, blocks, nBlocks: st.segments.reduce((a, si) => a + plan.segments[si].end - plan.segments[si].start, 0),
    paramBytes: st.paramBytes, baseRss: base.rss, buildPeak, serveHwm: end.hwm, peak: Math.max(buildPeak, end.hwm),
    rssLoaded: afterLoad.rss, rssEnd: end.rss, anonEnd: end.anon, fileEnd: end.file, ms: Math.round(performance.now() - t0),
  }));
} finally {
  for (const s of sessions) await s.release();
  rmSync(tmp, { recursive: true, force: true });
}
