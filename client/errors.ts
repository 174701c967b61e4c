// Error classes, one per status family as in the openai SDK, so callers can `catch (e) { if (e instanceof
// RateLimitError) … }` without reading status codes. Every API error carries the server's problem+json.
import type { Problem } from '../shared/api/problem.ts';

/** Base of everything the client throws on purpose (network failures, API errors, schema mismatches). */
export class UvitError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The server could not be reached, or the connection broke before a response arrived. */
export class UvitConnectionError extends UvitError {}

/** No response within the client's timeout. */
export class UvitTimeoutError extends UvitConnectionError {}

/** The server answered with a status ≥ 400. Subclasses below name the common families. */
export class UvitApiError extends UvitError {
  readonly status: number;
  readonly problem: Problem | undefined;
  /** Seconds from Retry-After (or the problem's retry_after), when the server said. */
  readonly retryAfter: number | undefined;
  constructor(status: number, message: string, problem?: Problem, retryAfter?: number) {
    super(message);
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

export class BadRequestError extends UvitApiError {}
export class AuthenticationError extends UvitApiError {}
export class PermissionDeniedError extends UvitApiError {}
export class NotFoundError extends UvitApiError {}
export class ConflictError extends UvitApiError {}
export class UnprocessableEntityError extends UvitApiError {}
export class RateLimitError extends UvitApiError {}
export class InternalServerError extends UvitApiError {}

const BY_STATUS: Record<number, typeof UvitApiError> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  422: UnprocessableEntityError,
  429: RateLimitError,
};

export function apiError(status: number, message: string, problem?: Problem, retryAfter?: number): UvitApiError {
  const Cls = status >= 500 ? InternalServerError : (BY_STATUS[status] ?? UvitApiError);
  return new Cls(status, message, problem, retryAfter);
}

/** Thrown when a response is not JSON or does not match the shared schema (a client/server version mismatch). */
export class UvitResponseError extends UvitError {}
