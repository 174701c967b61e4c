// Bindings and vars of the edge worker (wrangler.toml): the vars (vars.ts) plus the JobStore binding, and which
// JobStore shard a request goes to (jobs/shards.ts).
import type { JobStore } from './jobs/JobStore.ts';
import { shardCount, shardName, shardOfId, shardOfLease, shardOfText } from './jobs/shards.ts';
import type { Vars } from './vars.ts';

export interface Env extends Vars {
  JOBS: DurableObjectNamespace<JobStore>;
}

export function shard(env: Env, i: number): DurableObjectStub<JobStore> {
  return env.JOBS.get(env.JOBS.idFromName(shardName(i)));
}

/** The shard of a presented key id (a malformed key goes to shard 0, which answers 401 after the same work). */
export function keyStore(env: Env, keyId: string): DurableObjectStub<JobStore> {
  return shard(env, shardOfId(keyId, shardCount(env)));
}

export function leaseStore(env: Env, leaseId: string): DurableObjectStub<JobStore> {
  return shard(env, shardOfLease(leaseId, shardCount(env)));
}

export function nonceStore(env: Env, nonce: string): DurableObjectStub<JobStore> {
  return shard(env, shardOfText(nonce, shardCount(env)));
}

export function allShards(env: Env): DurableObjectStub<JobStore>[] {
  return Array.from({ length: shardCount(env) }, (_, i) => shard(env, i));
}
