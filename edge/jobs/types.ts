// Shapes exchanged between the routes and the JobStore over RPC (plain, structured-clonable data).
import type { ProblemInit } from '../../shared/api/problem.ts';
import type { JobSpec } from '../../shared/lease.ts';

/** What the x-ratelimit-limit / -remaining / -reset headers say (per minute, tokens left, seconds to full). */
export interface RateInfo {
  limit: number;
  remaining: number;
  reset: number;
}

export type Result<T> = ({ ok: true; value: T } | { ok: false; problem: ProblemInit }) & { rate?: RateInfo };

export interface CreateInput {
  spec: JobSpec; // id is ignored (the store assigns one); params_hash set
  seedGiven: boolean;
  webhookUrl: string | null;
  webhookEvents: string[] | null;
  idemKey: string | null;
  idemHash: string | null;
}

export function fail(status: number, code: string, detail: string, retryAfter?: number): { ok: false; problem: ProblemInit } {
  return { ok: false, problem: { status, code, detail, ...(retryAfter !== undefined ? { retryAfter } : {}) } };
}

export interface QueueStats {
  model: string;
  queued: number;
  in_progress: number;
  groups: number; // backend groups that polled in the last minute
  capacity: number; // their summed capacity
}
