// Attacks on the edge's own checks (workerd, the real worker): a signed lease request replayed once its timestamp
// is still accepted but the old nonce memory had forgotten it. docs/security.md maps each finding to its test.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LEASE_PATHS, SIGNATURE_WINDOW_S, signRequest } from '../../shared/lease.ts';
import { BACKEND_SECRET, MODEL, call, expectProblem } from './helpers.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('finding 6: signed lease requests cannot be replayed within their timestamp window', () => {
  it('a request stamped now+60 s is accepted once and refused again at +120.4 s', async () => {
    const path = LEASE_PATHS.lease;
    const text = JSON.stringify({ group: 'replay', model: MODEL, capacity: 1, wait_ms: 0 });
    const t0 = Date.now();
    const headers = await signRequest({ secret: BACKEND_SECRET, method: 'POST', path, body: text, timestamp: Math.floor(t0 / 1000) + SIGNATURE_WINDOW_S });
    const first = await call(path, { method: 'POST', headers, body: text });
    expect([200, 204]).toContain(first.status);
    await first.body?.cancel();
    // the edge's clock (this isolate's, the JobStore's too) moves on 120.4 s: the timestamp is still inside ±60 s
    vi.useFakeTimers({ toFake: ['Date'], now: t0 + 120_400 });
    await expectProblem(await call(path, { method: 'POST', headers, body: text }), 401, 'replayed_request');
  });
});
