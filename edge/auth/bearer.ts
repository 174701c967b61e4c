// Bearer-key middleware for /v1: only extracts and hashes the presented key; the JobStore decides (one RPC).
import type { MiddlewareHandler } from 'hono';
import { problem } from '../http/problem.ts';
import type { AppEnv } from '../http/app.ts';
import { presentKey } from './apiKey.ts';

export const bearer: MiddlewareHandler<AppEnv> = async (c, next) => {
  const h = c.req.header('authorization');
  const m = h ? /^Bearer\s+(\S{1,512})\s*$/i.exec(h) : null;
  if (!m) return problem({ status: 401, code: 'missing_api_key', detail: 'Send your API key as "Authorization: Bearer <key>".' });
  c.set('key', await presentKey(m[1]));
  await next();
};
