// A JobStore result as an HTTP response: the value through `ok`, a problem as problem+json, and the key's
// rate-limit state as x-ratelimit-limit / -remaining / -reset (requests per minute, left now, seconds to full).
import type { RateInfo, Result } from '../jobs/types.ts';
import { problem } from './problem.ts';

export function withRate(res: Response, rate: RateInfo | undefined): Response {
  if (rate) {
    res.headers.set('x-ratelimit-limit', String(rate.limit));
    res.headers.set('x-ratelimit-remaining', String(rate.remaining));
    res.headers.set('x-ratelimit-reset', String(rate.reset));
  }
  return res;
}

export function reply<T>(r: Result<T>, ok: (v: T) => Response): Response {
  return withRate(r.ok ? ok(r.value) : problem(r.problem), r.rate);
}
