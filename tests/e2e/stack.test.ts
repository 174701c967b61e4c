// End to end, as a user runs it: the real edge under `wrangler dev` (workerd) and a real backend group (2 stage
// processes + driver) started by the same code as `npm start`, on free ports with a fresh edge state. A short clip goes
// through the public API via the uvit-client CLI; the MP4 is checked with ffprobe, fetched twice through the CDN URL
// (the second time from the cache); the packed client package generates too, on Node 20 and 22; and after the stop
// no process of the stack is left.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Stack, defaultOptions, ROOT } from '../../scripts/startStack.ts';
import { freePort, freePortRange, groupAlive } from '../../scripts/startProcs.ts';
import { UvitClient } from '../../client/client.ts';
import type { Video } from '../../client/client.ts';
import { probeMp4 } from '../../gpu-backend/driver/ffmpeg.ts';
import OpenAI from 'openai';
import { importClient, npxClient, packAndInstallClient, type PackedClient } from './packedClient.ts';

const tmp = mkdtempSync(join(tmpdir(), 'uvit-e2e-'));
let stack: Stack;
let key = '';
const timings: Record<string, number> = {};

let packed: Promise<PackedClient>;

beforeAll(async () => {
  const t0 = performance.now();
  // packed while the stack starts; awaited by its own test
  packed = packAndInstallClient(join(tmp, 'pack'));
  packed.catch(() => {});
  stack = new Stack({
    ...defaultOptions(),
    edgePort: await freePort(),
    stagePort: await freePortRange(2),
    metricsPort: await freePort(),
    stateDir: join(tmp, 'state'),
    log: () => {},
  });
  try {
    await stack.start();
  } catch (e) {
    await stack.stop();
    throw e;
  }
  key = (await stack.createKey('e2e')).key;
  timings.start_s = (performance.now() - t0) / 1000;
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  await packed?.catch(() => {}); // still writing into tmp when its test did not run
  rmSync(tmp, { recursive: true, force: true });
  console.log(`e2e timings: ${JSON.stringify(timings)}`);
}, 240_000);

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin/uvit-client.js'), ...args], {
      env: { ...process.env, UVIT_BASE_URL: stack.baseUrl, UVIT_API_KEY: key },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('e2e: edge (workerd) + backend group', () => {
  let video: Video;

  it('uvit-client generate makes a short clip through the public API; ffprobe agrees', async () => {
    const out = join(tmp, 'clip.mp4');
    const t0 = performance.now();
    const r = await runCli(['generate', 'a red ball bouncing', '--duration', '1', '--steps', '2', '--seed', '7', '--out', out, '--json']);
    timings.generate_s = (performance.now() - t0) / 1000;
    expect(r.code, `${r.stderr}\n--- driver:\n${stack.driver?.tail()}`).toBe(0);
    const res = JSON.parse(r.stdout) as { video: Video; path: string; bytes: number };
    video = res.video;
    expect(res.path).toBe(out);
    expect(video.status).toBe('completed');
    expect(video.progress).toBe(100);
    const p = probeMp4(out);
    expect(p.codec).toBe('h264');
    expect(p.pixFmt).toBe('yuv420p');
    expect(p.duration).toBeCloseTo(1.0, 3);
    expect(p.fps).toBe(video.fps);
    expect(p.frames).toBe(video.fps);
    expect(`${p.width}x${p.height}`).toBe(video.size);
    expect(createHash('sha256').update(readFileSync(out)).digest('hex')).toBe(video.content_sha256);
  });

  it("the driver's /metrics counts the job (Prometheus text)", async () => {
    const text = await (await fetch(`http://${stack.opts.host}:${stack.opts.metricsPort}/metrics`)).text();
    const m = /^uvit_jobs_total\{status="completed"\} (\d+)/m.exec(text);
    expect(Number(m?.[1] ?? 0), text.slice(0, 500)).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^uvit_sampler_steps_total \d+/m);
  });

  it("the driver logs JSON lines (pino), those of the job carrying its group, job and lease ids", () => {
    // every line of the driver's output, less the "--- started/exited" markers the launcher adds
    const lines = readFileSync(stack.driver!.spec.logFile, 'utf8').split('\n').filter((l) => l && !l.startsWith('--- '))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.every((l) => l.name === 'uvit-serve' && typeof l.msg === 'string' && typeof l.time === 'number')).toBe(true);
    const ofJob = lines.filter((l) => l.job === video.id);
    expect(ofJob.length).toBeGreaterThanOrEqual(2); // started, completed
    expect(ofJob.every((l) => typeof l.lease === 'string' && l.attempt === 1 && l.group === `local-${stack.opts.edgePort}`)).toBe(true);
  });

  it('the CDN URL serves the same bytes twice, the second time from the cache, immutable', async () => {
    expect(video.cdn_url).toBeTruthy();
    const url = new URL(video.cdn_url!, stack.baseUrl).toString();
    const a = await fetch(url);
    const bodyA = Buffer.from(await a.arrayBuffer());
    const b = await fetch(url);
    const bodyB = Buffer.from(await b.arrayBuffer());
    expect([a.status, b.status]).toEqual([200, 200]);
    // cacheable until the video expires, never beyond (the signed CDN URL ends then too)
    const maxAge = Number(/^public, max-age=(\d+), immutable$/.exec(b.headers.get('cache-control') ?? '')?.[1]);
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(video.expires_at! - Math.floor(Date.now() / 1000) + 1);
    expect(b.headers.get('x-uvit-cache')).toBe('hit');
    expect(bodyB.equals(bodyA)).toBe(true);
    expect(createHash('sha256').update(bodyB).digest('hex')).toBe(video.content_sha256);
    // a Range request on the CDN URL
    const r = await fetch(url, { headers: { range: 'bytes=0-7' } });
    expect(r.status).toBe(206);
    expect(Buffer.from(await r.arrayBuffer()).equals(bodyA.subarray(0, 8))).toBe(true);
  });

  it('the same seeded request is a cache hit at once; other keys cannot see the video', async () => {
    const c = new UvitClient({ baseUrl: stack.baseUrl, apiKey: key });
    const again = await c.create({ prompt: 'a red ball bouncing', seconds: 1, steps: 2, seed: 7 });
    expect(again.status).toBe('completed');
    expect(again.cached).toBe(true);
    expect(again.content_sha256).toBe(video.content_sha256);
    const other = new UvitClient({ baseUrl: stack.baseUrl, apiKey: (await stack.createKey('e2e-other')).key });
    await expect(other.retrieve(video.id)).rejects.toMatchObject({ status: 404 });
    expect((await other.list()).data).toEqual([]);
  });

  it('the official openai SDK works unchanged against the stack: create (multipart), retrieve, list, downloadContent, delete', async () => {
    const sdk = new OpenAI({ apiKey: key, baseURL: `${stack.baseUrl}/v1` });
    let v = await sdk.videos.create({ prompt: 'a blue cube spinning', seconds: '1' as never });
    const deadline = Date.now() + 120_000;
    while ((v.status === 'queued' || v.status === 'in_progress') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
      v = await sdk.videos.retrieve(v.id);
    }
    expect(v.status).toBe('completed');
    const bytes = Buffer.from(await (await sdk.videos.downloadContent(v.id)).arrayBuffer());
    expect(bytes.subarray(4, 8).toString()).toBe('ftyp');
    expect((await sdk.videos.list({ limit: 10 })).data.map((x) => x.id)).toContain(v.id);
    expect(await sdk.videos.delete(v.id)).toMatchObject({ id: v.id, deleted: true });
  });

  it('the packed uvit-client (npm pack, installed in an empty folder) runs --help, imports by name and generates on Node 20 and 22', async () => {
    const c = await packed;
    timings.pack_s = c.packMs / 1000;
    timings.install_s = c.installMs / 1000;
    // the machine's Node 20 (UVIT_NODE20 elsewhere) and the node@22 devDependency
    const nodes = [process.env.UVIT_NODE20 ?? '/usr/bin/node', join(ROOT, 'node_modules/node/bin/node')];
    const majors = nodes.map((n) => Number(/^v(\d+)/.exec(execFileSync(n, ['--version'], { encoding: 'utf8' }))?.[1]));
    expect(majors).toEqual([20, 22]);
    for (const [i, node] of nodes.entries()) {
      const help = await npxClient(c, node, ['--help']);
      expect(help.stdout).toMatch(/^usage: uvit-client <command>/);
      expect(await importClient(c, node)).toEqual(expect.arrayContaining(['UvitClient', 'RateLimitError', 'NotFoundError', 'VideoPage']));
      const out = join(tmp, `packed-node${majors[i]}.mp4`);
      const r = await npxClient(c, node, ['generate', 'a green cone', '--duration', '1', '--steps', '2', '--seed', String(100 + i), '--out', out, '--json'],
        { UVIT_BASE_URL: stack.baseUrl, UVIT_API_KEY: key });
      timings[`packed_node${majors[i]}_generate_s`] = r.ms / 1000;
      const res = JSON.parse(r.stdout) as { video: Video; path: string };
      expect([res.video.status, res.path]).toEqual(['completed', out]);
      expect(createHash('sha256').update(readFileSync(out)).digest('hex')).toBe(res.video.content_sha256);
    }
  }, 300_000);

  it('stops cleanly: no process of the stack is left', async () => {
    const groups = stack.procs.map((p) => p.pid!).filter(Boolean);
    expect(groups.length).toBe(4); // edge, 2 stages, driver
    await stack.stop();
    for (const g of groups) expect(groupAlive(g), `process group ${g}`).toBe(false);
    await expect(fetch(`${stack.baseUrl}/healthz`)).rejects.toThrow();
  });
});
