// Admin CLI for API keys against a running edge (wrangler dev or deployed), via /admin/v1/keys + ADMIN_TOKEN.
//   node scripts/keys.ts create --owner alice [--scopes videos:read,videos:write] [--rate 600] [--max-active 100]
//   node scripts/keys.ts revoke <key id>
//   node scripts/keys.ts list
// Options: --url (or UVIT_BASE_URL, default http://127.0.0.1:8787), --admin-token (or UVIT_ADMIN_TOKEN / ADMIN_TOKEN).
// `create` prints UVIT_API_KEY=… UVIT_BASE_URL=… lines (and the key id / webhook secret) for `eval`/.env use.
import { parseArgs } from 'node:util';
import type { ApiKeyInfo, CreatedKey, CreateKeyRequest } from '../shared/api/keys.ts';

export interface AdminTarget {
  baseUrl: string;
  adminToken: string;
}

async function admin<T>(t: AdminTarget, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(new URL(path, t.baseUrl), {
      method,
      headers: { authorization: `Bearer ${t.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new Error(`cannot reach the edge at ${t.baseUrl}: ${(e as Error).message} (is wrangler dev running?)`);
  }
  const text = await res.text();
  if (!res.ok) {
    let detail = text;
    try { detail = JSON.parse(text).detail ?? text; } catch { /* not JSON */ }
    throw new Error(`${method} ${path} → ${res.status}: ${detail}`);
  }
  return JSON.parse(text) as T;
}

export function createKey(t: AdminTarget, req: Partial<CreateKeyRequest> & { owner: string }): Promise<CreatedKey> {
  return admin<CreatedKey>(t, 'POST', '/admin/v1/keys', req);
}

export function revokeKey(t: AdminTarget, id: string): Promise<ApiKeyInfo> {
  return admin<ApiKeyInfo>(t, 'DELETE', `/admin/v1/keys/${encodeURIComponent(id)}`);
}

export async function listKeys(t: AdminTarget): Promise<ApiKeyInfo[]> {
  return (await admin<{ data: ApiKeyInfo[] }>(t, 'GET', '/admin/v1/keys')).data;
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      'admin-token': { type: 'string' },
      owner: { type: 'string' },
      scopes: { type: 'string' },
      rate: { type: 'string' },
      'max-active': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const [cmd, arg] = positionals;
  const baseUrl = values.url ?? process.env.UVIT_BASE_URL ?? 'http://127.0.0.1:8787';
  const adminToken = values['admin-token'] ?? process.env.UVIT_ADMIN_TOKEN ?? process.env.ADMIN_TOKEN;
  if (!adminToken) throw new Error('no admin token: pass --admin-token or set UVIT_ADMIN_TOKEN');
  const t = { baseUrl, adminToken };
  const int = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  if (cmd === 'create') {
    if (!values.owner) throw new Error('create needs --owner <name>');
    const k = await createKey(t, {
      owner: values.owner,
      ...(values.scopes ? { scopes: values.scopes.split(',') as CreateKeyRequest['scopes'] } : {}),
      ...(values.rate ? { rate_limit_per_min: int('rate', values.rate) } : {}),
      ...(values['max-active'] ? { max_active_jobs: int('max-active', values['max-active']) } : {}),
    });
    if (values.json) console.log(JSON.stringify(k));
    else console.log(`UVIT_API_KEY=${k.key}\nUVIT_BASE_URL=${baseUrl}\nUVIT_KEY_ID=${k.id}\nUVIT_WEBHOOK_SECRET=${k.webhook_secret}`);
  } else if (cmd === 'revoke') {
    if (!arg) throw new Error('revoke needs a key id (UVIT_KEY_ID)');
    const k = await revokeKey(t, arg);
    console.log(`revoked ${k.id} (owner ${k.owner}) at ${new Date((k.revoked_at ?? 0) * 1000).toISOString()}`);
  } else if (cmd === 'list') {
    for (const k of await listKeys(t))
      console.log(`${k.id}  ${k.owner.padEnd(16)} ${k.scopes.join(',').padEnd(25)} ${k.rate_limit_per_min}/min  ${k.revoked_at ? 'REVOKED' : 'active'}`);
  } else {
    throw new Error(`unknown command ${JSON.stringify(cmd ?? '')}; use create | revoke | list`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((e: Error) => {
    console.error(`keys: ${e.message}`);
    process.exit(1);
  });
}
