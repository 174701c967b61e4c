// OpenAPI 3.1 document generated from the zod schemas (zod-to-openapi v9, which targets zod 4).
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import * as z from 'zod';
import { ArtifactName, FailRequest, HeartbeatRequest, HeartbeatResponse, LeaseGrant, LeaseRequest, ResultResponse } from '../lease.ts';
import { ApiKeyInfo, CreatedKey, CreateKeyRequest } from './keys.ts';
import { ModelList } from './models.ts';
import { Problem } from './problem.ts';
import { CreateVideoBody, ListQuery, Video, VideoDeleted, VideoList } from './videos.ts';
import { CreateImageBody, ImageGeneration, ResponseFormat } from './images.ts';
import { WebhookEvent } from './webhooks.ts';

const problemResponses = (...codes: number[]) =>
  Object.fromEntries(codes.map((s) => [String(s), { description: 'problem details', content: { 'application/problem+json': { schema: Problem } } }]));
const json = (schema: z.ZodType, description: string) => ({ description, content: { 'application/json': { schema } } });
const binaryAs = (...types: string[]) => Object.fromEntries(types.map((t) => [t, { schema: z.string().meta({ format: 'binary' }) }]));
const binary = binaryAs('video/mp4', 'image/webp', 'image/jpeg');
const VideoId = z.object({ id: z.string().meta({ description: 'video id', example: 'video_0123456789abcdef0123456789abcdef' }) });

export function buildOpenApi(): Record<string, unknown> {
  const r = new OpenAPIRegistry();
  const bearer = r.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer' });
  const hmac = r.registerComponent('securitySchemes', 'backendHmac', {
    type: 'apiKey', in: 'header', name: 'x-uvit-signature',
    description: 'hex HMAC-SHA256(BACKEND_SECRET, METHOD\\npath\\ntimestamp\\nnonce\\nsha256(body)) with x-uvit-timestamp and x-uvit-nonce',
  });
  const sec = [{ [bearer.name]: [] }];
  const hsec = [{ [hmac.name]: [] }];
  const Lease = z.object({ lease: z.string() });

  r.registerPath({
    method: 'post', path: '/v1/videos', summary: 'Create a video job', security: sec,
    request: {
      headers: z.object({ 'idempotency-key': z.string().optional() }),
      body: { content: { 'application/json': { schema: CreateVideoBody }, 'multipart/form-data': { schema: CreateVideoBody } } },
    },
    responses: { 200: json(Video, 'the new job, or the completed one on a cache hit / idempotent replay'), ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429) },
  });
  r.registerPath({ method: 'get', path: '/v1/videos', summary: "List the caller's videos", security: sec, request: { query: ListQuery }, responses: { 200: json(VideoList, 'a page'), ...problemResponses(400, 401, 429) } });
  r.registerPath({ method: 'get', path: '/v1/videos/{id}', summary: 'Retrieve a video', security: sec, request: { params: VideoId }, responses: { 200: json(Video, 'the video'), ...problemResponses(401, 404, 429) } });
  r.registerPath({ method: 'delete', path: '/v1/videos/{id}', summary: 'Delete a video (cancels it first if running)', security: sec, request: { params: VideoId }, responses: { 200: json(VideoDeleted, 'deleted'), ...problemResponses(401, 404) } });
  r.registerPath({ method: 'post', path: '/v1/videos/{id}/cancel', summary: 'Cancel a queued or running video', security: sec, request: { params: VideoId }, responses: { 200: json(Video, 'cancelled'), ...problemResponses(401, 404, 409) } });
  r.registerPath({
    method: 'get', path: '/v1/videos/{id}/content', summary: 'Download the MP4 or a content variant (ETag, Range)', security: sec,
    request: { params: VideoId, query: z.object({ variant: ArtifactName.optional().describe('video (default), thumbnail or spritesheet') }), headers: z.object({ range: z.string().optional() }) },
    responses: {
      200: { description: 'the MP4, or the variant (image/webp thumbnail, image/jpeg spritesheet)', content: binary },
      206: { description: 'a byte range', content: binary },
      304: { description: 'not modified' },
      ...problemResponses(400, 401, 404, 409, 416),
    },
  });
  r.registerPath({
    method: 'get', path: '/v1/videos/{id}/events', summary: 'Progress as server-sent events (video.<status>, data = Video)', security: sec,
    request: { params: VideoId },
    responses: { 200: { description: 'event stream', content: { 'text/event-stream': { schema: z.string() } } }, ...problemResponses(401, 404) },
  });
  r.registerPath({
    method: 'get', path: '/cdn/{token}/{expires}/{file}', summary: 'Public immutable download (capability URL from Video.cdn_url or Video.variant_cdn_urls)',
    request: { params: z.object({ token: z.string(), expires: z.string().describe('unix seconds, signed'), file: z.string().describe('<sha256>.<mp4|webp|jpg|png>') }) },
    responses: { 200: { description: 'the MP4, a variant or an image', content: binaryAs('video/mp4', 'image/webp', 'image/jpeg', 'image/png') }, 206: { description: 'a byte range' }, ...problemResponses(404, 416) },
  });
  r.registerPath({
    method: 'post', path: '/v1/images/generations', summary: 'Generate images (OpenAI images.generate); waits up to IMAGE_WAIT_S for them', security: sec,
    request: { body: { content: { 'application/json': { schema: CreateImageBody }, 'multipart/form-data': { schema: CreateImageBody } } } },
    responses: {
      200: json(ImageGeneration, 'completed: an ImagesResponse (created, data) with the job fields'),
      202: json(ImageGeneration, 'not done within the wait: the job (data empty); poll GET /v1/images/generations/{id}'),
      ...problemResponses(400, 401, 403, 413, 415, 422, 429, 502),
    },
  });
  r.registerPath({
    method: 'get', path: '/v1/images/generations/{id}', summary: 'Retrieve an image generation', security: sec,
    request: { params: z.object({ id: z.string().meta({ description: 'image generation id', example: 'img_0123456789abcdef0123456789abcdef' }) }), query: z.object({ response_format: ResponseFormat.optional() }) },
    responses: { 200: json(ImageGeneration, 'the job; data holds the images once completed'), ...problemResponses(400, 401, 404, 429) },
  });
  r.registerPath({ method: 'get', path: '/v1/models', summary: 'Models served', security: sec, responses: { 200: json(ModelList, 'models'), ...problemResponses(401) } });
  r.registerPath({ method: 'get', path: '/healthz', summary: 'Liveness', responses: { 200: json(z.object({ status: z.literal('ok'), time: z.number() }), 'ok') } });

  r.registerPath({ method: 'post', path: '/internal/v1/lease', summary: 'Backend: long-poll for a job', security: hsec, request: { body: { content: { 'application/json': { schema: LeaseRequest } } } }, responses: { 200: json(LeaseGrant, 'a lease'), 204: { description: 'no job within wait_ms' }, ...problemResponses(400, 401, 422) } });
  r.registerPath({ method: 'post', path: '/internal/v1/leases/{lease}/heartbeat', summary: 'Backend: progress; extends the lease', security: hsec, request: { params: Lease, body: { content: { 'application/json': { schema: HeartbeatRequest } } } }, responses: { 200: json(HeartbeatResponse, 'extended'), ...problemResponses(400, 401, 409) } });
  r.registerPath({ method: 'post', path: '/internal/v1/leases/{lease}/fail', summary: 'Backend: report failure', security: hsec, request: { params: Lease, body: { content: { 'application/json': { schema: FailRequest } } } }, responses: { 200: json(z.object({ id: z.string(), status: z.enum(['queued', 'failed']) }), 'requeued or failed'), ...problemResponses(400, 401, 409) } });
  r.registerPath({
    method: 'put', path: '/internal/v1/leases/{lease}/result', summary: 'Backend: upload the MP4 (Content-Length + X-Content-SHA256); completes the job', security: hsec,
    request: { params: Lease, headers: z.object({ 'x-content-sha256': z.string() }), body: { content: binaryAs('video/mp4') } },
    responses: { 200: json(ResultResponse, 'completed'), ...problemResponses(400, 401, 409, 411, 413, 422) },
  });
  r.registerPath({
    method: 'get', path: '/internal/v1/queue', summary: 'Queue depth per model for autoscalers (Bearer METRICS_TOKEN)',
    request: { query: z.object({ model: z.string().optional() }) },
    responses: { 200: json(z.object({ model: z.string().optional(), queued: z.number().int(), in_progress: z.number().int(), groups: z.number().int() }).loose(), 'counts'), ...problemResponses(401, 404, 503) },
  });
  r.registerPath({ method: 'post', path: '/admin/v1/keys', summary: 'Admin: create an API key', request: { body: { content: { 'application/json': { schema: CreateKeyRequest } } } }, responses: { 201: json(CreatedKey, 'created; the key is shown only here'), ...problemResponses(400, 401, 503) } });
  r.registerPath({ method: 'delete', path: '/admin/v1/keys/{id}', summary: 'Admin: revoke an API key (immediate)', request: { params: z.object({ id: z.string() }) }, responses: { 200: json(ApiKeyInfo, 'revoked'), ...problemResponses(401, 404, 503) } });
  r.registerWebhook({ method: 'post', path: 'video-event', summary: 'Sent to webhook_url on completion/failure; Standard Webhooks signature headers', request: { body: { content: { 'application/json': { schema: WebhookEvent } } } }, responses: { 200: { description: 'any 2xx acknowledges' } } });

  return new OpenApiGeneratorV31(r.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: 'U-ViT video API', version: '1.0.0', description: 'OpenAI Videos API compatible video generation with a pull-based backend pool.' },
    servers: [{ url: '/' }],
  }) as unknown as Record<string, unknown>;
}
