// Chaos against the real edge (wrangler dev / workerd, started like `npm start`): a seeded fuzz of the public API
// (always a 4xx problem+json, never a 5xx, never a hung request), the signed lease API refusing unsigned, replayed and
// stale requests, a backend that uploads a torn or mis-hashed result (detected and retried), and isolation between
// API keys (no reads, lists, cancels or downloads of another key's jobs; keys never in logs; revocation at once).
// The backend here is the test itself (FakeBackend, model chaos-fake), so no model is needed: this file is the fast
// subset that `npm test` runs. CHAOS_API_N / CHAOS_SEED scale and reproduce it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEASE_PATHS, SIG_HEADERS, signRequest } from '../../shared/lease.ts';
import type { Stack } from '../../scripts/startStack.ts';
import { fuzzCase } from './fuzz.ts';
import { FAKE_MODEL, FUZZ_MODEL, FakeBackend, IDLE_MODEL, HungRequest, allLogs, call, fakeClip, jsonBody, sha256, startChaosStack, waitVideo, type Reply } from './harness.ts';
import { Prng, chaosSeed, fuzzCount } from './prng.ts';
import { Tally } from './stats.ts';

const tally = new Tally('api');
let stack: Stack;
let stop: () => Promise<void>;
let base = '';
/** every secret this run handed out or used: none may appear in any log */
const secrets: string[] = [];

beforeAll(async () => {
  ({ stack, stop } = await startChaosStack({ backend: false, edgeVars: { MAX_QUEUE: '100000' } }));
  base = stack.baseUrl;
  secrets.push(stack.secrets.ADMIN_TOKEN, stack.secrets.BACKEND_SECRET, stack.secrets.CDN_SECRET);
}, 180_000);

afterAll(async () => {
  tally.write();
  await stop?.();
}, 60_000);

async function newKey(owner: string, extra: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const k = await stack.createKey(owner, extra);
  secrets.push(k.key);
  return k;
}

/** A refusal as the API promises it: 4xx, application/problem+json, a body whose status matches, no stack trace. */
function expectProblem(r: Reply, what: string): void {
  expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBeLessThan(500);
  expect(r.headers.get('content-type'), what).toMatch(/^application\/problem\+json/);
  const body = r.json as { status?: number; title?: string; detail?: string } | undefined;
  expect(body?.status, `${what}: problem body ${r.text.slice(0, 200)}`).toBe(r.status);
  expect(r.text, what).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace
}

/** Makes a completed fake-model video for `key` (the test leases and uploads it); returns its id and bytes. */
async function completedVideo(key: string, label: string): Promise<{ id: string; bytes: Uint8Array; cdnPath: string }> {
  const c = await call(base, 'POST', '/v1/videos', { key, ...jsonBody({ prompt: label, model: FAKE_MODEL, seed: 1 + Math.floor(Math.random() * 1e9) }) });
  expect(c.status, c.text).toBe(200);
  const id = (c.json as { id: string }).id;
  const be = new FakeBackend(base, stack.secrets.BACKEND_SECRET);
  // other tests' queued fake jobs may come first: lease until ours, failing the others back (not retryable → failed)
  for (let i = 0; i < 50; i++) {
    const g = await be.lease(2000);
    if (!g) continue;
    if (g.job.id !== id) {
      await be.fail(g.lease_id, 'chaos: not the job this test waits for', false, 'chaos_skip');
      continue;
    }
    const bytes = fakeClip(label);
    const up = await be.upload(g.lease_id, bytes);
    expect(up.status, up.text).toBe(200);
    const v = await waitVideo(base, key, id, (x) => x.status === 'completed', 10_000);
    return { id, bytes, cdnPath: new URL(v.cdn_url!).pathname };
  }
  throw new Error(`video ${id} was never leased`);
}

describe('public API fuzz (seeded)', () => {
  it('every bad request gets a 4xx problem+json, nothing a 5xx, nothing hangs', async () => {
    const seed = chaosSeed();
    const n = fuzzCount('API', 150);
    const r = new Prng(seed);
    const { key } = await newKey('fuzz', { rate_limit_per_min: 1_000_000, max_active_jobs: 100_000 });
    const completed = await completedVideo(key, 'fuzz range target');
    const families = new Map<string, number>();
    const failures: string[] = [];
    for (let i = 0; i < n; i++) {
      const c = fuzzCase(r, { model: FUZZ_MODEL, completedId: completed.id, cdnPath: completed.cdnPath });
      families.set(c.family, (families.get(c.family) ?? 0) + 1);
      const what = `seed ${seed} case ${i} [${c.family}] ${c.method} ${c.path.slice(0, 80)} ${JSON.stringify(c.headers).slice(0, 120)} body ${typeof c.body === 'string' ? JSON.stringify(c.body.slice(0, 120)) : c.body ? `${c.body.length} bytes` : '-'}`;
      tally.add('bad_inputs_tried');
      let res: Reply;
      try {
        res = await call(base, c.method, c.path, { key: c.noAuth ? undefined : key, headers: c.headers, body: c.body as RequestInit['body'], timeoutMs: 10_000 });
      } catch (e) {
        failures.push(`${what}: ${e instanceof HungRequest ? 'HUNG' : (e as Error).message}`);
        continue;
      }
      try {
        if (c.expect === 'bad' || res.status >= 400) expectProblem(res, what);
        else expect(res.status, what).toBeLessThan(300);
        tally.add('bad_inputs_handled');
      } catch (e) {
        failures.push((e as Error).message.split('\n')[0] + ` <- ${what}`);
      }
    }
    console.log(`fuzz: ${n} cases, seed ${seed}: ${[...families].map(([k, v]) => `${k}=${v}`).join(' ')}`);
    expect(failures, failures.slice(0, 10).join('\n')).toEqual([]);
  }, 240_000);

  it('Idempotency-Key: the same body replays the same video, a different body is a 409 problem', async () => {
    const { key } = await newKey('idem');
    const k = `chaos-${Date.now()}`;
    const a = await call(base, 'POST', '/v1/videos', { key, body: JSON.stringify({ prompt: 'idem a', model: FAKE_MODEL }), headers: { 'content-type': 'application/json', 'idempotency-key': k } });
    const again = await call(base, 'POST', '/v1/videos', { key, body: JSON.stringify({ prompt: 'idem a', model: FAKE_MODEL }), headers: { 'content-type': 'application/json', 'idempotency-key': k } });
    const other = await call(base, 'POST', '/v1/videos', { key, body: JSON.stringify({ prompt: 'idem b', model: FAKE_MODEL }), headers: { 'content-type': 'application/json', 'idempotency-key': k } });
    tally.add('bad_inputs_tried');
    expect(a.status, a.text).toBe(200);
    expect(again.status).toBe(200);
    expect((again.json as { id: string }).id).toBe((a.json as { id: string }).id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expectProblem(other, 'idempotency reuse');
    expect(other.status).toBe(409);
    tally.add('bad_inputs_handled');
  });
});

describe('races', () => {
  it('concurrent requests with one Idempotency-Key: one video; a different body concurrently is a 409, never a 5xx', async () => {
    const { key } = await newKey('idem-race', { rate_limit_per_min: 100_000 });
    const k = `race-${Date.now()}`;
    const post = (prompt: string) => call(base, 'POST', '/v1/videos', { key, body: JSON.stringify({ prompt, model: FAKE_MODEL }), headers: { 'content-type': 'application/json', 'idempotency-key': k } });
    const same = await Promise.all(Array.from({ length: 12 }, () => post('race same')));
    tally.add('bad_inputs_tried', 12);
    for (const s of same) expect(s.status, s.text).toBe(200);
    expect(new Set(same.map((s) => (s.json as { id: string }).id)).size).toBe(1);
    tally.add('bad_inputs_handled', 12);
    const mixed = await Promise.all(Array.from({ length: 8 }, (_, i) => post(`race other ${i}`)));
    tally.add('bad_inputs_tried', 8);
    for (const m of mixed) { expectProblem(m, 'idempotency reuse race'); expect(m.status).toBe(409); }
    tally.add('bad_inputs_handled', 8);
    // and the one video is still there, once
    const list = await call(base, 'GET', '/v1/videos?limit=100', { key });
    expect((list.json as { data: unknown[] }).data.length).toBe(1);
  });

  it('cancel and delete racing a backend upload: the upload is refused, the video stays cancelled or gone', async () => {
    const { key } = await newKey('cancel-race');
    const be = new FakeBackend(base, stack.secrets.BACKEND_SECRET);
    for (const action of ['cancel', 'delete'] as const) {
      const c = await call(base, 'POST', '/v1/videos', { key, ...jsonBody({ prompt: `race ${action}`, model: FAKE_MODEL }) });
      const id = (c.json as { id: string }).id;
      let g = await be.lease(3000);
      while (g && g.job.id !== id) { await be.fail(g.lease_id, 'chaos: other job', false); g = await be.lease(3000); }
      expect(g?.job.id).toBe(id);
      const [act, up] = await Promise.all([
        action === 'cancel' ? call(base, 'POST', `/v1/videos/${id}/cancel`, { key }) : call(base, 'DELETE', `/v1/videos/${id}`, { key }),
        be.upload(g!.lease_id, fakeClip(`race ${action}`)),
      ]);
      // either order is fine; what must hold is a consistent end state and no 5xx
      expect(up.status, up.text).toBeLessThan(500);
      expect(act.status, act.text).toBeLessThan(500);
      const after = await call(base, 'GET', `/v1/videos/${id}`, { key });
      if (action === 'delete') {
        expect(act.status).toBe(200);
        expect(after.status).toBe(404);
      } else if (act.status === 200) {
        expect((after.json as { status: string }).status).toBe('cancelled');
        expect(up.status).toBe(409);
      } else {
        expect(act.status).toBe(409); // the upload won: already completed
        expect((after.json as { status: string }).status).toBe('completed');
      }
    }
  });
});

describe('lease API (backend HMAC)', () => {
  it('refuses unsigned, forged, stale, future, replayed and re-targeted requests, never with a 5xx', async () => {
    const secret = stack.secrets.BACKEND_SECRET;
    const path = LEASE_PATHS.lease;
    const body = JSON.stringify({ group: 'chaos-auth', model: IDLE_MODEL, capacity: 1, wait_ms: 0 });
    const now = Math.floor(Date.now() / 1000);
    const send = (headers: Record<string, string>, p: string = path, b: string = body) =>
      call(base, 'POST', p, { headers: { 'content-type': 'application/json', ...headers }, body: b, timeoutMs: 10_000 });
    const cases: [string, () => Promise<Reply>][] = [
      ['unsigned', () => send({})],
      ['wrong secret', async () => send(await signRequest({ secret: 'not-the-secret', method: 'POST', path, body }))],
      ['stale timestamp (-120 s)', async () => send(await signRequest({ secret, method: 'POST', path, body, timestamp: now - 120 }))],
      ['future timestamp (+120 s)', async () => send(await signRequest({ secret, method: 'POST', path, body, timestamp: now + 120 }))],
      ['signature of another body', async () => send(await signRequest({ secret, method: 'POST', path, body: body.replace('chaos-auth', 'chaos-other') }))],
      ['signature of another path', async () => send(await signRequest({ secret, method: 'POST', path: LEASE_PATHS.fail('x'), body }))],
      ['signature of another method', async () => send(await signRequest({ secret, method: 'PUT', path, body }))],
      ['malformed nonce', async () => send({ ...(await signRequest({ secret, method: 'POST', path, body })), [SIG_HEADERS.nonce]: 'short' })],
      ['non-numeric timestamp', async () => send({ ...(await signRequest({ secret, method: 'POST', path, body })), [SIG_HEADERS.timestamp]: '1e10' })],
      ['signature not hex', async () => send({ ...(await signRequest({ secret, method: 'POST', path, body })), [SIG_HEADERS.signature]: 'zz'.repeat(32) })],
      ['oversized signed body', async () => { const big = JSON.stringify({ group: 'g', model: FAKE_MODEL, capacity: 1, pad: 'x'.repeat(70_000) }); return send(await signRequest({ secret, method: 'POST', path, body: big }), path, big); }],
      ['heartbeat for a lease that does not exist', async () => { const p = LEASE_PATHS.heartbeat('lease_nope'); const b = JSON.stringify({ progress: 5 }); return send(await signRequest({ secret, method: 'POST', path: p, body: b }), p, b); }],
      ['result PUT without Content-Length semantics (bad sha header)', async () => call(base, 'PUT', LEASE_PATHS.result('lease_nope'), { headers: { ...(await signRequest({ secret, method: 'PUT', path: LEASE_PATHS.result('lease_nope'), bodySha256: 'nothex' })), [SIG_HEADERS.contentSha256]: 'nothex' }, body: 'abc' })],
    ];
    for (const [what, f] of cases) {
      tally.add('bad_inputs_tried');
      const r = await f();
      expectProblem(r, `lease API: ${what}`);
      tally.add('bad_inputs_handled');
    }
    // replay: the same signed request twice; the first is served, the second refused as a replay
    tally.add('bad_inputs_tried');
    const sig = await signRequest({ secret, method: 'POST', path, body });
    const first = await send(sig);
    expect(first.status, first.text).toBe(204);
    const replay = await send(sig);
    expectProblem(replay, 'replayed lease request');
    expect(replay.status).toBe(401);
    expect((replay.json as { detail: string }).detail).toMatch(/replay/i);
    tally.add('bad_inputs_handled');
  });
});

describe('faults: a backend that uploads a bad result', () => {
  it('a torn upload and a mis-hashed upload are detected and the job retried; a good upload completes it', async () => {
    const { key } = await newKey('torn');
    const c = await call(base, 'POST', '/v1/videos', { key, ...jsonBody({ prompt: 'torn upload', model: FAKE_MODEL }) });
    expect(c.status, c.text).toBe(200);
    const id = (c.json as { id: string }).id;
    const be = new FakeBackend(base, stack.secrets.BACKEND_SECRET);
    const nextLease = async () => {
      for (let i = 0; i < 20; i++) {
        const g = await be.lease(2000);
        if (g && g.job.id === id) return g;
        if (g) await be.fail(g.lease_id, 'chaos: other job', false);
      }
      throw new Error('job not leased');
    };
    const clip = fakeClip('torn upload');

    await tally.fault('torn result upload (connection drops mid-body)', async () => {
      const g1 = await nextLease();
      expect(g1.attempt).toBe(1);
      const status = await be.tornUpload(g1.lease_id, clip, 1000);
      expect(status).not.toMatch(/^HTTP\/1\.1 2/);
      const v = await waitVideo(base, key, id, (x) => x.status === 'queued', 15_000, 'requeue after a torn upload');
      expect(v.attempts).toBe(1);
      expect((await be.heartbeat(g1.lease_id, 50)).status).toBe(409); // the torn lease is over
    });

    await tally.fault('result upload whose bytes do not match X-Content-SHA256', async () => {
      const g2 = await nextLease();
      expect(g2.attempt).toBe(2);
      const bad = clip.slice(0, clip.length - 10);
      const up = await be.upload(g2.lease_id, bad, sha256(clip));
      expectProblem(up, 'mis-hashed upload');
      expect(up.status).toBe(422);
      await waitVideo(base, key, id, (x) => x.status === 'queued', 15_000, 'requeue after a mis-hashed upload');
    });

    const g3 = await nextLease();
    expect(g3.attempt).toBe(3);
    const ok = await be.upload(g3.lease_id, clip);
    expect(ok.status, ok.text).toBe(200);
    const v = await waitVideo(base, key, id, (x) => x.status === 'completed', 15_000);
    expect(v.content_sha256).toBe(sha256(clip));
    const dl = await fetch(`${base}/v1/videos/${id}/content`, { headers: { authorization: `Bearer ${key}` } });
    expect(Buffer.from(await dl.arrayBuffer()).equals(Buffer.from(clip))).toBe(true);
  }, 90_000);
});

describe('isolation and secrets', () => {
  it("one key can never read, list, cancel, delete or download another key's jobs", async () => {
    const a = await newKey('iso-a');
    const b = await newKey('iso-b');
    const done = await completedVideo(a.key, 'iso done');
    const q = await call(base, 'POST', '/v1/videos', { key: a.key, ...jsonBody({ prompt: 'iso queued', model: FAKE_MODEL }) });
    expect(q.status).toBe(200);
    const queued = (q.json as { id: string }).id;
    for (const id of [done.id, queued]) {
      const probes: [string, string][] = [
        ['GET', `/v1/videos/${id}`], ['GET', `/v1/videos/${id}/content`], ['GET', `/v1/videos/${id}/events`],
        ['POST', `/v1/videos/${id}/cancel`], ['DELETE', `/v1/videos/${id}`], ['GET', `/v1/videos?after=${id}`],
      ];
      for (const [m, p] of probes) {
        tally.add('bad_inputs_tried');
        const r = await call(base, m, p, { key: b.key });
        expectProblem(r, `key B ${m} ${p}`);
        expect(r.status, `${m} ${p}`).toBeGreaterThanOrEqual(400);
        expect(r.text).not.toContain('iso done'); // nothing of A's job leaks into the refusal
        tally.add('bad_inputs_handled');
      }
    }
    const list = await call(base, 'GET', '/v1/videos?limit=100', { key: b.key });
    expect(list.status).toBe(200);
    expect((list.json as { data: unknown[] }).data).toEqual([]);
    // A still has both, untouched by B's attempts
    expect((await waitVideo(base, a.key, done.id, () => true, 5000)).status).toBe('completed');
    expect((await waitVideo(base, a.key, queued, () => true, 5000)).status).toBe('queued');
  });

  it('revoking a key takes effect on the very next request', async () => {
    const k = await newKey('revoke');
    expect((await call(base, 'GET', '/v1/videos', { key: k.key })).status).toBe(200);
    await stack.revokeKey(k.id);
    for (const [m, p, body] of [['GET', '/v1/videos', undefined], ['GET', '/v1/models', undefined], ['POST', '/v1/videos', JSON.stringify({ prompt: 'x', model: FAKE_MODEL })]] as const) {
      const r = await call(base, m, p, { key: k.key, body, headers: body ? { 'content-type': 'application/json' } : {} });
      expectProblem(r, `revoked key ${m} ${p}`);
      expect(r.status).toBe(401);
    }
  });

  it('revoking a key also ends its open event streams: nothing after the revocation reaches it', async () => {
    const k = await newKey('revoke-sse');
    const c = await call(base, 'POST', '/v1/videos', { key: k.key, ...jsonBody({ prompt: 'revoke while streaming', model: FAKE_MODEL }) });
    const id = (c.json as { id: string }).id;
    const res = await fetch(`${base}/v1/videos/${id}/events`, { headers: { authorization: `Bearer ${k.key}` }, signal: AbortSignal.timeout(30_000) });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    let ended = false;
    // one read in flight at a time, kept across calls (a read abandoned on timeout would swallow its chunk)
    let pending: ReturnType<typeof reader.read> | null = null;
    const readFor = async (ms: number) => {
      const until = Date.now() + ms;
      while (!ended && Date.now() < until) {
        pending ??= reader.read();
        const r = await Promise.race([pending, new Promise<'t'>((ok) => setTimeout(() => ok('t'), Math.max(0, until - Date.now())))]);
        if (r === 't') break;
        pending = null;
        if (r.done) ended = true;
        else text += Buffer.from(r.value).toString('utf8');
      }
    };
    await readFor(1000);
    expect(text).toContain('event: video.queued');
    const be = new FakeBackend(base, stack.secrets.BACKEND_SECRET);
    let g = await be.lease(3000);
    while (g && g.job.id !== id) { await be.fail(g.lease_id, 'chaos: other job', false); g = await be.lease(3000); }
    await readFor(1000);
    expect(text).toContain('event: video.in_progress'); // the stream works
    await stack.revokeKey(k.id);
    const before = text.length;
    // the revocation cancelled the running job: its driver is told to stop, and its result is refused
    const hb = await be.heartbeat(g!.lease_id, 50);
    expect(hb.status).toBe(200);
    expect(hb.json).toMatchObject({ cancel: true });
    expect((await be.upload(g!.lease_id, fakeClip('revoke while streaming'))).status).toBe(409);
    await readFor(3000);
    const after = text.slice(before);
    try {
      expect(after, 'events reached a revoked key').not.toMatch(/event: video\.|cdn_url/);
      expect(ended, 'the revoked key\'s event stream is still open').toBe(true);
    } finally {
      await reader.cancel().catch(() => {});
    }
  });

  it('no API key, admin token or backend/CDN secret appears in any log of the stack', async () => {
    // make sure some authenticated traffic with each key has happened, then read every log file
    expect(secrets.length).toBeGreaterThan(4);
    const logs = allLogs(stack);
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.map((l) => l.text).join('').length).toBeGreaterThan(0);
    for (const { file, text } of logs) {
      for (const s of secrets) expect(text.includes(s), `a secret (${s.slice(0, 12)}…) appears in ${file}`).toBe(false);
      // the secret part of a key alone is a leak too
      for (const s of secrets.filter((x) => x.startsWith('uvit_sk_'))) expect(text.includes(s.slice(-43)), `key secret part in ${file}`).toBe(false);
    }
  });
});
