// Which JobStore shard holds what. Pure functions of ids and the shard count (JOB_SHARDS), so routing needs no
// lookup:
//   - a key and everything of its own (jobs, idempotency, rate limit, SSE, its owner's result index) live in the
//     shard written into the key id's first byte, chosen from the owner at creation: an owner's keys share a shard,
//     and a key never moves when JOB_SHARDS grows (new owners spread over the new shards);
//   - a lease id carries its shard the same way, so heartbeats and results go straight to it;
//   - a nonce goes to the shard its hash picks; the shared (opt-in) result index to the shard its params hash picks.
// Shard 0 keeps the name of the single store that came before sharding, so that store's data stays reachable.
import { intVar, type Vars } from '../vars.ts';

export const MAX_SHARDS = 256;

export function shardCount(env: Pick<Vars, 'JOB_SHARDS'>): number {
  return Math.min(MAX_SHARDS, intVar(env.JOB_SHARDS, 1));
}

export function shardName(i: number): string {
  return i === 0 ? 'global' : `shard:${i}`;
}

/** Two hex digits naming shard i (the first byte of key ids and lease ids). */
export function shardPrefix(i: number): string {
  return i.toString(16).padStart(2, '0');
}

/** The shard named by an id's first two hex digits (after `skip` characters); 0 for anything else. */
export function shardOfId(id: string, n: number, skip = 0): number {
  const s = parseInt(id.slice(skip, skip + 2), 16);
  return Number.isInteger(s) && s >= 0 && s < n ? s : 0;
}

export function shardOfLease(leaseId: string, n: number): number {
  return leaseId.startsWith('lease_') ? shardOfId(leaseId, n, 'lease_'.length) : 0;
}

/** FNV-1a: a stable, well-spread hash of a string → shard. */
export function shardOfText(s: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0) % n;
}
