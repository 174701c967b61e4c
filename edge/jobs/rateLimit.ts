// Per-key token bucket (requests per minute), in the JobStore's memory: one instance sees every request.
export class RateLimiter {
  private buckets = new Map<string, { tokens: number; at: number }>();

  /** Takes one token; returns 0 when allowed, else the seconds until one is available (for Retry-After). */
  take(keyId: string, perMin: number, now: number): number {
    const rate = perMin / 60_000; // tokens per ms
    const b = this.buckets.get(keyId) ?? { tokens: perMin, at: now };
    b.tokens = Math.min(perMin, b.tokens + (now - b.at) * rate);
    b.at = now;
    this.buckets.set(keyId, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000));
  }
}
