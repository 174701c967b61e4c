// API keys: missing / malformed / wrong / revoked → 401, scope → 403, one code path for every outcome,
// per-key isolation, admin guard.
import { env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it, vi } from 'vitest';
import { presentKey } from '../../edge/auth/apiKey.ts';
import { verifyKey } from '../../edge/jobs/keys.ts';
import type { JobStore } from '../../edge/jobs/JobStore.ts';
import { api, call, createVideo, expectProblem, newKey } from './helpers.ts';

describe('API key auth', () => {
  it('rejects a missing key with 401 problem+json', async () => {
    const b = await expectProblem(await call('/v1/videos'), 401, 'missing_api_key');
    expect(b.detail).toMatch(/Authorization: Bearer/);
  });

  it('rejects malformed, unknown and wrong-secret keys with the same 401', async () => {
    const k = await newKey();
    const wrongSecret = k.key.slice(0, -4) + (k.key.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const unknownId = k.key.replace(/^uvit_sk_[0-9a-f]{16}/, 'uvit_sk_0000000000000000');
    const bodies = [];
    for (const bad of ['nonsense', unknownId, wrongSecret]) bodies.push(await expectProblem(await api(bad, '/v1/videos'), 401, 'invalid_api_key'));
    expect(new Set(bodies.map((b) => b.detail)).size).toBe(1);
    expect((await api(k.key, '/v1/videos')).status).toBe(200);
  });

  it('revocation takes effect on the very next request', async () => {
    const k = await newKey();
    expect((await api(k.key, '/v1/videos')).status).toBe(200);
    const rev = await call(`/admin/v1/keys/${k.id}`, { method: 'DELETE', headers: { authorization: 'Bearer test-admin-token' } });
    expect(rev.status).toBe(200);
    expect((await rev.json<any>()).revoked_at).toBeTypeOf('number');
    await expectProblem(await api(k.key, '/v1/videos'), 401, 'invalid_api_key');
  });

  it('a read-only key gets 403 on writes', async () => {
    const k = await newKey('reader', { scopes: ['videos:read'] });
    expect((await api(k.key, '/v1/videos')).status).toBe(200);
    const res = await api(k.key, '/v1/videos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x' }) });
    await expectProblem(res, 403, 'insufficient_scope');
  });

  it('runs one lookup and one constant-time compare whatever the outcome (no early exit)', async () => {
    const k = await newKey();
    const revoked = await newKey('bob');
    await call(`/admin/v1/keys/${revoked.id}`, { method: 'DELETE', headers: { authorization: 'Bearer test-admin-token' } });
    const stub = env.JOBS.get(env.JOBS.idFromName('global')) as DurableObjectStub<JobStore>;
    const cases = {
      valid: k.key,
      malformed: 'garbage',
      unknownId: k.key.replace(/^uvit_sk_[0-9a-f]{16}/, 'uvit_sk_ffffffffffffffff'),
      wrongSecret: k.key.slice(0, -1) + (k.key.endsWith('A') ? 'B' : 'A'),
      revoked: revoked.key,
    };
    const counts = await runInDurableObject(stub, async (_o, state) => {
      const out: Record<string, { compares: number; execs: number; ok: boolean }> = {};
      for (const [name, raw] of Object.entries(cases)) {
        const p = await presentKey(raw);
        const cmp = vi.spyOn(crypto.subtle, 'timingSafeEqual');
        const exec = vi.spyOn(state.storage.sql, 'exec');
        const r = verifyKey(state.storage.sql, p, 'videos:read');
        out[name] = { compares: cmp.mock.calls.length, execs: exec.mock.calls.length, ok: r.ok };
        cmp.mockRestore();
        exec.mockRestore();
      }
      return out;
    });
    for (const [name, c] of Object.entries(counts)) {
      expect({ name, compares: c.compares, execs: c.execs }).toEqual({ name, compares: 1, execs: 1 });
      expect(c.ok).toBe(name === 'valid');
    }
  });

  it("never shows one key another key's jobs", async () => {
    const a = await newKey('alice');
    const b = await newKey('mallory');
    const v = await createVideo(a.key, { prompt: 'private', size: '64x64' });
    for (const [method, path] of [
      ['GET', `/v1/videos/${v.id}`],
      ['GET', `/v1/videos/${v.id}/content`],
      ['GET', `/v1/videos/${v.id}/events`],
      ['POST', `/v1/videos/${v.id}/cancel`],
      ['DELETE', `/v1/videos/${v.id}`],
    ])
      await expectProblem(await api(b.key, path, { method }), 404, 'video_not_found');
    const list = await (await api(b.key, '/v1/videos')).json<any>();
    expect(list.data.map((x: any) => x.id)).not.toContain(v.id);
    expect((await api(a.key, `/v1/videos/${v.id}`)).status).toBe(200);
  });

  it('guards the admin API with ADMIN_TOKEN', async () => {
    await expectProblem(await call('/admin/v1/keys', { method: 'POST', body: '{}' }), 401, 'invalid_admin_token');
    await expectProblem(await call('/admin/v1/keys', { headers: { authorization: 'Bearer nope' } }), 401, 'invalid_admin_token');
    const list = await call('/admin/v1/keys', { headers: { authorization: 'Bearer test-admin-token' } });
    expect(list.status).toBe(200);
    const text = await list.text();
    expect(text).not.toMatch(/uvit_sk_/); // listing never shows secrets
  });

  it('rate-limits per key with 429 and Retry-After', async () => {
    const k = await newKey('slow', { rate_limit_per_min: 3 });
    for (let i = 0; i < 3; i++) expect((await api(k.key, '/v1/videos')).status).toBe(200);
    const res = await api(k.key, '/v1/videos');
    const retry = Number(res.headers.get('retry-after'));
    await expectProblem(res, 429, 'rate_limited');
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(20);
  });
});
