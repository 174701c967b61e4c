// /admin/v1/keys: create, list, revoke API keys (ADMIN_TOKEN), used by scripts/keys.ts; /admin/v1/shards: job-store load.
import { Hono } from 'hono';
import { CreateKeyRequest } from '../../shared/api/keys.ts';
import { adminGuard } from '../auth/admin.ts';
import { allShards, keyStore, shard } from '../env.ts';
import { listKeysAcross, ownerShard } from '../jobs/fanout.ts';
import type { AppEnv } from '../http/app.ts';
import { decodeBody } from '../http/body.ts';
import { problem, zodProblem } from '../http/problem.ts';

export const admin = new Hono<AppEnv>();
admin.use('*', adminGuard);

admin.post('/keys', async (c) => {
  const d = await decodeBody(c.req.raw, 16 * 1024, []);
  if (!d.ok) return problem(d.problem);
  const p = CreateKeyRequest.safeParse(d.value);
  if (!p.success) return zodProblem(p.error, 'key request');
  return c.json(await shard(c.env, ownerShard(c.env, p.data.owner)).adminCreateKey(p.data), 201);
});

admin.get('/keys', async (c) => c.json({ object: 'list', data: await listKeysAcross(c.env) }));

admin.delete('/keys/:id', async (c) => {
  const k = await keyStore(c.env, c.req.param('id')).adminRevokeKey(c.req.param('id'));
  return k ? c.json(k) : problem({ status: 404, code: 'key_not_found', detail: `No API key with id ${JSON.stringify(c.req.param('id'))}.` });
});

// Per-shard load (RPC calls since each store instance started) and queue depth: is any shard hotter than its share?
admin.get('/shards', async (c) =>
  c.json({ object: 'list', data: await Promise.all(allShards(c.env).map(async (s, i) => ({ shard: i, ...(await s.stats()) }))) }));
