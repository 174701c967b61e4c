// Attacks on the local stack as `npm start` runs it (the same Stack, the edge under wrangler's dev server), from a
// local process: wrangler's data explorer on the edge port, the edge isolate's V8 inspector, files other users could
// read, a forged Host header. Each test is the attack that worked before the fix (docs/security.md lists them with
// the finding they cover).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import type { Stack } from '../../scripts/startStack.ts';
import { groupPids } from '../../scripts/procMem.ts';
import { FakeBackend, fakeClip, jsonBody, call as api, startChaosStack, waitVideo, FAKE_MODEL } from './harness.ts';
import { Tally } from './stats.ts';

/** The `security` row of `npm run test:chaos`: every attack below, tried and held. */
const tally = new Tally('security');

let stack: Stack;
let stop: () => Promise<void>;
let key: string;
let videoId: string;
let receiver: Server;
const received: string[] = [];
let hookHost = '';

beforeAll(async () => {
  ({ stack, stop } = await startChaosStack({ backend: false }));
  // one finished video: a job in the store, a blob in R2, lines in the logs
  key = (await stack.createKey('security')).key;
  // a webhook receiver on this machine, named by a host name (the edge cannot resolve it; the dev server's guard does)
  const self = await lookup(hostname());
  receiver = createServer((req, res) => { received.push(`${req.method} ${req.url}`); res.end(); });
  await new Promise<void>((r) => receiver.listen(0, self.address, r));
  hookHost = `${hostname()}:${(receiver.address() as { port: number }).port}`;
  const c = await api(stack.baseUrl, 'POST', '/v1/videos', { key, ...jsonBody({ prompt: 'a secret prompt', model: FAKE_MODEL, webhook_url: `http://${hookHost}/hook` }) });
  if (c.status !== 200) throw new Error(`create: ${c.status} ${c.text}`);
  videoId = (c.json as { id: string }).id;
  const be = new FakeBackend(stack.baseUrl, stack.secrets.BACKEND_SECRET);
  const g = await be.lease(5000);
  if (g?.job.id !== videoId) throw new Error(`leased ${g?.job.id}, expected ${videoId}`);
  if ((await be.upload(g.lease_id, fakeClip('security'))).status !== 200) throw new Error('upload failed');
  await waitVideo(stack.baseUrl, key, videoId, (v) => v.status === 'completed', 10_000);
}, 180_000);

afterAll(async () => {
  tally.write();
  receiver?.close();
  await stop?.();
}, 60_000);

type Raw = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

/** One request with any Host header (fetch does not let a client forge it). */
function raw(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (text += c.slice(0, 65536)));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} :${port}${path}: no answer in 5 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** TCP ports in LISTEN state owned by the processes of process group `pgid` (Linux /proc). */
function listeningPorts(pgid: number): number[] {
  const inodes = new Set<string>();
  for (const pid of groupPids(pgid)) {
    let fds: string[] = [];
    try { fds = readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch { /* closed meanwhile */ }
    }
  }
  const ports = new Set<number>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines: string[] = [];
    try { lines = readFileSync(f, 'utf8').trim().split('\n').slice(1); } catch { continue; }
    for (const l of lines) {
      const c = l.trim().split(/\s+/);
      if (c[3] === '0A' && inodes.has(c[9])) ports.add(parseInt(c[1].split(':').pop()!, 16));
    }
  }
  return [...ports];
}

it('finding 1: wrangler\'s local explorer is not served (SQL over the Durable Objects, R2 reads): /cdn-cgi/local/* answers 404', async () => {
  const port = stack.opts.edgePort;
  const attacks: [string, string, string?][] = [
    ['GET', '/cdn-cgi/local/explorer'],
    ['GET', '/cdn-cgi/local/explorer/'],
    ['GET', '/cdn-cgi/local/explorer/api'],
    ['GET', '/cdn-cgi/local/explorer/api/workers'],
    ['POST', '/cdn-cgi/local/explorer/api/workers/durable_objects/namespaces/uvit-edge-JobStore/query', JSON.stringify({ sql: 'SELECT * FROM keys' })],
    ['GET', '/cdn-cgi/local/explorer/api/r2/buckets/uvit-results/objects'],
    ['POST', '/cdn-cgi/local/explorer/api/local/observability/query', JSON.stringify({ sql: 'SELECT * FROM logs' })],
    ['GET', '/cdn-cgi/local/r2/public/uvit-results/x'],
    ['GET', '/cdn-cgi/local/r2/s3/uvit-results'],
  ];
  for (const host of [`127.0.0.1:${port}`, 'localhost']) {
    for (const [method, path, body] of attacks) {
      await tally.attack(`explorer: ${method} ${path} (Host: ${host})`, async () => {
        const r = await raw(port, method, path, { host, 'content-type': 'application/json' }, body);
        expect(r.status, `${method} ${path} (Host: ${host}): ${r.body.slice(0, 200)}`).toBe(404);
        expect(r.body).not.toMatch(/key_hash|webhook_secret|<html/i);
      });
    }
  }
});

it('finding 3: no V8 inspector is open by default (no listening port of the edge speaks the DevTools protocol)', async () => {
  const ports = listeningPorts(stack.edge!.pid!);
  expect(ports, 'the edge listens').toContain(stack.opts.edgePort);
  for (const port of ports) {
    for (const path of ['/json', '/json/list', '/json/version']) {
      await tally.attack(`inspector: GET ${path} on the edge's port ${port === stack.opts.edgePort ? '(API)' : '(internal)'}`, async () => {
        // wrangler's inspector proxy only answers a DevTools-like Host / Origin
        const r = await raw(port, 'GET', path, { host: 'localhost', origin: 'http://localhost' }).catch((e: Error) => ({ status: 0, headers: {}, body: e.message }));
        expect(r.body, `port ${port}${path}`).not.toMatch(/webSocketDebuggerUrl|devtoolsFrontendUrl|"Browser"|V8-Version/);
      });
    }
  }
});

it('finding 7: the state dir is 0700 and nothing in it (logs, SQLite, R2 blobs, secrets) is readable by others', () => tally.attack('local files: read the state dir as another user', () => {
  const dir = stack.opts.stateDir;
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  const open: string[] = [];
  let files = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isSymbolicLink()) continue;
      if ((statSync(p).mode & 0o077) !== 0) open.push(`${p.slice(dir.length + 1)} ${(statSync(p).mode & 0o777).toString(8)}`);
      if (e.isDirectory()) walk(p);
      else files++;
    }
  };
  walk(dir);
  expect(open, 'group/other permission bits').toEqual([]);
  const names = (sub: string) => readdirSync(join(dir, sub), { recursive: true }).map(String);
  expect(names('logs')).toContain('edge.log');
  expect(names('wrangler').some((f) => f.endsWith('.sqlite')), 'the job store').toBe(true);
  expect(names('wrangler').some((f) => f.includes('blobs')), 'R2 blobs').toBe(true);
  expect(files).toBeGreaterThan(5);
}));

it('finding 8: a forged Host header does not become the origin of download_url / cdn_url', async () => {
  const port = stack.opts.edgePort;
  for (const path of [`/v1/videos/${videoId}`, '/v1/videos?limit=10']) {
    await tally.attack(`forged Host: GET ${path.replace(videoId, ':id')}`, async () => {
      const r = await raw(port, 'GET', path, { host: 'attacker.example', authorization: `Bearer ${key}` });
      expect(r.status, r.body.slice(0, 200)).toBe(200);
      expect(r.body).not.toContain('attacker.example');
      expect(r.body).toContain(`"download_url":"${stack.baseUrl}/v1/videos/${videoId}/content"`);
      expect(r.body).toContain(`"cdn_url":"${stack.baseUrl}/cdn/`);
    });
  }
});

it('finding 4: a webhook host name that resolves to this machine is refused by the dev server\'s egress guard', async () => {
  const addr = (await lookup(hostname())).address;
  expect(addr, `${hostname()} must resolve to a non-public address here (it does on Linux hosts and containers)`).toMatch(/^(127\.|10\.|172\.(1[6-9]|2\d|3[01])\.|192\.168\.|::1$|f[cd])/);
  await tally.attack('webhook SSRF: a host name that resolves to this machine', async () => {
    const edgeLog = () => readFileSync(join(stack.opts.stateDir, 'logs', 'edge.log'), 'latin1');
    for (const deadline = Date.now() + 10_000; !edgeLog().includes(`[egress] refused a request to ${hookHost}`) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 100));
    expect(edgeLog()).toContain(`[egress] refused a request to ${hookHost}: ${hostname()} resolves to ${addr}`);
    expect(received, 'requests that reached the receiver').toEqual([]);
  });
});
