// Static bearer-token guards: ADMIN_TOKEN for /admin (key management); METRICS_TOKEN (or ADMIN_TOKEN) for the
// read-only queue view that autoscalers poll. Compared as SHA-256 digests so lengths never leak.
import type { MiddlewareHandler } from 'hono';
import { sha256Hex } from '../../shared/lease.ts';
import type { Env } from '../env.ts';
import { problem } from '../http/problem.ts';
import type { AppEnv } from '../http/app.ts';
import { hashBytes } from './apiKey.ts';

function tokenGuard(names: ('ADMIN_TOKEN' | 'METRICS_TOKEN')[], code: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const tokens = names.map((n) => (c.env as Env)[n]).filter((t): t is string => !!t);
    if (!tokens.length) return problem({ status: 503, code: `${code}_disabled`, detail: `${names.join(' / ')} is not configured on this edge.` });
    const m = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
    const presented = hashBytes(await sha256Hex(m?.[1] ?? ''));
    let ok = false;
    for (const t of tokens) ok = crypto.subtle.timingSafeEqual(presented, hashBytes(await sha256Hex(t))) || ok;
    if (!m || !ok) return problem({ status: 401, code: `invalid_${code}_token`, detail: `This route needs "Authorization: Bearer <${names.join(' or ')}>".` });
    await next();
  };
}

export const adminGuard = tokenGuard(['ADMIN_TOKEN'], 'admin');
export const metricsGuard = tokenGuard(['METRICS_TOKEN', 'ADMIN_TOKEN'], 'metrics');
