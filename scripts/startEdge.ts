// The edge process of the local stack: the worker under wrangler's dev server (workerd), started through wrangler's
// API instead of `wrangler dev` because the CLI always opens a V8 inspector (DevTools: code execution, heap snapshots
// holding the secrets) and cannot turn it off. Here it is off unless --inspector-port is given, and then bound to
// loopback. wrangler's local explorer and trace store (/cdn-cgi/local/explorer: SQL over the Durable Objects, R2
// reads) are turned off through their environment switches. Secrets come in an env file (mode 0600), not argv.
// The worker's outbound requests (webhooks) pass a guard that resolves the host name and applies the edge's egress
// policy to every address it resolves to, which the worker cannot do itself (a name pointing at 127.0.0.1 would
// otherwise reach this machine's ports); refusals are logged with the host only.
//
//   node scripts/startEdge.ts --config wrangler.toml --ip H --port N --persist-to DIR --env-file FILE
//                             [--var K:V]… [--inspector-port N]
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs, parseEnv } from 'node:util';
// the same pure policy module the worker runs (no Workers APIs in it)
import { checkResolved, checkWebhookUrl, egressPolicy, type EgressPolicy } from '../edge/auth/egress.ts';

// wrangler reads these when it builds the dev server's options: set before it loads.
process.env.X_LOCAL_EXPLORER = 'false';
process.env.X_LOCAL_OBSERVABILITY = 'false';

const { values: v } = parseArgs({
  options: {
    config: { type: 'string' }, ip: { type: 'string' }, port: { type: 'string' }, 'persist-to': { type: 'string' },
    'env-file': { type: 'string' }, var: { type: 'string', multiple: true, default: [] }, 'inspector-port': { type: 'string' },
  },
  strict: true,
});
for (const k of ['config', 'ip', 'port', 'persist-to'] as const) if (v[k] === undefined) throw new Error(`startEdge: --${k} is required`);

const { unstable_startWorker } = await import('wrangler');
const vars = Object.fromEntries(v.var.map((kv) => {
  const i = kv.indexOf(':');
  if (i < 1) throw new Error(`startEdge: --var wants NAME:value, got ${kv}`);
  return [kv.slice(0, i), { type: 'plain_text' as const, value: kv.slice(i + 1) }];
}));
const policyVars = { ...(v['env-file'] ? parseEnv(readFileSync(v['env-file'], 'utf8')) : {}), ...Object.fromEntries(Object.entries(vars).map(([k, b]) => [k, b.value])) };
const egress = egressPolicy(policyVars);

/** The worker's fetch(), after the egress policy has passed the URL and every address its host resolves to. */
async function guardedFetch(req: Request, policy: EgressPolicy): Promise<Response> {
  const url = new URL(req.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const checks = [checkWebhookUrl(req.url, policy)];
  if (checks[0].ok && !isIP(host)) for (const a of await lookup(host, { all: true })) checks.push(checkResolved(url, a.address, policy));
  const refused = checks.find((c) => !c.ok);
  if (refused && !refused.ok) {
    console.error(`[egress] refused a request to ${url.host}: ${refused.reason}`);
    throw new Error(`refused by the egress policy: ${refused.reason}`);
  }
  return fetch(req, { redirect: 'manual' });
}

const worker = await unstable_startWorker({
  config: v.config,
  envFiles: v['env-file'] ? [v['env-file']] : undefined,
  bindings: vars,
  dev: {
    server: { hostname: v.ip, port: Number(v.port) },
    inspector: v['inspector-port'] === undefined ? false : { hostname: '127.0.0.1', port: Number(v['inspector-port']) },
    persist: v['persist-to'],
    watch: false,
    outboundService: (req: Request) => guardedFetch(req, egress),
  },
});
await worker.ready;
const inspector = v['inspector-port'] === undefined ? undefined : await worker.inspectorUrl;
console.log(`edge ready on ${(await worker.url).href}${inspector ? ` (inspector: ${inspector.href})` : ''}`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void worker.dispose().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
