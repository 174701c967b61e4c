// Per-key token bucket (requests per minute), in the JobStore's memory: the store that holds a key sees every
// request made with it.
import type { RateInfo } from './types.ts';

export class RateLimiter {
  private buckets = new Map<string, { tokens: number; at: number }>();

  /**
   * Takes one token. `retryAfter` is 0 when allowed, else the seconds until one is available (for Retry-After);
   * the rest is what the x-ratelimit-* headers report.
   */
  take(keyId: string, perMin: number, now: number): RateInfo & { retryAfter: number } {
    const rate = perMin / 60_000; // tokens per ms
    const b = this.buckets.get(keyId) ?? { tokens: perMin, at: now };
    b.tokens = Math.min(perMin, b.tokens + (now - b.at) * rate);
    b.at = now;
    this.buckets.set(keyId, b);
    const allowed = b.tokens >= 1;
    if (allowed) b.tokens -= 1;
    return {
      retryAfter: allowed ? 0 : Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000)),
      limit: perMin,
      remaining: Math.floor(b.tokens),
      reset: Math.ceil((perMin - b.tokens) / rate / 1000), // seconds until the bucket is full again
    };
  }
}
