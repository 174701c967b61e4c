// Every validation error of POST /v1/videos (and the list query) is a precise problem+json with a field path.
import { beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../shared/api/keys.ts';
import { api, createVideo, expectProblem, newKey } from './helpers.ts';

const ok = { prompt: 'a red ball bouncing', size: '64x64', seconds: 4 };

const cases: [string, unknown, number, string, string][] = [
  // name, body, status, code, error path
  ['missing prompt', { size: '64x64' }, 400, 'invalid_request', 'prompt'],
  ['empty prompt', { ...ok, prompt: '   ' }, 400, 'invalid_request', 'prompt'],
  ['prompt wrong type', { ...ok, prompt: 42 }, 400, 'invalid_request', 'prompt'],
  ['prompt with control chars', { ...ok, prompt: 'a\u0000b' }, 400, 'invalid_request', 'prompt'],
  ['prompt too long', { ...ok, prompt: 'x'.repeat(4001) }, 400, 'invalid_request', 'prompt'],
  ['seconds too long', { ...ok, seconds: 17 }, 422, 'invalid_parameter', 'seconds'],
  ['seconds "17"', { ...ok, seconds: '17' }, 422, 'invalid_parameter', 'seconds'],
  ['seconds zero', { ...ok, seconds: 0 }, 422, 'invalid_parameter', 'seconds'],
  ['seconds negative', { ...ok, seconds: -3 }, 422, 'invalid_parameter', 'seconds'],
  ['seconds not numeric', { ...ok, seconds: 'four' }, 400, 'invalid_request', 'seconds'],
  ['seconds huge', { ...ok, seconds: 1e308 }, 422, 'invalid_parameter', 'seconds'],
  ['size malformed', { ...ok, size: 'big' }, 400, 'invalid_request', 'size'],
  ['size not offered', { ...ok, size: '100x100' }, 422, 'invalid_parameter', 'size'],
  ['seed negative', { ...ok, seed: -1 }, 400, 'invalid_request', 'seed'],
  ['seed fractional', { ...ok, seed: 1.5 }, 400, 'invalid_request', 'seed'],
  ['seed too big', { ...ok, seed: 2 ** 32 }, 400, 'invalid_request', 'seed'],
  ['seed as string in JSON', { ...ok, seed: '7' }, 400, 'invalid_request', 'seed'],
  ['steps zero', { ...ok, steps: 0 }, 400, 'invalid_request', 'steps'],
  ['steps over model max', { ...ok, steps: 500 }, 422, 'invalid_parameter', 'steps'],
  ['guidance negative', { ...ok, guidance: -1 }, 400, 'invalid_request', 'guidance'],
  ['guidance "NaN"', { ...ok, guidance: 'NaN' }, 400, 'invalid_request', 'guidance'],
  ['fps over model max', { ...ok, fps: 60 }, 422, 'invalid_parameter', 'fps'],
  ['fps fractional', { ...ok, fps: 7.5 }, 400, 'invalid_request', 'fps'],
  ['webhook_url not http', { ...ok, webhook_url: 'ftp://x.test/h' }, 400, 'invalid_request', 'webhook_url'],
  ['webhook_url not a URL', { ...ok, webhook_url: 'hooks' }, 400, 'invalid_request', 'webhook_url'],
  ['unknown field', { ...ok, colour: 'red' }, 400, 'invalid_request', ''],
  ['unknown model', { ...ok, model: 'sora-2' }, 422, 'unknown_model', 'model'],
  ['array body', [ok], 400, 'invalid_request', ''],
  ['null body', null, 400, 'invalid_request', ''],
];

describe('POST /v1/videos validation', () => {
  let k: CreatedKey;
  beforeAll(async () => {
    k = await newKey('validator', { rate_limit_per_min: 10_000 });
  });
  const post = (body: BodyInit, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    api(k.key, '/v1/videos', { method: 'POST', headers, body });

  it.each(cases)('%s → %i', async (_name, body, status, code, path) => {
    const p = await expectProblem(await post(JSON.stringify(body)), status, code);
    expect(p.errors?.[0]?.path).toBe(path);
    expect(p.errors?.[0]?.message.length).toBeGreaterThan(path.length);
    expect(p.error.message).toBe(p.detail); // OpenAI-style mirror for the SDKs
  });

  it('names every bad field at once', async () => {
    const p = await expectProblem(await post(JSON.stringify({ prompt: 1, seed: 'x', steps: -1 })), 400, 'invalid_request');
    expect(p.errors.map((e: any) => e.path).sort()).toEqual(['prompt', 'seed', 'steps']);
  });

  it('rejects malformed JSON, wrong media types, huge bodies, files and duplicate form fields', async () => {
    expect((await expectProblem(await post('{"prompt": '), 400, 'invalid_json')).detail).toMatch(/not valid JSON/);
    await expectProblem(await post(''), 400, 'invalid_json');
    await expectProblem(await post('prompt=x', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
    await expectProblem(await post(JSON.stringify({ prompt: 'x'.repeat(70_000) })), 413, 'body_too_large');
    const withFile = new FormData();
    withFile.set('prompt', 'x');
    withFile.set('input_reference', new File([new Uint8Array(10)], 'ref.png', { type: 'image/png' }));
    await expectProblem(await api(k.key, '/v1/videos', { method: 'POST', body: withFile }), 422, 'unsupported_parameter');
    const dup = new FormData();
    dup.append('prompt', 'x');
    dup.append('prompt', 'y');
    await expectProblem(await api(k.key, '/v1/videos', { method: 'POST', body: dup }), 400, 'invalid_form');
  });

  it('accepts multipart with numeric strings and unicode prompts', async () => {
    const f = new FormData();
    f.set('prompt', '紅い球が跳ねる 🎈 — «ballon»\nzweite Zeile');
    f.set('seconds', '2');
    f.set('size', '64x64');
    f.set('seed', '42');
    f.set('fps', '8');
    const res = await api(k.key, '/v1/videos', { method: 'POST', body: f });
    expect(res.status).toBe(200);
    const v = await res.json<any>();
    expect(v).toMatchObject({ seconds: '2', seed: 42, fps: 8, prompt: f.get('prompt') });
  });

  it('fills defaults and draws a seed when none is given', async () => {
    const v = await createVideo(k.key, { prompt: 'defaults' });
    expect(v).toMatchObject({ model: 'uvit-t2v-demo', size: '64x64', seconds: '4', fps: 8, steps: 10, guidance: 3, status: 'queued' });
    expect(Number.isInteger(v.seed)).toBe(true);
  });

  it('validates the list query and Idempotency-Key', async () => {
    expect((await expectProblem(await api(k.key, '/v1/videos?limit=0'), 400, 'invalid_request')).errors[0].path).toBe('limit');
    expect((await expectProblem(await api(k.key, '/v1/videos?order=sideways'), 400, 'invalid_request')).errors[0].path).toBe('order');
    await expectProblem(await api(k.key, '/v1/videos?after=video_nope'), 400, 'invalid_cursor');
    await expectProblem(await post(JSON.stringify(ok), { 'content-type': 'application/json', 'idempotency-key': 'x'.repeat(300) }), 400, 'invalid_idempotency_key');
  });

  it('answers unknown routes and bad ids with problem+json 404', async () => {
    await expectProblem(await api(k.key, '/v1/nothing'), 404, 'not_found');
    await expectProblem(await api(k.key, '/v1/videos/%00%ff'), 404, 'video_not_found');
    await expectProblem(await api(k.key, `/v1/videos/${'x'.repeat(5000)}`), 404, 'video_not_found');
  });
});
