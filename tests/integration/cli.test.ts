// `uvit` CLI end to end: spawns bin/uvit.js (the same entry `npx uvit` runs) on the golden case, on tiny random
// models, and on bad inputs (exit code != 0 and a precise message).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../shared/tensor.ts';
import { parseConfig } from '../../gpu-backend/model/config.ts';
import { readNpy, writeNpy } from '../../gpu-backend/model/npy.ts';
import { referenceForward } from '../../gpu-backend/model/reference.ts';
import { loadWeights } from '../../gpu-backend/model/weights.ts';
import { readPlanFile } from '../../gpu-backend/partition/planFile.ts';
import { main } from '../../gpu-backend/cli/main.ts';
import { Rng } from '../../gpu-backend/driver/rng.ts';
import { lazy } from '../../gpu-backend/cli/command.ts';
import { guidedEps, nullClassLabels, sample, zerosContext, type ModelFn } from '../../gpu-backend/sampler/index.ts';
import { GOLDEN_DIR } from '../golden.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/uvit.js');
const G = GOLDEN_DIR;
const run = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}
async function uvit(...args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: ROOT, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

async function uvitInProcess(...args: string[]): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  expect(a.dims).toEqual(b.dims);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  return m;
}
const maxAbs = (a: Tensor) => Math.max(...Array.from(a.data as Float32Array, Math.abs));

let dir: string;
const golden = (f: string) => join(G, f);
const goldenConfig = () => JSON.parse(readFileSync(golden('case.json'), 'utf8')).config;
const tinyClass = { img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 32, depth: 3, num_heads: 2, num_classes: 5 };
const tinyText = { name: 'uvit_t2i', img_size: 8, patch_size: 2, in_chans: 4, embed_dim: 32, depth: 3, num_heads: 2, clip_dim: 16, num_clip_token: 5 };
const p = (f: string) => join(dir, f);
// parameter count of a_cls_conv (case.json weight_shapes)
const PARAMS_A = Object.values(JSON.parse(readFileSync(join(G, 'case.json'), 'utf8')).weight_shapes as Record<string, number[]>)
  .reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);

function randn(dims: number[], seed: number): Tensor<'float32'> {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  const n = dims.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', dims, data: Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u())) };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'uvit-cli-test-'));
  writeFileSync(p('a.json'), JSON.stringify(goldenConfig()));
  writeFileSync(p('tiny.json'), JSON.stringify(tinyClass));
  writeFileSync(p('tinyt.json'), JSON.stringify(tinyText));
  writeNpy(p('z.npy'), randn([2, 4, 8, 8], 11));
  writeNpy(p('y.npy'), { dtype: 'int64', dims: [2], data: BigInt64Array.from([1n, 3n]) });
  writeNpy(p('ctx.npy'), randn([2, 5, 16], 5));
  writeNpy(p('empty.npy'), randn([5, 16], 9));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const goldenArgs = () => [
  '--config', p('a.json'), '--weights', golden('weights.safetensors'),
  '--x', golden('input_x.npy'), '--t', golden('input_timesteps.npy'), '--y', golden('input_y.npy'),
];

describe('uvit forward on the golden case a_cls_conv', () => {
  it('unsplit: output within 1e-4 of the official output, and a report', async () => {
    const r = await uvit('forward', ...goldenArgs(), '--out', p('out1.npy'), '--threads', '1', '--report', p('r1.json'));
    expect(r.stderr).toContain('forward: eps [2,4,16,16]');
    expect(r.code).toBe(0);
    expect(maxAbsDiff(readNpy(p('out1.npy')), readNpy(golden('output.npy')))).toBeLessThanOrEqual(1e-4);
    const rep = JSON.parse(readFileSync(p('r1.json'), 'utf8'));
    expect(rep.numStages).toBe(1);
    expect(rep.stages[0].blocks).toEqual(['in_blocks.0', 'in_blocks.1', 'in_blocks.2', 'mid_block', 'out_blocks.0', 'out_blocks.1', 'out_blocks.2']);
    expect(rep.stages[0].paramBytes).toBe(PARAMS_A * 4);
    expect(rep.stages[0].computeMs).toBeGreaterThan(0);
    expect(rep.skipBytes).toBe(0);
    expect(rep.activationBytes).toBe(0);
    expect(rep.wallMs).toBeGreaterThan(0);
    expect(rep.process.peakRssBytes).toBeGreaterThan(0);
  });

  it('--stages 2 (sequential), --stages 3 --partition folded, --stages 2 --spawn: same output, bytes reported', async () => {
    const [seq, fold, spawned] = await Promise.all([
      uvit('forward', ...goldenArgs(), '--out', p('out2.npy'), '--stages', '2', '--threads', '1', '--report', p('r2.json')),
      uvit('forward', ...goldenArgs(), '--out', p('out3.npy'), '--stages', '3', '--partition', 'folded', '--threads', '1', '--report', p('r3.json')),
      uvit('forward', ...goldenArgs(), '--out', p('out4.npy'), '--stages', '2', '--spawn', '--threads', '1', '--report', p('r4.json')),
    ]);
    expect(spawned.stderr + spawned.code).toMatch(/0$/);
    expect(spawned.stderr).toMatch(/spawned 2 stage processes/);
    expect(seq.stderr + seq.code).toMatch(/0$/);
    expect(fold.stderr + fold.code).toMatch(/0$/);
    const want = readNpy(golden('output.npy'));
    expect(maxAbsDiff(readNpy(p('out2.npy')), want)).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(readNpy(p('out3.npy')), want)).toBeLessThanOrEqual(1e-4);
    const tokenBytes = 2 * 66 * 64 * 4; // B * (extras + L) * D * float32
    const r2 = JSON.parse(readFileSync(p('r2.json'), 'utf8'));
    expect(r2.partition).toBe('sequential');
    expect(r2.stages.map((s: { blocks: string[] }) => s.blocks).flat()).toHaveLength(7);
    expect(r2.activationBytes).toBe(tokenBytes); // one hop 0 -> 1
    expect(r2.skipBytes % tokenBytes).toBe(0);
    expect(r2.skipBytes).toBeGreaterThan(0);
    const r3 = JSON.parse(readFileSync(p('r3.json'), 'utf8'));
    expect(r3.partition).toBe('folded');
    expect(r3.numStages).toBe(3);
    expect(r3.skipBytes).toBe(0); // folded keeps every skip on its stage
    expect(r3.activationBytes).toBe(4 * tokenBytes); // 2(S-1) hops
    // stage processes: the same result and a per-process report
    expect(maxAbsDiff(readNpy(p('out4.npy')), want)).toBeLessThanOrEqual(1e-4);
    const r4 = JSON.parse(readFileSync(p('r4.json'), 'utf8'));
    expect(r4.memoryScope).toBe('per-process');
    expect(r4.stages).toHaveLength(2);
    expect(r4.stages.map((s: { blocks: string[] }) => s.blocks)).toEqual(r2.stages.map((s: { blocks: string[] }) => s.blocks));
    for (const s of r4.stages) expect(s.peakRssBytes).toBeGreaterThan(s.paramBytes);
    for (const s of r3.stages) {
      expect(s.paramBytes).toBeGreaterThan(0);
      expect(s.peakRssBytes).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('uvit init-weights + sample on tiny random models', () => {
  it('class model, fast3, CFG 0.4, 2 stages: matches the sampler over the float64 reference forward', async () => {
    const init = await uvit('init-weights', '--config', p('tiny.json'), '--seed', '3', '--out', p('tiny.safetensors'));
    expect(init.stderr + init.code).toMatch(/0$/);
    const r = await uvit('sample', '--config', p('tiny.json'), '--weights', p('tiny.safetensors'), '--z-init', p('z.npy'),
      '--y', p('y.npy'), '--steps', '10', '--solver', 'dpmpp-fast3', '--guidance', '0.4', '--stages', '2', '--out', p('s.npy'),
      '--report', p('rs.json'));
    expect(r.stderr + r.code).toMatch(/0$/);
    expect(r.stderr).toContain('step 1/10 t=1000.0000');
    expect(r.stderr).toContain('step 10/10 t=100.9000');
    const cfg = parseConfig(tinyClass);
    const w = loadWeights(p('tiny.safetensors'), cfg);
    const model: ModelFn = async (inp) => referenceForward(cfg, w, inp).output;
    const z = readNpy(p('z.npy')) as Tensor<'float32'>;
    const y = readNpy(p('y.npy')) as Tensor<'int64'>;
    const ref = await sample('dpmpp-fast3', guidedEps({ model, cond: { y }, uncond: { y: nullClassLabels(5, 2) }, scale: 0.4 }), z, { steps: 10 });
    const got = readNpy(p('s.npy'));
    expect(maxAbsDiff(got, ref)).toBeLessThanOrEqual(1e-4 * maxAbs(ref));
    const rep = JSON.parse(readFileSync(p('rs.json'), 'utf8'));
    expect(rep.forwards).toBe(10); // one 2B batch per step
    expect(rep.numStages).toBe(2);
  });

  it('class model, ancestral: the step noise is Rng(--noise-seed); matches the sampler over the reference forward', async () => {
    const run = (seed: string, out: string) => uvitInProcess('sample', '--config', p('tiny.json'), '--weights', p('tiny.safetensors'),
      '--z-init', p('z.npy'), '--y', p('y.npy'), '--steps', '6', '--solver', 'ancestral', '--noise-seed', seed, '--quiet', '--out', p(out));
    for (const [seed, out] of [['5', 'a5.npy'], ['6', 'a6.npy']]) expect((await run(seed, out)).code).toBe(0);
    const cfg = parseConfig(tinyClass);
    const w = loadWeights(p('tiny.safetensors'), cfg);
    const model: ModelFn = async (inp) => referenceForward(cfg, w, inp).output;
    const z = readNpy(p('z.npy')) as Tensor<'float32'>;
    const y = readNpy(p('y.npy')) as Tensor<'int64'>;
    const rng = new Rng(5);
    const ref = await sample('ancestral', guidedEps({ model, cond: { y }, scale: 0 }), z, {
      steps: 6, noise: () => rng.fillNormal(new Float32Array(z.data.length)),
    });
    expect(maxAbsDiff(readNpy(p('a5.npy')), ref)).toBeLessThanOrEqual(1e-4 * maxAbs(ref));
    expect(maxAbsDiff(readNpy(p('a6.npy')), ref)).toBeGreaterThan(1e-2 * maxAbs(ref));
  });

  it('text model, 2M, CFG 1 with --empty-context and the zeros default, micro-batched CFG', async () => {
    const init = await uvitInProcess('init-weights', '--config', p('tinyt.json'), '--seed', '4', '--out', p('tinyt.safetensors'));
    expect(init.stderr + init.code).toMatch(/0$/);
    const common = ['--config', p('tinyt.json'), '--weights', p('tinyt.safetensors'), '--z-init', p('z.npy'), '--context', p('ctx.npy'),
      '--steps', '4', '--solver', 'dpmpp-2m', '--guidance', '1', '--quiet'];
    const [a, b] = await Promise.all([
      uvit('sample', ...common, '--empty-context', p('empty.npy'), '--cfg-mode', 'micro', '--out', p('t1.npy')),
      uvit('sample', ...common, '--out', p('t2.npy')),
    ]);
    expect(a.stderr + a.code).toMatch(/0$/);
    expect(b.stderr + b.code).toMatch(/0$/);
    expect(a.stderr).not.toContain('step 1/');
    const cfg = parseConfig(tinyText);
    const w = loadWeights(p('tinyt.safetensors'), cfg);
    const model: ModelFn = async (inp) => referenceForward(cfg, w, inp).output;
    const z = readNpy(p('z.npy')) as Tensor<'float32'>;
    const context = readNpy(p('ctx.npy')) as Tensor<'float32'>;
    const e = readNpy(p('empty.npy')) as Tensor<'float32'>;
    const emptyB: Tensor<'float32'> = { dtype: 'float32', dims: [2, 5, 16], data: Float32Array.from([...e.data, ...e.data] as number[]) };
    for (const [file, uncond] of [['t1.npy', emptyB], ['t2.npy', zerosContext(2, 5, 16)]] as const) {
      const ref = await sample('dpmpp-2m', guidedEps({ model, cond: { context }, uncond: { context: uncond }, scale: 1 }), z, { steps: 4 });
      expect(maxAbsDiff(readNpy(p(file)), ref)).toBeLessThanOrEqual(1e-4 * maxAbs(ref));
    }
  });
});

describe('uvit export', () => {
  it('writes one ONNX per segment and a valid plan.json (folded, 2 stages)', async () => {
    const out = p('exp');
    const r = await uvit('export', '--config', p('a.json'), '--weights', golden('weights.safetensors'), '--stages', '2', '--partition', 'folded', '--out', out);
    expect(r.stderr + r.code).toMatch(/0$/);
    expect(r.stdout.trim()).toBe(join(out, 'plan.json'));
    const plan = readPlanFile(join(out, 'plan.json'));
    expect(plan.plan.partition).toBe('folded');
    expect(plan.plan.segments).toHaveLength(3);
    expect(plan.weightsPath).toBe(golden('weights.safetensors'));
    for (const f of plan.segmentPaths) {
      expect(existsSync(f)).toBe(true);
      expect(statSync(f).size).toBeGreaterThan(1000);
    }
  });
});

describe('uvit errors: exit code != 0 and a precise message on stderr', () => {
  it('usage, files, shapes and variants', async () => {
    writeNpy(p('badx.npy'), randn([2, 4, 8, 8], 1)); // golden config wants [B,4,16,16]
    const cases: [string[], number, RegExp][] = [
      [['forward', ...goldenArgs(), '--threads', '1'], 2, /missing required flag --out/],
      [['forward', ...goldenArgs(), '--out', p('o.npy'), '--bogus', '1'], 2, /unknown flag --bogus/],
      [['forward', ...goldenArgs(), '--out', p('o.npy'), '--stage', '2'], 2, /unknown flag --stage \(did you mean --stages\?\)/],
      [['forward', '--config', p('a.json'), '--weights', golden('weights.safetensors'), '--x', p('nope.npy'), '--t', golden('input_timesteps.npy'), '--y', golden('input_y.npy'), '--out', p('o.npy')], 1, /--x: file not found: .*nope\.npy/],
      [['forward', '--config', p('a.json'), '--weights', p('nope.safetensors'), '--x', golden('input_x.npy'), '--t', golden('input_timesteps.npy'), '--out', p('o.npy')], 1, /--weights: file not found/],
      [['forward', '--config', p('a.json'), '--weights', golden('weights.safetensors'), '--x', p('badx.npy'), '--t', golden('input_timesteps.npy'), '--y', golden('input_y.npy'), '--out', p('o.npy')], 1, /--x: shape mismatch: .* has shape \[2,4,8,8\], the config expects \[B,4,16,16\]/],
      [['forward', '--config', p('a.json'), '--weights', golden('weights.safetensors'), '--x', golden('input_x.npy'), '--t', golden('input_timesteps.npy'), '--out', p('o.npy')], 1, /class-conditional model .*--y Y\.npy is required/],
      [['sample', '--config', p('tinyt.json'), '--weights', golden('weights.safetensors'), '--z-init', p('z.npy'), '--y', p('y.npy'), '--steps', '2', '--guidance', '0', '--out', p('o.npy')], 1, /--y given, but the config describes a text-conditioned model/],
      [['sample', '--config', p('tiny.json'), '--weights', golden('weights.safetensors'), '--z-init', p('z.npy'), '--y', p('y.npy'), '--steps', '2', '--solver', 'euler', '--out', p('o.npy')], 2, /--solver must be one of dpmpp-fast3 \| dpmpp-2m \| dpm-solver-fast \| ancestral \| renoise, got 'euler'/],
      [['sample', '--config', p('tiny.json'), '--weights', golden('weights.safetensors'), '--z-init', p('z.npy'), '--y', p('y.npy'), '--steps', '0', '--out', p('o.npy')], 2, /--steps must be an integer >= 1, got '0'/],
      [['forward', ...goldenArgs(), '--out', p('o.npy'), '--stages', '9', '--partition', 'folded'], 1, /invalid stage count 9 for a folded split/],
      [['forward', '--config', p('tiny.json'), '--weights', golden('weights.safetensors'), '--x', p('z.npy'), '--t', golden('input_timesteps.npy'), '--y', p('y.npy'), '--out', p('o.npy')], 1, /weights .* do not match the config/],
      [['frobnicate'], 2, /unknown command 'frobnicate'/],
      [['init-weights', '--config', p('nope.json'), '--seed', '1', '--out', p('w.safetensors')], 1, /--config: file not found/],
    ];
    // in-process (main() is what bin/uvit.js runs), so the many cases stay fast
    for (const [args, code, msg] of cases) {
      const r = await uvitInProcess(...args);
      expect(r.code, `uvit ${args.join(' ')}\n${r.stderr}`).toBe(code);
      expect(r.stderr, `uvit ${args.join(' ')}`).toMatch(msg);
      expect(r.stdout).toBe('');
    }
  });

  it('spawned: a usage error exits 2, a runtime error exits 1 (stderr only), --help exits 0', async () => {
    const [usage, missing, help] = await Promise.all([
      uvit('forward', ...goldenArgs(), '--out', p('o.npy'), '--bogus', '1'),
      uvit('forward', '--config', p('a.json'), '--weights', golden('weights.safetensors'), '--x', p('nope.npy'), '--t', golden('input_timesteps.npy'), '--out', p('o.npy')),
      uvit('--help'),
    ]);
    expect(help.code).toBe(0);
    for (const c of ['forward', 'sample', 'init-weights', 'export']) expect(help.stdout).toContain(c);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^uvit forward: unknown flag --bogus\nsee: uvit forward --help/);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^uvit forward: error: --x: file not found: .*nope\.npy/);
    expect(usage.stdout + missing.stdout).toBe('');
  });

  it('--help for the tool and each command', async () => {
    const [top, fwd, smp] = [await uvitInProcess('--help'), await uvitInProcess('forward', '--help'), await uvitInProcess('sample', '--help')];
    expect(top.code).toBe(0);
    for (const c of ['forward', 'sample', 'init-weights', 'export']) expect(top.stdout).toContain(c);
    expect((await uvitInProcess()).code).toBe(2); // no command: help, exit 2
    for (const c of ['stage', 'serve']) expect(top.stdout).toContain(c); // lazily loaded entries of the registry
    let err = '';
    const broken = lazy('broken', 'a module without its command', 'brokenCommand', async () => ({}));
    expect(await main(['broken', '--x'], { stdout: () => {}, stderr: (t) => void (err += t) }, [broken])).toBe(1);
    expect(err).toMatch(/command 'broken' is not available/);
    expect(fwd.code).toBe(0);
    expect(fwd.stdout).toContain('usage: uvit forward --config C.json --weights W.safetensors --x X.npy --t T.npy');
    expect(smp.stdout).toContain('--empty-context');
    expect(smp.stdout).toMatch(/zeros/);
  });
});
