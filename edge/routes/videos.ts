// Public /v1/videos* routes (OpenAI Videos API compatible). Each handler = validate → one JobStore RPC → respond.
import { Hono } from 'hono';
import { canonicalJson, canonicalParams, CreateVideoBody, ListQuery, NUMERIC_FIELDS } from '../../shared/api/videos.ts';
import { ARTIFACT_NAME, paramsHash, PRIMARY_ARTIFACT, sha256Hex } from '../../shared/lease.ts';
import { bearer } from '../auth/bearer.ts';
import { checkWebhookUrl, egressPolicy } from '../auth/egress.ts';
import { extOf, r2Key } from '../cache/cdnToken.ts';
import { cdnCacheKey } from './cdn.ts';
import { serveObject } from '../cache/serve.ts';
import { keyStore } from '../env.ts';
import type { AppEnv } from '../http/app.ts';
import { origin, publicOrigin } from '../http/app.ts';
import { decodeBody } from '../http/body.ts';
import { problem, zodProblem } from '../http/problem.ts';
import { reply, withRate } from '../http/reply.ts';
import { absolutize } from '../jobs/videoRow.ts';
import { findModel } from '../models.ts';

const CREATE_BODY_LIMIT = 64 * 1024;

export const videos = new Hono<AppEnv>();
videos.use('*', bearer);

videos.post('/', async (c) => {
  const idemKey = c.req.header('idempotency-key') ?? null;
  if (idemKey !== null && !/^[\x21-\x7e]{1,255}$/.test(idemKey))
    return problem({ status: 400, code: 'invalid_idempotency_key', detail: 'Idempotency-Key must be 1-255 printable ASCII characters.' });
  const decoded = await decodeBody(c.req.raw, CREATE_BODY_LIMIT, NUMERIC_FIELDS);
  if (!decoded.ok) return problem(decoded.problem);
  const parsed = CreateVideoBody.safeParse(decoded.value);
  if (!parsed.success) return zodProblem(parsed.error, 'video request');
  const body = parsed.data;
  if (body.webhook_url !== undefined) {
    const egress = checkWebhookUrl(body.webhook_url, egressPolicy(c.env));
    if (!egress.ok) {
      const message = `webhook_url: ${egress.reason}`;
      return problem({ status: 400, code: 'invalid_request', detail: `Invalid video request: ${message}`, errors: [{ path: 'webhook_url', message, code: 'webhook_url_refused' }] });
    }
  }
  const model = findModel(c.env, body.model);
  if (!model)
    return problem({ status: 422, code: 'unknown_model', detail: `Model ${JSON.stringify(body.model)} is not served here; see GET /v1/models.`, errors: [{ path: 'model', message: 'model: unknown model', code: 'unknown_model' }] });
  const seed = body.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
  const canon = canonicalParams(body, model, seed);
  if (!canon.ok) return problem({ status: 422, code: 'invalid_parameter', detail: canon.message, errors: [{ path: canon.path, message: `${canon.path}: ${canon.message}`, code: 'out_of_range' }] });
  const params_hash = await paramsHash(canonicalJson(canon.spec), model.revision);
  const idemHash = idemKey ? await sha256Hex(JSON.stringify({ ...body, model: model.id })) : null;
  const r = await keyStore(c.env, c.get('key').keyId).createVideo(c.get('key'), {
    spec: { ...canon.spec, id: '', params_hash },
    seedGiven: body.seed !== undefined,
    webhookUrl: body.webhook_url ?? null,
    webhookEvents: body.webhook_events ?? null,
    idemKey,
    idemHash,
  });
  return reply(r, (v) => {
    const res = c.json(absolutize(v.video, publicOrigin(c.env)), 200);
    if (v.replayed) res.headers.set('idempotent-replayed', 'true');
    return res;
  });
});

videos.get('/', async (c) => {
  const q = ListQuery.safeParse(c.req.query());
  if (!q.success) return zodProblem(q.error, 'list query');
  const r = await keyStore(c.env, c.get('key').keyId).listVideos(c.get('key'), q.data);
  const o = publicOrigin(c.env);
  return reply(r, (l) => c.json({ ...l, data: l.data.map((v) => absolutize(v, o)) }));
});

videos.get('/:id', async (c) => {
  const r = await keyStore(c.env, c.get('key').keyId).getVideo(c.get('key'), c.req.param('id'));
  return reply(r, (v) => c.json(absolutize(v, publicOrigin(c.env))));
});

videos.delete('/:id', async (c) => {
  const r = await keyStore(c.env, c.get('key').keyId).deleteVideo(c.get('key'), c.req.param('id'));
  // Evict the CDN copies of its artifacts (this location's cache; elsewhere it ages out by its expiry, or needs a zone purge).
  if (r.ok) for (const path of r.value.purge) await caches.default.delete(cdnCacheKey(origin(c.req.url), path));
  return reply(r, (v) => c.json({ id: v.id, object: 'video.deleted', deleted: true }));
});

videos.post('/:id/cancel', async (c) => {
  const r = await keyStore(c.env, c.get('key').keyId).cancelVideo(c.get('key'), c.req.param('id'));
  return reply(r, (v) => c.json(absolutize(v, publicOrigin(c.env))));
});

// ?variant= names an artifact of the video: video (default), thumbnail, spritesheet (as the OpenAI Videos API has
// them), or any other the backend stored.
videos.get('/:id/content', async (c) => {
  const variant = c.req.query('variant') ?? PRIMARY_ARTIFACT;
  if (!ARTIFACT_NAME.test(variant))
    return problem({ status: 400, code: 'invalid_variant', detail: `variant=${JSON.stringify(variant.slice(0, 40))} is not a variant name; e.g. video, thumbnail, spritesheet.`, errors: [{ path: 'variant', message: `variant: must match ${ARTIFACT_NAME}`, code: 'invalid_value' }] });
  const id = c.req.param('id');
  const r = await keyStore(c.env, c.get('key').keyId).contentOf(c.get('key'), id, variant);
  if (!r.ok) return withRate(problem(r.problem), r.rate);
  const { artifact: a, expiresAt } = r.value;
  // a private copy, kept no longer than an hour and never past the video's expiry
  const left = expiresAt === null ? 3600 : Math.max(0, Math.floor((expiresAt - Date.now()) / 1000));
  const ext = extOf(a.content_type);
  const res = await serveObject(c.env.RESULTS, r2Key(a.sha256, ext), c.req.raw, a.sha256, {
    'cache-control': `private, max-age=${Math.min(3600, left)}`,
    'content-disposition': `attachment; filename="${id}${variant === PRIMARY_ARTIFACT ? '' : `-${variant}`}.${ext}"`,
  });
  return withRate(res, r.rate);
});

videos.get('/:id/events', async (c) => {
  const k = c.get('key');
  const id = c.req.param('id');
  const res = await keyStore(c.env, c.get('key').keyId).fetch(`https://jobstore/events/${encodeURIComponent(id)}`, {
    headers: { 'x-key-id': k.keyId, 'x-key-hash': k.keyHash, 'x-origin': publicOrigin(c.env) },
  });
  // the store answers with the finished response (a problem+json refusal or the event stream); a copy, because the
  // middleware adds headers and a fetched response's are immutable
  return new Response(res.body, res);
});
