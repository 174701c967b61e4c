// Bindings and vars of the edge worker (wrangler.toml).
import type { JobStore } from './jobs/JobStore.ts';

export interface Env {
  JOBS: DurableObjectNamespace<JobStore>;
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
  MODELS_JSON?: string;
}

export function intVar(v: string | undefined, dflt: number): number {
  const n = v === undefined ? NaN : Number(v);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : dflt;
}

/** The one JobStore instance: keys, jobs, queue, leases and webhooks in one strongly consistent SQLite store. */
export function jobStore(env: Env): DurableObjectStub<JobStore> {
  return env.JOBS.get(env.JOBS.idFromName('global'));
}
