// Types of `env` from cloudflare:test / cloudflare:workers = the edge worker's bindings.
import type { Env as EdgeEnv } from '../../edge/env.ts';

declare global {
  namespace Cloudflare {
    interface Env extends EdgeEnv {}
  }
}
export {};
