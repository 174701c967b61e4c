// RFC 9457 problem details, the only error body the API returns. Also carries an OpenAI-style `error` object so
// the official SDKs show a readable message.
import * as z from 'zod';

export const FieldError = z.object({
  path: z.string().describe('dotted field path, e.g. "seconds" or "metadata.0"; "" for the whole body'),
  message: z.string(),
  code: z.string(),
});
export type FieldError = z.infer<typeof FieldError>;

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().describe('stable machine-readable code'),
    errors: z.array(FieldError).optional(),
    retry_after: z.number().int().optional(),
    error: z.object({ message: z.string(), type: z.string(), code: z.string(), param: z.string().nullable() }),
  })
  .meta({ id: 'Problem' });
export type Problem = z.infer<typeof Problem>;

/** What code inside the edge passes around; turned into a Problem body by problem(). */
export interface ProblemInit {
  status: number;
  code: string;
  detail: string;
  errors?: FieldError[];
  retryAfter?: number;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 411: 'Length Required', 412: 'Precondition Failed', 413: 'Content Too Large',
  415: 'Unsupported Media Type', 416: 'Range Not Satisfiable', 422: 'Unprocessable Content',
  429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

export function problemBody(p: ProblemInit): Problem {
  return {
    type: `https://uvit.dev/problems/${p.code}`,
    title: TITLES[p.status] ?? 'Error',
    status: p.status,
    detail: p.detail,
    code: p.code,
    ...(p.errors ? { errors: p.errors } : {}),
    ...(p.retryAfter !== undefined ? { retry_after: p.retryAfter } : {}),
    error: {
      message: p.detail,
      type: p.status >= 500 ? 'server_error' : 'invalid_request_error',
      code: p.code,
      param: p.errors?.[0]?.path ?? null,
    },
  };
}
