// Requests that span JobStore shards: a backend's lease (every shard swept, so no job waits in a shard nobody
// polls), the queue view and the key list (merged over all shards), and where a new key goes (by owner).
import type { ApiKeyInfo } from '../../shared/api/keys.ts';
import type { LeaseGrant, LeaseRequest } from '../../shared/lease.ts';
import { shard, type Env } from '../env.ts';
import { shardCount, shardOfText } from './shards.ts';
import type { QueueStats } from './types.ts';

/** A long-poll parks on one shard at a time for at most this long, then every shard is swept again. */
export const LEASE_SLICE_MS = 2000;

function randomShard(n: number): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] % n;
}

/**
 * One job for the backend from any shard. Each round claims from the shards in turn, starting at a random one (so
 * backends drain the shards evenly), then parks on a random shard until a job arrives there or the slice ends:
 * a job queued in a shard with no parked poll waits at most one slice. One shard: one long-poll, as before.
 */
export async function leaseAcross(env: Env, req: LeaseRequest, waitMs: number): Promise<LeaseGrant | null> {
  const n = shardCount(env);
  if (n === 1) return shard(env, 0).lease(req, waitMs);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const start = randomShard(n);
    for (let k = 0; k < n; k++) {
      const g = await shard(env, (start + k) % n).lease(req, 0);
      if (g) return g;
    }
    const left = deadline - Date.now();
    if (left <= 0) return null;
    const g = await shard(env, randomShard(n)).lease(req, Math.min(left, LEASE_SLICE_MS));
    if (g) return g;
  }
}

/** Queue depth per model over all shards. Every shard sees every polling group (the sweep), so groups are not summed. */
export async function queueAcross(env: Env, model: string | null): Promise<QueueStats[]> {
  const per = await Promise.all(Array.from({ length: shardCount(env) }, (_, i) => shard(env, i).queueStats(model)));
  const byModel = new Map<string, QueueStats>();
  for (const s of per.flat()) {
    const m = byModel.get(s.model);
    if (!m) byModel.set(s.model, { ...s });
    else {
      m.queued += s.queued;
      m.in_progress += s.in_progress;
      m.groups = Math.max(m.groups, s.groups);
      m.capacity = Math.max(m.capacity, s.capacity);
    }
  }
  return [...byModel.values()].sort((a, b) => a.model.localeCompare(b.model));
}

export async function listKeysAcross(env: Env): Promise<ApiKeyInfo[]> {
  const per = await Promise.all(Array.from({ length: shardCount(env) }, (_, i) => shard(env, i).adminListKeys()));
  return per.flat().sort((a, b) => a.created_at - b.created_at || a.id.localeCompare(b.id));
}

/** The shard a new key of this owner goes to: an owner's keys share one (and so its result index). */
export function ownerShard(env: Env, owner: string): number {
  return shardOfText(`owner:${owner}`, shardCount(env));
}
