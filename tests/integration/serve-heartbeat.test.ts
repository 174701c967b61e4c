// The worker's lease keeping (fake lease-API edge, tiny model in process): heartbeats go out on a timer while a slow
// step makes no progress, so the lease holds; a step that never finishes within the lease gives the job back as a
// retryable failure, fails the stuck forward, and frees the slot for the next job.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDriver, type BuiltDriver } from '../../gpu-backend/demo/demo.ts';
import type { Forward } from '../../gpu-backend/driver/driver.ts';
import { inProcessBackend, type Backend } from '../../gpu-backend/serve/backend.ts';
import { loadGroupConfig } from '../../gpu-backend/serve/groupConfig.ts';
import { Worker, type JobOutcome } from '../../gpu-backend/serve/worker.ts';
import { FakeEdge, job } from './serve-fakeEdge.ts';
import { writeTinyGroup } from './serve-fixtures.ts';

const SECRET = 'test-secret-heartbeat-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'serve-heartbeat-'));
const groupPath = writeTinyGroup(dir);
let edge: FakeEdge;
let engine: Backend;
let built: BuiltDriver;
const logs: string[] = [];
/** how the next forwards behave, by job id (edge side): extra delay, or never return until abandoned */
const slow = new Map<string, number>();
const stuck = new Set<string>();
const hung = new Map<string, (e: Error) => void>();

const forward: Forward = async (inputs, tag) => {
  const video = edge.jobOf.get(tag.jobId) ?? '';
  if (stuck.has(video) && tag.step === 1) return new Promise((_, reject) => hung.set(tag.jobId, reject));
  const ms = slow.get(video);
  if (ms) await new Promise((r) => setTimeout(r, ms));
  return engine.forward(inputs, tag);
};

beforeAll(async () => {
  edge = new FakeEdge(SECRET);
  await edge.start();
  built = await createDriver(groupPath, { forward }); // makes the tiny model's files on first use
  engine = await inProcessBackend(loadGroupConfig(groupPath));
});
afterAll(async () => {
  await built?.close();
  await engine?.close();
  await edge?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function worker(outcomes: JobOutcome[]): Worker {
  return new Worker({
    edge: edge.url, secret: SECRET, group: 'hb', model: 'uvit-tiny', capacity: 1, driver: built.driver,
    solver: 'dpmpp-fast3', cfgMode: 'batch', workDir: join(dir, 'work'), waitMs: 1000,
    abandonJob: (leaseId, reason) => hung.get(leaseId)?.(new Error(reason)),
    log: (l) => logs.push(l), onJobEnd: (o) => outcomes.push(o),
  });
}

describe('worker lease keeping', () => {
  it('heartbeats on a timer while a step makes no progress, so a step slower than the interval keeps its lease', async () => {
    edge.leaseMs = 3000; // heartbeats asked for every 500 ms
    slow.set('video_slow', 1200);
    const outcomes: JobOutcome[] = [];
    const w = worker(outcomes);
    w.start();
    edge.push(job({ id: 'video_slow' }));
    await edge.until((r) => r.results.length === 1, 60_000);
    await w.stop();
    const lease = edge.rec.results[0].lease;
    const beats = edge.rec.heartbeats.filter((b) => b.lease === lease);
    // each 1.2 s step is covered by heartbeats of the same progress, never as far apart as the lease
    const repeats = beats.filter((b, i) => i > 0 && b.progress === beats[i - 1].progress).length;
    expect(repeats, `heartbeats: ${beats.map((b) => b.progress).join(',')}`).toBeGreaterThanOrEqual(3);
    const gaps = beats.slice(1).map((b, i) => b.at - beats[i].at);
    expect(Math.max(...gaps)).toBeLessThan(edge.leaseMs);
    expect(outcomes[0]).toMatchObject({ status: 'completed' });
  });

  it('a step that does not finish within the lease gives the job back (retryable) and frees the slot', async () => {
    edge.leaseMs = 1500;
    stuck.add('video_stuck');
    const outcomes: JobOutcome[] = [];
    const w = worker(outcomes);
    w.start();
    edge.push(job({ id: 'video_stuck' }));
    await edge.until((r) => r.fails.some((f) => edge.jobOf.get(f.lease) === 'video_stuck'), 30_000);
    const fail = edge.rec.fails.find((f) => edge.jobOf.get(f.lease) === 'video_stuck')!;
    expect(fail).toMatchObject({ retryable: true, code: 'step_timeout' });
    expect(fail.reason).toMatch(/no sampler step finished for \d+ ms, longer than the \d+ ms lease: the job is given back/);
    // the stuck forward was failed (abandonJob), so the same slot takes the next job and completes it
    edge.push(job({ id: 'video_after' }));
    await edge.until((r) => r.results.some((x) => edge.jobOf.get(x.lease) === 'video_after'), 60_000);
    await w.stop();
    expect(outcomes.map((o) => o.status)).toEqual(['failed', 'completed']);
    expect(outcomes[0]).toMatchObject({ retryable: true });
    // no heartbeat for the given-back lease after its fail report
    expect(edge.rec.heartbeats.filter((b) => b.lease === fail.lease && b.at > fail.at)).toEqual([]);
  });
});
