// /healthz, /openapi.json, /v1/models and the bare /bench/hello baseline route.
import { Hono } from 'hono';
import { buildOpenApi } from '../../shared/api/openapi.ts';
import { bearer } from '../auth/bearer.ts';
import { keyStore } from '../env.ts';
import type { AppEnv } from '../http/app.ts';
import { reply } from '../http/reply.ts';
import { catalog, imageCatalog } from '../models.ts';

export const meta = new Hono<AppEnv>();
let doc: unknown;

meta.get('/healthz', (c) => c.json({ status: 'ok', time: Date.now() }));
meta.get('/openapi.json', (c) => c.json((doc ??= buildOpenApi())));
meta.get('/bench/hello', (c) => c.text('hello'));

meta.get('/v1/models', bearer, async (c) => {
  const r = await keyStore(c.env, c.get('key').keyId).modelsView(c.get('key'));
  return reply(r, (groups) => c.json({ object: 'list', data: [...catalog(c.env), ...imageCatalog(c.env)].map((m) => ({ ...m, object: 'model', backend_groups: groups[m.id] ?? 0 })) }));
});
