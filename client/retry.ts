// When and how long to wait before retrying a request: the openai SDK's policy (exponential backoff with jitter,
// the server's Retry-After / retry-after-ms honoured when it is reasonable).

/** Statuses worth another try: timeouts, rate limits and server-side failures. */
export function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

const MAX_SERVER_DELAY_MS = 60_000;
const BASE_DELAY_MS = 500;
const MAX_BACKOFF_MS = 8_000;

/**
 * Delay before retry number `attempt` (0 = the first retry). A server hint (retry-after-ms, Retry-After in seconds or as
 * an HTTP date) wins when it lies in [0, 60 s]; otherwise 0.5 s · 2^attempt capped at 8 s, minus up to 25 % jitter so
 * that many clients do not retry in lock-step.
 */
export function retryDelayMs(attempt: number, headers: Headers | undefined, now = Date.now(), random = Math.random): number {
  const hint = serverHintMs(headers, now);
  if (hint !== undefined && hint >= 0 && hint <= MAX_SERVER_DELAY_MS) return hint;
  return Math.min(BASE_DELAY_MS * 2 ** attempt, MAX_BACKOFF_MS) * (1 - 0.25 * random());
}

function serverHintMs(headers: Headers | undefined, now: number): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Number(ms);
  const ra = headers?.get('retry-after');
  if (!ra) return undefined;
  if (/^\d+(\.\d+)?$/.test(ra.trim())) return Number(ra) * 1000;
  const at = Date.parse(ra);
  return Number.isNaN(at) ? undefined : at - now;
}
