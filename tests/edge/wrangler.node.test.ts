// The edge under real `wrangler dev` (loopback, own state dir): the admin CLI (scripts/keys.ts) creates, lists and
// revokes keys; revocation is immediate over HTTP; SSE streams over a real socket.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEdge, type EdgeHandle } from '../../bench/edgeDev.ts';

const run = promisify(execFile);
const ADMIN = 'wrangler-test-admin';

describe('wrangler dev + scripts/keys.ts', { timeout: 30_000 }, () => {
  let edge: EdgeHandle;
  beforeAll(async () => {
    edge = await startEdge({ vars: { ADMIN_TOKEN: ADMIN, BACKEND_SECRET: 'b', CDN_SECRET: 'c' } });
  }, 120_000);
  afterAll(async () => {
    await edge?.stop();
    expect(edge.child.exitCode !== null || edge.child.signalCode !== null).toBe(true);
  });

  const keys = (...args: string[]) =>
    run(process.execPath, ['scripts/keys.ts', ...args, '--url', edge.url], { env: { ...process.env, UVIT_ADMIN_TOKEN: ADMIN } });

  it('creates a key the API accepts, lists it, and revokes it at once', async () => {
    const { stdout } = await keys('create', '--owner', 'cli-user', '--rate', '120');
    const env = Object.fromEntries(stdout.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
    expect(env.UVIT_API_KEY).toMatch(/^uvit_sk_[0-9a-f]{16}_/);
    expect(env.UVIT_BASE_URL).toBe(edge.url);
    const auth = { authorization: `Bearer ${env.UVIT_API_KEY}` };
    const create = await fetch(`${edge.url}/v1/videos`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'cli' }) });
    expect(create.status).toBe(200);
    const video = (await create.json()) as { id: string };

    const sse = await fetch(`${edge.url}/v1/videos/${video.id}/events`, { headers: auth });
    const first = await sse.body!.pipeThrough(new TextDecoderStream()).getReader().read();
    expect(first.value).toMatch(/event: video\.queued/);
    await sse.body?.cancel().catch(() => {});

    expect((await keys('list')).stdout).toMatch(new RegExp(`${env.UVIT_KEY_ID}\\s+cli-user .* 120/min\\s+active`));
    expect((await keys('revoke', env.UVIT_KEY_ID)).stdout).toMatch(/^revoked /);
    const after = await fetch(`${edge.url}/v1/videos/${video.id}`, { headers: auth });
    expect(after.status).toBe(401);
    expect(after.headers.get('content-type')).toMatch(/problem\+json/);
  });

  it('fails with a clear message on a wrong admin token', async () => {
    const err = await run(process.execPath, ['scripts/keys.ts', 'list', '--url', edge.url, '--admin-token', 'wrong']).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/keys: GET \/admin\/v1\/keys → 401: This route needs "Authorization: Bearer <ADMIN_TOKEN>"/);
  });
});
