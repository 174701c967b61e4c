// Bindings and vars of the edge worker (wrangler.toml): the vars (vars.ts) plus the JobStore binding.
import type { JobStore } from './jobs/JobStore.ts';
import type { Vars } from './vars.ts';

export interface Env extends Vars {
  JOBS: DurableObjectNamespace<JobStore>;
}

/** The one JobStore instance: keys, jobs, queue, leases and webhooks in one strongly consistent SQLite store. */
export function jobStore(env: Env): DurableObjectStub<JobStore> {
  return env.JOBS.get(env.JOBS.idFromName('global'));
}
