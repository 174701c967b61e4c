// Lease API: HMAC (unsigned, wrong, stale, replayed, tampered), long-poll, heartbeat, expiry via the DO alarm →
// requeue → failed after N attempts, stale completion ignored, corrupted/truncated upload rejected and requeued.
import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { beforeEach, describe, expect, it } from 'vitest';
import { LEASE_PATHS, SIG_HEADERS, signRequest } from '../../shared/lease.ts';
import type { JobStore } from '../../edge/jobs/JobStore.ts';
import type { Waiters } from '../../edge/jobs/waiters.ts';
import type { CreatedKey } from '../../shared/api/keys.ts';
import { BACKEND_SECRET, MODEL, api, call, createVideo, expectProblem, fakeMp4, lease, newKey, signed, uploadResult } from './helpers.ts';

const stub = () => env.JOBS.get(env.JOBS.idFromName('global')) as DurableObjectStub<JobStore>;

/** Takes every earlier test's unfinished job out of the way. */
async function drain() {
  await runInDurableObject(stub(), (_o, state) => {
    state.storage.sql.exec("UPDATE jobs SET status = 'cancelled', lease_expires = NULL WHERE status IN ('queued', 'in_progress')");
  });
}

/** Makes every live lease overdue and runs the alarm, as if the backend had died. */
async function expireLeases(): Promise<boolean> {
  await runInDurableObject(stub(), (_o, state) => {
    state.storage.sql.exec("UPDATE jobs SET lease_expires = ? WHERE status = 'in_progress'", Date.now() - 1);
  });
  return runDurableObjectAlarm(stub());
}

const status = async (key: string, id: string) => (await (await api(key, `/v1/videos/${id}`)).json<any>());

describe('lease API signatures', () => {
  const body = { group: 'g1', model: MODEL, capacity: 1, wait_ms: 0 };

  it('rejects unsigned, wrongly signed, stale, replayed and tampered requests', async () => {
    const path = LEASE_PATHS.lease;
    const text = JSON.stringify(body);
    await expectProblem(await call(path, { method: 'POST', body: text }), 401, 'invalid_signature');
    const bad = await signRequest({ secret: 'not-the-secret', method: 'POST', path, body: text });
    await expectProblem(await call(path, { method: 'POST', headers: bad, body: text }), 401, 'invalid_signature');
    const stale = await signRequest({ secret: BACKEND_SECRET, method: 'POST', path, body: text, timestamp: Math.floor(Date.now() / 1000) - 120 });
    expect((await expectProblem(await call(path, { method: 'POST', headers: stale, body: text }), 401, 'invalid_signature')).detail).toMatch(/outside ±60 s/);
    const good = await signRequest({ secret: BACKEND_SECRET, method: 'POST', path, body: text });
    await expectProblem(await call(path, { method: 'POST', headers: good, body: JSON.stringify({ ...body, model: 'other' }) }), 401, 'invalid_signature');
    expect((await call(path, { method: 'POST', headers: good, body: text })).status).toBe(204);
    await expectProblem(await call(path, { method: 'POST', headers: good, body: text }), 401, 'replayed_request');
    const otherPath = await signRequest({ secret: BACKEND_SECRET, method: 'POST', path: '/internal/v1/leases/x/fail', body: text });
    await expectProblem(await call(path, { method: 'POST', headers: otherPath, body: text }), 401, 'invalid_signature');
  });

  it('validates lease bodies and models', async () => {
    expect((await expectProblem(await signed('POST', LEASE_PATHS.lease, { ...body, capacity: 0 }), 400, 'invalid_request')).errors[0].path).toBe('capacity');
    await expectProblem(await signed('POST', LEASE_PATHS.lease, { ...body, wait_ms: 60_000 }), 400, 'invalid_request');
    await expectProblem(await signed('POST', LEASE_PATHS.lease, { ...body, model: 'nope' }), 422, 'unknown_model');
  });
});

describe('leases', () => {
  let k: CreatedKey;
  beforeEach(async () => {
    await drain();
    k = await newKey('leaser', { rate_limit_per_min: 10_000 });
  });

  it('long-polls: 204 after wait_ms, and wakes as soon as a job arrives', async () => {
    const t0 = Date.now();
    expect(await lease(300)).toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    const t1 = Date.now();
    const waiting = lease(10_000);
    await new Promise((r) => setTimeout(r, 100));
    const v = await createVideo(k.key, { prompt: 'wake up', size: '64x64', seed: 5 });
    const g = await waiting;
    expect(Date.now() - t1).toBeLessThan(3000);
    expect(g?.job).toMatchObject({ id: v.id, model: MODEL, prompt: 'wake up', seed: 5, width: 64, height: 64, fps: 8, num_frames: 32, steps: 10 });
    expect(g?.attempt).toBe(1);
    expect((await status(k.key, v.id)).status).toBe('in_progress');
  });

  it('long-poll waiters leave no state behind once their requests end (timed out or woken)', async () => {
    const counts = () => runInDurableObject(stub(), (o) => (o as unknown as { waiters: Waiters }).waiters.counts());
    const polls = [lease(400, 'w1'), lease(400, 'w2'), lease(10_000, 'w3')];
    await new Promise((r) => setTimeout(r, 150));
    expect(await counts()).toEqual({ models: 1, waiters: 3 });
    expect(await polls[0]).toBeNull();
    expect(await polls[1]).toBeNull();
    expect(await counts()).toEqual({ models: 1, waiters: 1 });
    const v = await createVideo(k.key, { prompt: 'last waiter', size: '64x64' });
    expect((await polls[2])?.job.id).toBe(v.id);
    expect(await counts()).toEqual({ models: 0, waiters: 0 });
  });

  it('heartbeats carry progress and extend the lease; the alarm is set at lease expiry', async () => {
    const v = await createVideo(k.key, { prompt: 'progress', size: '64x64' });
    const g = (await lease(1000))!;
    const alarm = await runInDurableObject(stub(), (_o, s) => s.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(g.expires_at);
    const hb = await signed('POST', LEASE_PATHS.heartbeat(g.lease_id), { progress: 40 });
    expect(hb.status).toBe(200);
    const h = await hb.json<any>();
    expect(h.cancel).toBe(false);
    expect(h.expires_at).toBeGreaterThanOrEqual(g.expires_at);
    expect((await status(k.key, v.id)).progress).toBe(40);
    await expectProblem(await signed('POST', LEASE_PATHS.heartbeat(g.lease_id), { progress: 101 }), 400, 'invalid_request');
    await expectProblem(await signed('POST', LEASE_PATHS.heartbeat('lease_unknown'), { progress: 1 }), 409, 'lease_lost');
  });

  it('requeues on lease expiry, then fails with the reason after MAX_ATTEMPTS (3)', async () => {
    const v = await createVideo(k.key, { prompt: 'doomed', size: '64x64' });
    for (let attempt = 1; attempt <= 3; attempt++) {
      const g = (await lease(1000))!;
      expect(g.job.id).toBe(v.id);
      expect(g.attempt).toBe(attempt);
      expect(await expireLeases()).toBe(true);
      const s = await status(k.key, v.id);
      expect(s.status).toBe(attempt < 3 ? 'queued' : 'failed');
    }
    const s = await status(k.key, v.id);
    expect(s.attempts).toBe(3);
    expect(s.error.code).toBe('lease_expired');
    expect(s.error.message).toMatch(/failed after 3 attempts; last: lease expired: group g1 sent no heartbeat/);
  });

  it('ignores a stale lease completion; the current lease completes', async () => {
    const v = await createVideo(k.key, { prompt: 'stale', size: '64x64' });
    const old = (await lease(1000))!;
    await expireLeases();
    const cur = (await lease(1000))!;
    expect(cur.job.id).toBe(v.id);
    await expectProblem(await signed('POST', LEASE_PATHS.heartbeat(old.lease_id), { progress: 10 }), 409, 'lease_lost');
    await expectProblem(await uploadResult(old.lease_id, fakeMp4('old')), 409, 'lease_lost');
    const bytes = fakeMp4('current');
    expect((await uploadResult(cur.lease_id, bytes)).status).toBe(200);
    expect((await status(k.key, v.id)).status).toBe('completed');
    await expectProblem(await uploadResult(cur.lease_id, bytes), 409, 'lease_lost'); // duplicate completion
    await expectProblem(await uploadResult(old.lease_id, bytes), 409, 'lease_lost');
  });

  it('rejects a truncated or corrupted upload by hash, stores nothing, and requeues the job', async () => {
    const v = await createVideo(k.key, { prompt: 'corrupt', size: '64x64' });
    const g = (await lease(1000))!;
    const full = fakeMp4('full', 8192);
    const { sha256Hex } = await import('../../shared/lease.ts');
    const sha = await sha256Hex(full);
    const p = await expectProblem(await uploadResult(g.lease_id, full.subarray(0, 5000), { declaredSha: sha }), 422, 'result_corrupt');
    expect(p.detail).toMatch(/job is queued/);
    expect(await env.RESULTS.head(`videos/${sha}.mp4`)).toBeNull();
    const s = await status(k.key, v.id);
    expect(s).toMatchObject({ status: 'queued', attempts: 1 });
    const g2 = (await lease(1000))!;
    expect(g2.attempt).toBe(2);
    expect((await uploadResult(g2.lease_id, full)).status).toBe(200);
    expect((await status(k.key, v.id)).content_sha256).toBe(sha);
  });

  it('checks upload headers: Content-Length, X-Content-SHA256, signature over the declared hash', async () => {
    await createVideo(k.key, { prompt: 'headers', size: '64x64' });
    const g = (await lease(1000))!;
    const path = LEASE_PATHS.result(g.lease_id);
    const bytes = fakeMp4('h');
    const sig = await signRequest({ secret: BACKEND_SECRET, method: 'PUT', path, bodySha256: 'ab'.repeat(32) });
    await expectProblem(await call(path, { method: 'PUT', headers: { ...sig, [SIG_HEADERS.contentSha256]: 'cd'.repeat(32) }, body: bytes }), 401, 'invalid_signature');
    await expectProblem(await call(path, { method: 'PUT', headers: { ...sig, [SIG_HEADERS.contentSha256]: 'zz' }, body: bytes }), 400, 'invalid_content_sha256');
  });

  it('fail: retryable requeues, non-retryable fails with the reason', async () => {
    const v = await createVideo(k.key, { prompt: 'flaky', size: '64x64' });
    const g = (await lease(1000))!;
    const r1 = await signed('POST', LEASE_PATHS.fail(g.lease_id), { reason: 'stage 1 died', retryable: true });
    expect(await r1.json()).toEqual({ id: v.id, status: 'queued' });
    const g2 = (await lease(1000))!;
    const r2 = await signed('POST', LEASE_PATHS.fail(g2.lease_id), { reason: 'prompt tokenizer rejected input', retryable: false, code: 'bad_prompt' });
    expect((await r2.json<any>()).status).toBe('failed');
    expect((await status(k.key, v.id)).error).toEqual({ code: 'bad_prompt', message: 'prompt tokenizer rejected input' });
  });

  it('cancel and delete reach the backend through heartbeats', async () => {
    const v = await createVideo(k.key, { prompt: 'cancel me', size: '64x64' });
    const g = (await lease(1000))!;
    const c = await api(k.key, `/v1/videos/${v.id}/cancel`, { method: 'POST' });
    expect((await c.json<any>()).status).toBe('cancelled');
    expect((await (await signed('POST', LEASE_PATHS.heartbeat(g.lease_id), { progress: 50 })).json<any>()).cancel).toBe(true);
    await expectProblem(await uploadResult(g.lease_id, fakeMp4('late')), 409, 'lease_lost');
    await expectProblem(await api(k.key, `/v1/videos/${v.id}/cancel`, { method: 'POST' }), 409, 'video_not_cancellable');

    const w = await createVideo(k.key, { prompt: 'delete me', size: '64x64' });
    const g2 = (await lease(1000))!;
    const d = await api(k.key, `/v1/videos/${w.id}`, { method: 'DELETE' });
    expect(await d.json()).toEqual({ id: w.id, object: 'video.deleted', deleted: true });
    await expectProblem(await signed('POST', LEASE_PATHS.heartbeat(g2.lease_id), { progress: 50 }), 409, 'lease_lost');
    await expectProblem(await api(k.key, `/v1/videos/${w.id}`), 404, 'video_not_found');
  });
});
