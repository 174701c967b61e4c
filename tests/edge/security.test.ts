// Attacks on the edge's own checks (workerd, the real worker and its URL parser): webhook URLs aimed at the edge's
// own network in every spelling, a signed lease request replayed while its timestamp is still accepted, a forged
// Host header that used to become the origin of download_url / cdn_url.
// docs/security.md maps each finding to its test.
import { SELF, env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { LEASE_PATHS, SIGNATURE_WINDOW_S, signRequest } from '../../shared/lease.ts';
import type { CreatedKey } from '../../shared/api/keys.ts';
import { checkResolved, checkWebhookUrl, egressPolicy } from '../../edge/auth/egress.ts';
import type { JobStore } from '../../edge/jobs/JobStore.ts';
import { BACKEND_SECRET, MODEL, api, call, createVideo, expectProblem, newKey, runOneJob } from './helpers.ts';

describe('finding 6: signed lease requests cannot be replayed within their timestamp window', () => {
  it('a request stamped now+60 s is accepted once and refused again at +120.4 s', async () => {
    const path = LEASE_PATHS.lease;
    const text = JSON.stringify({ group: 'replay', model: MODEL, capacity: 1, wait_ms: 0 });
    const t0 = Math.floor(Date.now() / 1000); // whole seconds, so that +120.4 s is exactly 120 s on the edge's clock
    const headers = await signRequest({ secret: BACKEND_SECRET, method: 'POST', path, body: text, timestamp: t0 + SIGNATURE_WINDOW_S });
    const first = await call(path, { method: 'POST', headers, body: text });
    expect([200, 204]).toContain(first.status);
    await first.body?.cancel();
    // the edge's clock (this isolate's, the JobStore's too) moves on 120.4 s: the timestamp is still inside ±60 s;
    // only for this one request, so no other work in the isolate sees the moved clock
    vi.useFakeTimers({ toFake: ['Date'], now: t0 * 1000 + 120_400 });
    let replay: Response;
    try {
      replay = await call(path, { method: 'POST', headers, body: text });
    } finally {
      vi.useRealTimers();
    }
    await expectProblem(replay, 401, 'replayed_request');
  });
});

describe('finding 4: webhook egress (SSRF)', () => {
  // every spelling of a host on the edge's own machine or network that the issue tried, and more
  const refused = [
    'http://127.0.0.1:9464/metrics', 'http://127.1/', 'http://127.0.1/', 'http://0x7f000001/', 'http://0x7f.0.0.1/',
    'http://2130706433/', 'http://0177.0.0.1/', 'http://017700000001/', 'http://%31%32%37.0.0.1/', 'http://127.255.255.254/',
    'http://[::1]:8787/', 'http://[0:0:0:0:0:0:0:1]/', 'http://[::ffff:127.0.0.1]/', 'http://[::ffff:7f00:1]/', 'http://[::ffff:10.0.0.1]/',
    'http://[::127.0.0.1]/', 'http://[64:ff9b::169.254.169.254]/', 'http://[2002:7f00:1::]/', 'http://[::]/', 'http://0.0.0.0/', 'http://0/',
    'http://localhost/', 'http://LOCALHOST./', 'http://localhost.:8787/', 'http://admin.localhost/', 'http://a.b.localhost/',
    'http://169.254.169.254/latest/meta-data/', 'http://[fe80::1]/', 'http://[fd00::1]/', 'http://[fd12:3456::1]/', 'http://[fc00::1]/',
    'http://10.0.0.1/', 'http://172.16.0.1/', 'http://172.31.255.255/', 'http://192.168.1.1/', 'http://100.64.0.1/',
    'http://224.0.0.1/', 'http://255.255.255.255/', 'http://metadata.google.internal/', 'http://printer.local/', 'http://router.home.arpa/',
    'http://user:pass@hooks.example.com/', 'http://hooks.example.com@127.0.0.1/',
  ];
  const dev = egressPolicy({ WEBHOOK_ALLOW_HTTP: 'true' });

  it('the runtime\'s URL parser gives every IPv4 spelling one normal form (what the policy judges)', () => {
    for (const h of ['127.1', '127.0.1', '0x7f000001', '0x7f.0.0.1', '2130706433', '0177.0.0.1', '017700000001', '%31%32%37.0.0.1'])
      expect(new URL(`http://${h}/`).hostname, h).toBe('127.0.0.1');
    expect(new URL('http://[::ffff:127.0.0.1]/').hostname).toBe('[::ffff:7f00:1]');
    expect(new URL('http://[0:0:0:0:0:0:0:1]/').hostname).toBe('[::1]');
    expect(new URL('http://LOCALHOST./').hostname).toBe('localhost.');
  });

  it.each(refused)('refuses %s', (url) => {
    expect(checkWebhookUrl(url, dev)).toMatchObject({ ok: false });
  });

  it('lets public hosts through, https only unless WEBHOOK_ALLOW_HTTP=true', () => {
    const prod = egressPolicy({});
    for (const url of ['https://hooks.example.com/x', 'https://8.8.8.8/', 'https://[2606:4700::1111]/', 'https://172.32.0.1/', 'https://[64:ff9b::808:808]/'])
      expect(checkWebhookUrl(url, prod), url).toMatchObject({ ok: true });
    expect(checkWebhookUrl('http://hooks.example.com/x', prod)).toEqual({ ok: false, reason: 'only https URLs are allowed' });
    expect(checkWebhookUrl('http://hooks.example.com/x', dev)).toMatchObject({ ok: true });
    expect(checkWebhookUrl('ftp://hooks.example.com/x', dev)).toMatchObject({ ok: false });
  });

  it('WEBHOOK_ALLOW_HOSTS opens a private receiver, WEBHOOK_DENY_HOSTS closes a public one (deny wins)', () => {
    const p = egressPolicy({ WEBHOOK_ALLOW_HOSTS: '10.1.0.0/16, hooks.internal, [fd00::5]', WEBHOOK_DENY_HOSTS: '.evil.example, 10.1.2.3' });
    expect(checkWebhookUrl('https://10.1.9.9/', p)).toMatchObject({ ok: true });
    expect(checkWebhookUrl('https://hooks.internal/', p)).toMatchObject({ ok: true });
    expect(checkWebhookUrl('https://[fd00::5]/', p)).toMatchObject({ ok: true });
    expect(checkWebhookUrl('https://10.2.0.1/', p)).toMatchObject({ ok: false });
    expect(checkWebhookUrl('https://10.1.2.3/', p)).toMatchObject({ ok: false });
    expect(checkWebhookUrl('https://a.evil.example/', p)).toMatchObject({ ok: false });
    expect(() => egressPolicy({ WEBHOOK_ALLOW_HOSTS: 'not a rule!' })).toThrow(/neither a host name/);
  });

  it('checkResolved (the dev server\'s guard): a name is judged by the addresses it resolves to, unless an allow rule names it', () => {
    const p = egressPolicy({ WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOW_HOSTS: 'hooks.lan' });
    expect(checkResolved(new URL('http://rebind.example/x'), '127.0.0.1', p)).toMatchObject({ ok: false, reason: expect.stringMatching(/^rebind\.example resolves to 127\.0\.0\.1: /) });
    expect(checkResolved(new URL('http://rebind.example/x'), '::ffff:10.0.0.1', p)).toMatchObject({ ok: false });
    expect(checkResolved(new URL('http://hooks.example/x'), '93.184.216.34', p)).toMatchObject({ ok: true });
    expect(checkResolved(new URL('http://hooks.lan/x'), '192.168.1.5', p)).toMatchObject({ ok: true });
  });

  describe('at the API and at delivery', () => {
    let k: CreatedKey;
    beforeAll(async () => {
      k = await newKey('ssrf', { rate_limit_per_min: 10_000 });
    });

    it.each(['http://127.1:8787/admin/v1/keys', 'http://0x7f000001/', 'http://2130706433/', 'http://[::1]/', 'http://localhost/', 'http://169.254.169.254/'])(
      'POST /v1/videos with webhook_url %s → 400 problem on webhook_url', async (url) => {
        const res = await api(k.key, '/v1/videos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'ssrf', size: '64x64', webhook_url: url }) });
        const p = await expectProblem(res, 400, 'invalid_request');
        expect(p.errors[0]).toMatchObject({ path: 'webhook_url', code: 'webhook_url_refused' });
      });

    const stub = () => env.JOBS.get(env.JOBS.idFromName('global')) as DurableObjectStub<JobStore>;
    /** Points a pending delivery at `url` (as if the policy had changed after the job was accepted), lets the alarm run it. */
    async function deliverTo(url: string): Promise<{ status: string; attempts: number; last_error: string }> {
      const v = await createVideo(k.key, { prompt: `hook ${url}`, size: '64x64', webhook_url: 'http://hooks.test/ok/x' });
      const id = `evt_security_${crypto.randomUUID()}`;
      await runInDurableObject(stub(), async (_o, state) => {
        state.storage.sql.exec("INSERT INTO webhooks (id, job_id, key_id, url, body, attempts, next_at, status) VALUES (?,?,?,?,?,0,?,'pending')",
          id, v.id, k.id, url, '{}', Date.now() - 1);
        await state.storage.setAlarm(Date.now());
      });
      const row = () => runInDurableObject(stub(), (_o, state) =>
        state.storage.sql.exec<{ status: string; attempts: number; last_error: string }>('SELECT status, attempts, last_error FROM webhooks WHERE id = ?', id).one());
      for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
        await runDurableObjectAlarm(stub()); // runs it now if it has not fired by itself yet
        const r = await row();
        if (r.attempts > 0) return r;
      }
      return row();
    }

    it('a stored webhook_url that the policy refuses is given up at once, never fetched', async () => {
      const row = await deliverTo('http://127.0.0.1:9/');
      expect(row).toMatchObject({ status: 'gave_up', attempts: 1 });
      expect(row.last_error).toMatch(/^refused by the egress policy: host 127\.0\.0\.1 is not a public address/);
    });

    it('a redirect is not followed (the signed body would go elsewhere) and not retried', async () => {
      const row = await deliverTo('http://hooks.test/redirect/x');
      expect(row).toMatchObject({ status: 'gave_up', attempts: 1, last_error: 'HTTP 307: redirects are not followed' });
      const log = await (await fetch('http://hooks.test/__log')).json<{ url: string }[]>();
      expect(log.some((d) => d.url.includes('/followed'))).toBe(false);
    });
  });
});

describe('finding 8: absolute URLs come from PUBLIC_BASE_URL, not from the Host header', () => {
  it('a request to another host name gets download_url and cdn_url on the configured origin', async () => {
    const k = await newKey('host', { rate_limit_per_min: 10_000 });
    const v = await createVideo(k.key, { prompt: 'forged host', size: '64x64' });
    while ((await runOneJob()).grant.job.id !== v.id) { /* earlier tests' jobs first */ }
    // the Host header is the URL's host here: the attacker's name for the edge
    for (const path of [`/v1/videos/${v.id}`, '/v1/videos?limit=100']) {
      const res = await SELF.fetch(`http://attacker.example${path}`, { headers: { authorization: `Bearer ${k.key}` } });
      const text = await res.text();
      expect(res.status).toBe(200);
      expect(text).not.toContain('attacker.example');
      expect(text).toContain(`"download_url":"http://edge.test/v1/videos/${v.id}/content"`);
      expect(text).toMatch(/"cdn_url":"http:\/\/edge\.test\/cdn\//);
    }
  });
});
