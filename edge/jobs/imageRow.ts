// Job row of an image job → the public ImageGeneration object (relative CDN paths; the route makes them absolute and
// fetches the PNGs itself for response_format b64_json).
import type { ImageGeneration } from '../../shared/api/images.ts';
import type { Artifact, JobSpec } from '../../shared/lease.ts';
import type { JobRow } from './schema.ts';
import { jobFieldsOf } from './videoRow.ts';

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
      created: Math.floor(r.created_at / 1000),
      ...jobFieldsOf(r, spec),
      n: spec.n ?? 1,
      class_label: spec.class_label ?? null,
    },
    images: done ? images.filter((a) => /^image-\d+$/.test(a.name)).sort((a, b) => order(a) - order(b)) : [],
  };
}
