// Job row → public Video object (relative URLs; the route layer makes them absolute).
import type { JobSpec } from '../../shared/lease.ts';
import type { jobFields, Video, VideoStatus } from '../../shared/api/videos.ts';
import type * as z from 'zod';
import type { JobRow } from './schema.ts';

/** The fields a video and an image generation report alike (shared/api/videos.ts jobFields), from a job row. */
export function jobFieldsOf(r: JobRow, spec: JobSpec): { [K in keyof typeof jobFields]: z.infer<(typeof jobFields)[K]> } {
  return {
    status: r.status as VideoStatus,
    progress: r.status === 'completed' ? 100 : Math.round(r.progress),
    completed_at: r.completed_at === null ? null : Math.floor(r.completed_at / 1000),
    expires_at: r.expires_at === null ? null : Math.floor(r.expires_at / 1000),
    model: spec.model,
    prompt: spec.prompt,
    size: spec.size,
    error: r.error_code ? { code: r.error_code, message: r.error_message ?? '' } : null,
    seed: spec.seed,
    steps: spec.steps,
    guidance: spec.guidance,
  };
}

export function toVideo(r: JobRow): Video {
  const spec = JSON.parse(r.spec) as JobSpec;
  const done = r.status === 'completed';
  return {
    id: r.id,
    object: 'video',
    created_at: Math.floor(r.created_at / 1000),
    seconds: String(spec.seconds),
    remixed_from_video_id: null,
    ...jobFieldsOf(r, spec),
    fps: spec.fps,
    webhook_url: r.webhook_url,
    attempts: r.attempts,
    cached: r.cached === 1,
    content_sha256: done ? r.content_sha256 : null,
    bytes: done ? r.bytes : null,
    download_url: done ? `/v1/videos/${r.id}/content` : null,
    cdn_url: done ? r.cdn_path : null,
    variant_cdn_urls: done && r.variant_cdn !== null ? (JSON.parse(r.variant_cdn) as Record<string, string>) : null,
  };
}

export function absolutize(v: Video, origin: string): Video {
  return {
    ...v,
    download_url: v.download_url && origin + v.download_url,
    cdn_url: v.cdn_url && origin + v.cdn_url,
    variant_cdn_urls: v.variant_cdn_urls && Object.fromEntries(Object.entries(v.variant_cdn_urls).map(([name, path]) => [name, origin + path])),
  };
}

export const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
