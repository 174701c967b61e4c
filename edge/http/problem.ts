// problem+json responses and zod issue → field error mapping.
import type { z } from 'zod';
import { problemBody, type FieldError, type ProblemInit } from '../../shared/api/problem.ts';

export function problem(p: ProblemInit): Response {
  const headers: Record<string, string> = { 'content-type': 'application/problem+json', 'cache-control': 'no-store' };
  if (p.retryAfter !== undefined) headers['retry-after'] = String(p.retryAfter);
  if (p.status === 401) headers['www-authenticate'] = 'Bearer realm="uvit"';
  // A 409 is final (the state it names will not change by retrying), except a video that is not ready yet; the
  // openai SDK retries 409s unless told not to.
  if (p.status === 409 && p.code !== 'video_not_ready') headers['x-should-retry'] = 'false';
  return new Response(JSON.stringify(problemBody(p)), { status: p.status, headers });
}

export function fieldErrors(err: z.ZodError): FieldError[] {
  return err.issues.map((i) => ({
    path: i.path.map(String).join('.'),
    message: i.path.length ? `${i.path.map(String).join('.')}: ${i.message}` : i.message,
    code: i.code,
  }));
}

export function zodProblem(err: z.ZodError, what: string, status = 400): Response {
  const errors = fieldErrors(err);
  return problem({
    status,
    code: 'invalid_request',
    detail: `Invalid ${what}: ${errors.map((e) => e.message).join('; ')}`,
    errors,
  });
}
