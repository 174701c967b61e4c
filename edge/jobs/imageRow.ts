// Job row of an image job → the public ImageGeneration object (relative CDN paths; the route makes them absolute and
// fetches the PNGs itself for response_format b64_json).
import type { ImageGeneration } from '../../shared/api/images.ts';
import type { VideoStatus } from '../../shared/api/videos.ts';
import type { Artifact, JobSpec } from '../../shared/lease.ts';
import type { JobRow } from './schema.ts';

/** A stored PNG of the job and its CDN path (null without CDN_SECRET). */
export type ImageArtifact = Artifact & { cdn_path: string | null };

/** The job as the API shows it, and its PNGs in order (image-0 first) once it is completed. */
export interface ImageJobView {
  generation: Omit<ImageGeneration, 'data'>;
  images: ImageArtifact[];
}

export function isImageJob(r: JobRow): boolean {
  return (JSON.parse(r.spec) as JobSpec).kind === 'image';
}

export function toImageJob(r: JobRow, images: ImageArtifact[]): ImageJobView {
  const spec = JSON.parse(r.spec) as JobSpec;
  const done = r.status === 'completed';
  const order = (a: Artifact) => Number(a.name.slice('image-'.length));
  return {
    generation: {
      id: r.id,
      object: 'image.generation',
      status: r.status as VideoStatus,
      progress: done ? 100 : Math.round(r.progress),
      created: Math.floor(r.created_at / 1000),
      completed_at: r.completed_at === null ? null : Math.floor(r.completed_at / 1000),
      expires_at: r.expires_at === null ? null : Math.floor(r.expires_at / 1000),
      model: spec.model,
      prompt: spec.prompt,
      n: spec.n ?? 1,
      size: spec.size,
      class_label: spec.class_label ?? null,
      seed: spec.seed,
      steps: spec.steps,
      guidance: spec.guidance,
      error: r.error_code ? { code: r.error_code, message: r.error_message ?? '' } : null,
    },
    images: done ? images.filter((a) => /^image-\d+$/.test(a.name)).sort((a, b) => order(a) - order(b)) : [],
  };
}
