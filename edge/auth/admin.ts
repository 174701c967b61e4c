// ADMIN_TOKEN guard for /admin (key management). Compared as SHA-256 digests so lengths never leak.
import type { MiddlewareHandler } from 'hono';
import { sha256Hex } from '../../shared/lease.ts';
import { problem } from '../http/problem.ts';
import type { AppEnv } from '../http/app.ts';
import { hashBytes } from './apiKey.ts';

export const adminGuard: MiddlewareHandler<AppEnv> = async (c, next) => {
  const token = c.env.ADMIN_TOKEN;
  if (!token) return problem({ status: 503, code: 'admin_disabled', detail: 'ADMIN_TOKEN is not configured on this edge.' });
  const m = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
  const ok = crypto.subtle.timingSafeEqual(hashBytes(await sha256Hex(m?.[1] ?? '')), hashBytes(await sha256Hex(token)));
  if (!m || !ok) return problem({ status: 401, code: 'invalid_admin_token', detail: 'Admin routes need "Authorization: Bearer <ADMIN_TOKEN>".' });
  await next();
};
