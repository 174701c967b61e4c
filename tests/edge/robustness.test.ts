// Odd input never yields a 5xx or a non-problem error: malformed URLs, encodings, headers, methods.
import { beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../shared/api/keys.ts';
import { api, call, newKey } from './helpers.ts';

describe('robustness', () => {
  let k: CreatedKey;
  beforeAll(async () => {
    k = await newKey('fuzzer', { rate_limit_per_min: 100_000 });
  });

  const paths = [
    '/v1/videos/%E0%A4%A', '/v1/videos/%', '/v1/videos?limit=%zz', '/v1/videos?after=%E0%A4%A', '/v1/videos?limit=1e400',
    '/v1/videos?limit=-5&order=%00', '/v1/videos//content', '/v1/videos/video_x/content?variant=%ff', '/v1/videos/ /events',
    '/cdn/%/%', '/cdn/a/b/c', '/internal/v1/leases/%/heartbeat', '/admin/v1/keys/%E0', '/openapi.json/x',
  ];
  it.each(paths)('GET %s → 4xx problem+json', async (path) => {
    const res = await api(k.key, path);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    await res.text();
  });

  it('random JSON bodies never produce a 5xx', async () => {
    const values = [null, true, 0, -1, 1e308, -1e308, 1.5, '', 'x'.repeat(300), '\u0000', '\ud800', '💥', [], {}, [1, 'a'], { a: { b: { c: [] } } }];
    const fields = ['prompt', 'model', 'seconds', 'size', 'seed', 'steps', 'guidance', 'fps', 'webhook_url', '__proto__', 'constructor'];
    let seed = 1;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const statuses = new Map<number, number>();
    for (let i = 0; i < 60; i++) {
      const body: Record<string, unknown> = { prompt: 'fuzz' };
      for (let j = 0; j < 1 + rnd(4); j++) body[fields[rnd(fields.length)]] = values[rnd(values.length)];
      const res = await api(k.key, '/v1/videos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      expect(res.status, JSON.stringify(body)).toBeLessThan(500);
      if (res.status !== 200) expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      await res.text();
    }
    expect(statuses.get(400)).toBeGreaterThan(10);
  });

  it('handles unsupported methods and odd headers as 4xx', async () => {
    for (const [method, path] of [['PUT', '/v1/videos'], ['PATCH', '/v1/videos/video_1'], ['POST', '/healthz']]) {
      const res = await api(k.key, path, { method, body: method === 'POST' || method === 'PUT' || method === 'PATCH' ? '{}' : undefined });
      expect(res.status, `${method} ${path}`).toBe(404);
      await res.text();
    }
    const longAuth = await call('/v1/videos', { headers: { authorization: `Bearer ${'x'.repeat(10_000)}` } });
    expect(longAuth.status).toBe(401);
    await longAuth.text();
    const basic = await call('/v1/videos', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(basic.status).toBe(401);
    await basic.text();
  });
});
