// Public /v1/images/generations (OpenAI Images API `images.generate` compatible). The create answers with the images
// when they are done within IMAGE_WAIT_S (200, an ImagesResponse), else 202 with the job, polled at GET …/{id}.
import { Hono } from 'hono';
import { canonicalImageJson, canonicalImageParams, CreateImageBody, IMAGE_NUMERIC_FIELDS, type ImageData, type ImageGeneration, ResponseFormat } from '../../shared/api/images.ts';
import { paramsHash } from '../../shared/lease.ts';
import { bearer } from '../auth/bearer.ts';
import { contentRef } from '../jobs/artifacts.ts';
import { keyStore } from '../env.ts';
import type { AppEnv } from '../http/app.ts';
import { publicOrigin } from '../http/app.ts';
import { decodeBody } from '../http/body.ts';
import { problem, zodProblem } from '../http/problem.ts';
import { withRate } from '../http/reply.ts';
import type { ImageJobView } from '../jobs/imageRow.ts';
import { findImageModel } from '../models.ts';
import { intVar } from '../vars.ts';

const CREATE_BODY_LIMIT = 64 * 1024;

export const images = new Hono<AppEnv>();
images.use('*', bearer);

function base64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** The public object: CDN URLs made absolute, or the PNGs themselves (read from R2) for b64_json. */
async function present(env: AppEnv['Bindings'], v: ImageJobView, format: ResponseFormat): Promise<ImageGeneration> {
  const origin = publicOrigin(env);
  const data = await Promise.all(v.images.map(async (a): Promise<ImageData> => {
    const base = { sha256: a.sha256, bytes: a.bytes };
    if (format === 'url') return { ...base, url: a.cdn_path === null ? undefined : origin + a.cdn_path };
    const obj = await env.RESULTS.get(contentRef(a).key);
    if (!obj) throw new Error(`stored image ${a.name} of ${v.generation.id} is missing`);
    return { ...base, b64_json: base64(new Uint8Array(await obj.arrayBuffer())) };
  }));
  return { ...v.generation, data };
}

images.post('/generations', async (c) => {
  const decoded = await decodeBody(c.req.raw, CREATE_BODY_LIMIT, IMAGE_NUMERIC_FIELDS);
  if (!decoded.ok) return problem(decoded.problem);
  const parsed = CreateImageBody.safeParse(decoded.value);
  if (!parsed.success) return zodProblem(parsed.error, 'image request');
  const body = parsed.data;
  const model = findImageModel(c.env, body.model);
  if (!model)
    return problem({ status: 422, code: 'unknown_model', detail: `Image model ${JSON.stringify(body.model)} is not served here; see GET /v1/models.`, errors: [{ path: 'model', message: 'model: unknown image model', code: 'unknown_model' }] });
  const seed = body.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
  const canon = canonicalImageParams(body, model, seed);
  if (!canon.ok) return problem({ status: 422, code: 'invalid_parameter', detail: canon.message, errors: [{ path: canon.path, message: `${canon.path}: ${canon.message}`, code: 'out_of_range' }] });
  const params_hash = await paramsHash(canonicalImageJson(canon.spec), model.revision);
  const store = keyStore(c.env, c.get('key').keyId);
  const created = await store.createVideo(c.get('key'), {
    spec: { ...canon.spec, id: '', params_hash },
    seedGiven: body.seed !== undefined,
    webhookUrl: null,
    webhookEvents: null,
    idemKey: null,
    idemHash: null,
  });
  if (!created.ok) return withRate(problem(created.problem), created.rate);
  const r = await store.imageJob(c.get('key'), created.value.video.id, intVar(c.env.IMAGE_WAIT_S, 60) * 1000);
  if (!r.ok) return withRate(problem(r.problem), r.rate);
  const g = r.value.generation;
  if (g.status === 'failed' || g.status === 'cancelled') {
    const res = problem({ status: 502, code: g.error?.code ?? 'generation_failed', detail: `Image generation ${g.id} ${g.status}: ${g.error?.message ?? 'no reason given'}.` });
    // the job has ended (after the backends' own retries): sending the same request again would make a new one
    res.headers.set('x-should-retry', 'false');
    return withRate(res, r.rate);
  }
  const res = c.json(await present(c.env, r.value, body.response_format ?? 'url'), g.status === 'completed' ? 200 : 202);
  if (g.status !== 'completed') res.headers.set('location', `/v1/images/generations/${g.id}`);
  return withRate(res, r.rate);
});

images.get('/generations/:id', async (c) => {
  const format = ResponseFormat.safeParse(c.req.query('response_format') ?? 'url');
  if (!format.success) return zodProblem(format.error, 'response_format');
  const r = await keyStore(c.env, c.get('key').keyId).imageJob(c.get('key'), c.req.param('id'), 0);
  if (!r.ok) return withRate(problem(r.problem), r.rate);
  return withRate(c.json(await present(c.env, r.value, format.data)), r.rate);
});
