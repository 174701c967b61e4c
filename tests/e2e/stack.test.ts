// End to end, as a user runs it: the real edge under `wrangler dev` (workerd) and a real backend group (2 stage
// processes + driver) started by the same code as `npm start`, on free ports with a fresh edge state. A short clip goes
// through the public API via the uvit-client CLI; the MP4 is checked with ffprobe, fetched twice through the CDN URL
// (the second time from the cache), and after the stop no process of the stack is left.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
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

const tmp = mkdtempSync(join(tmpdir(), 'uvit-e2e-'));
let stack: Stack;
let key = '';
const timings: Record<string, number> = {};

beforeAll(async () => {
  const t0 = performance.now();
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
  rmSync(tmp, { recursive: true, force: true });
  console.log(`e2e timings: ${JSON.stringify(timings)}`);
}, 60_000);

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

  it('the CDN URL serves the same bytes twice, the second time from the cache, immutable', async () => {
    expect(video.cdn_url).toBeTruthy();
    const url = new URL(video.cdn_url!, stack.baseUrl).toString();
    const a = await fetch(url);
    const bodyA = Buffer.from(await a.arrayBuffer());
    const b = await fetch(url);
    const bodyB = Buffer.from(await b.arrayBuffer());
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
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

  it('stops cleanly: no process of the stack is left', async () => {
    const groups = stack.procs.map((p) => p.pid!).filter(Boolean);
    expect(groups.length).toBe(4); // edge, 2 stages, driver
    await stack.stop();
    for (const g of groups) expect(groupAlive(g), `process group ${g}`).toBe(false);
    await expect(fetch(`${stack.baseUrl}/healthz`)).rejects.toThrow();
  });
});
