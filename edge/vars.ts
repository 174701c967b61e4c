// The worker's R2 bucket and vars (wrangler.toml), all but the JobStore binding: the JobStore Durable Object reads
// these, and env.ts adds the binding that points back at it, so the two modules do not import each other.
import type { EgressVars } from './auth/egress.ts';

export interface Vars extends EgressVars {
  RESULTS: R2Bucket;
  ADMIN_TOKEN?: string;
  METRICS_TOKEN?: string;
  BACKEND_SECRET?: string;
  CDN_SECRET?: string;
  LEASE_TTL_MS?: string;
  MAX_ATTEMPTS?: string;
  MAX_QUEUE?: string;
  WEBHOOK_MAX_ATTEMPTS?: string;
  WEBHOOK_BACKOFF_MS?: string;
  MAX_RESULT_BYTES?: string;
  /** multipart part size (default and most: MAX_PUT_BYTES, 64 MiB); smaller only in tests */
  UPLOAD_PART_BYTES?: string;
  RESULT_TTL_S?: string;
  JOB_SHARDS?: string;
  WEBHOOK_PROGRESS_MIN_MS?: string;
  MODELS_JSON?: string;
  /** the image models served (an array of ImageModelConfig, shared/api/models.ts); none without it */
  IMAGE_MODELS_JSON?: string;
  /** how long POST /v1/images/generations waits for the images before it answers 202 with the job (default 60) */
  IMAGE_WAIT_S?: string;
  /** origin for absolute URLs in responses (download_url, cdn_url); never taken from the Host header */
  PUBLIC_BASE_URL?: string;
}

export function intVar(v: string | undefined, dflt: number): number {
  const n = v === undefined ? NaN : Number(v);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : dflt;
}
