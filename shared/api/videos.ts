// Public video API objects (OpenAI Videos API shape plus our extensions) and request canonicalisation.
import * as z from 'zod';
import type { JobSpec } from '../lease.ts';
import type { ModelConfig } from './models.ts';

const NUMERIC = /^-?\d+(\.\d+)?$/;
// C0/C1 control characters other than tab / newline / carriage return have no place in a prompt.
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;

export const MAX_SECONDS = 16;
export const MAX_PROMPT_CHARS = 4000;

/**
 * Event types a create may subscribe to (webhook_events). Without a list: completed and failed. video.in_progress
 * comes when a backend starts the job (again after a requeue), video.progress when its progress advances, at most
 * once per WEBHOOK_PROGRESS_MIN_MS per video.
 */
export const WebhookEventType = z.enum(['video.completed', 'video.failed', 'video.in_progress', 'video.progress']);
export type WebhookEventType = z.infer<typeof WebhookEventType>;
export const DEFAULT_WEBHOOK_EVENTS: WebhookEventType[] = ['video.completed', 'video.failed'];

/** A prompt: trimmed, 1 to MAX_PROMPT_CHARS characters, no control characters. */
export const Prompt = z
  .string()
  .trim()
  .min(1, 'prompt must not be empty')
  .max(MAX_PROMPT_CHARS, `prompt must be at most ${MAX_PROMPT_CHARS} characters`)
  .refine((s) => !CONTROL.test(s), 'prompt must not contain control characters (other than tab and newline)');

export const CreateVideoBody = z
  .strictObject({
    prompt: Prompt,
    model: z.string().min(1).max(128).optional(),
    seconds: z
      .union([z.number(), z.string().regex(NUMERIC, 'seconds must be a number such as "4" or 8')])
      .optional()
      .describe(`clip length in seconds, string or number, > 0 and ≤ ${MAX_SECONDS}`),
    size: z.string().regex(/^\d{1,5}x\d{1,5}$/, 'size must be "WIDTHxHEIGHT", e.g. "256x256"').optional(),
    seed: z.number().int('seed must be an integer').min(0).max(2 ** 32 - 1).optional(),
    steps: z.number().int('steps must be an integer').min(1).max(1000).optional(),
    guidance: z.number().min(0).max(100).optional(),
    fps: z.number().int('fps must be an integer').min(1).max(120).optional(),
    webhook_url: z
      .url({ protocol: /^https?$/, error: 'webhook_url must be an absolute http(s) URL' })
      .max(2048)
      .optional(),
    webhook_events: z
      .array(WebhookEventType)
      .min(1)
      .max(4)
      .optional()
      .describe('events sent to webhook_url; default ["video.completed", "video.failed"]'),
  })
  .meta({ id: 'CreateVideoRequest' });
export type CreateVideoBody = z.infer<typeof CreateVideoBody>;

/** Fields that multipart/form-data carries as strings but the schema wants as numbers. */
export const NUMERIC_FIELDS = ['seed', 'steps', 'guidance', 'fps'] as const;

export const VideoStatus = z.enum(['queued', 'in_progress', 'completed', 'failed', 'cancelled']);
export type VideoStatus = z.infer<typeof VideoStatus>;

/** What every generation job (a video here, an image generation in images.ts) reports the same way. */
export const jobFields = {
  status: VideoStatus,
  progress: z.number().describe('0-100'),
  completed_at: z.number().int().nullable(),
  expires_at: z.number().int().nullable(),
  model: z.string(),
  prompt: z.string(),
  size: z.string(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  seed: z.number().int(),
  steps: z.number().int(),
  guidance: z.number(),
};

export const Video = z
  .object({
    id: z.string(),
    object: z.literal('video'),
    created_at: z.number().int().describe('unix seconds'),
    seconds: z.string(),
    remixed_from_video_id: z.null(),
    ...jobFields,
    // extensions
    fps: z.number().int(),
    webhook_url: z.string().nullable(),
    attempts: z.number().int(),
    cached: z.boolean().describe('true when served from an identical earlier seeded request'),
    content_sha256: z.string().nullable(),
    bytes: z.number().int().nullable(),
    download_url: z.string().nullable().describe('authenticated download: /v1/videos/{id}/content'),
    cdn_url: z.string().nullable().describe('unguessable, cacheable public URL of the MP4'),
    variant_cdn_urls: z
      .record(z.string(), z.string())
      .nullable()
      .default(null)
      .describe(
        'when completed: the public CDN URL of each content variant the video has, by name (thumbnail, spritesheet), ' +
          'signed with the same expiry as cdn_url; {} for a video without variants; null before completion, without a ' +
          'CDN, or from an edge that does not list them',
      ),
  })
  .meta({ id: 'Video' });
export type Video = z.infer<typeof Video>;

export const VideoList = z
  .object({
    object: z.literal('list'),
    data: z.array(Video),
    has_more: z.boolean(),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
  })
  .meta({ id: 'VideoList' });
export type VideoList = z.infer<typeof VideoList>;

export const VideoDeleted = z
  .object({ id: z.string(), object: z.literal('video.deleted'), deleted: z.literal(true) })
  .meta({ id: 'VideoDeleted' });

export const ListQuery = z.strictObject({
  after: z.string().max(128).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  order: z.enum(['asc', 'desc']).default('desc'),
});
export type ListQuery = z.infer<typeof ListQuery>;

export const VIDEO_ID = /^video_[0-9a-f]{32}$/;

/** Why a request's parameter is refused: the problem+json field and message. */
export type Refused = { ok: false; path: string; message: string };

/** A size the model does not offer, refused. */
export function sizeRefused(size: string, model: { id: string; sizes: string[] }): Refused | undefined {
  return model.sizes.includes(size) ? undefined : { ok: false, path: 'size', message: `size ${size} is not offered by model ${model.id}; one of ${model.sizes.join(', ')}` };
}

/** A number outside the model's [min, max] for it, refused. */
export function outOfRange(path: string, v: number, r: { min: number; max: number }, model: string): Refused | undefined {
  return v < r.min || v > r.max ? { ok: false, path, message: `${path} must be in [${r.min}, ${r.max}] for ${model}, got ${v}` } : undefined;
}

/** Canonical generation parameters for a validated body against its model; `seed` must be resolved first. */
export function canonicalParams(
  body: CreateVideoBody,
  model: ModelConfig,
  seed: number,
): { ok: true; spec: Omit<JobSpec, 'id' | 'params_hash'> } | Refused {
  const seconds = body.seconds === undefined ? model.default_seconds : Number(body.seconds);
  if (!(seconds > 0) || seconds > Math.min(MAX_SECONDS, model.max_seconds))
    return { ok: false, path: 'seconds', message: `seconds must be > 0 and ≤ ${Math.min(MAX_SECONDS, model.max_seconds)}, got ${body.seconds}` };
  const size = body.size ?? model.sizes[0];
  const fps = body.fps ?? model.fps.default;
  const steps = body.steps ?? model.steps.default;
  const guidance = body.guidance ?? model.guidance.default;
  const refused = sizeRefused(size, model) ?? outOfRange('fps', fps, model.fps, model.id) ?? outOfRange('steps', steps, model.steps, model.id)
    ?? outOfRange('guidance', guidance, model.guidance, model.id);
  if (refused) return refused;
  const [width, height] = size.split('x').map(Number);
  const num_frames = Math.max(1, Math.round(seconds * fps));
  return { ok: true, spec: { model: model.id, prompt: body.prompt, seconds, fps, num_frames, size, width, height, seed, steps, guidance } };
}

/** Stable JSON of the parameters that determine the output bytes (key order fixed). */
export function canonicalJson(spec: Omit<JobSpec, 'id' | 'params_hash'>): string {
  const { model, prompt, seconds, fps, num_frames, size, seed, steps, guidance } = spec;
  return JSON.stringify({ model, prompt, seconds, fps, num_frames, size, seed, steps, guidance });
}
