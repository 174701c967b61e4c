// workerd tests of the edge (wrangler.toml worker + test secrets), run by @cloudflare/vitest-plugin. Two projects:
// this one (one job-store shard, as deployed by default) and sharded/ (JOB_SHARDS = 4).
// Outbound fetches (webhooks) go to a recorder here in Node: http://hooks.test/<path> answers per path (/redirect/…: 307),
// GET http://hooks.test/__log returns everything received, POST /__verify checks a delivery with the openai SDK.
import { fileURLToPath } from 'node:url';
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import OpenAI from 'openai';
import { defineConfig } from 'vitest/config';

// No network at test time: miniflare would otherwise download the Request.cf object from cloudflare.com.
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';

export function edgeProject(o: { name: string; exclude: string[]; bindings: Record<string, string> }) {
  const received: { url: string; headers: Record<string, string>; body: string; at: number }[] = [];
  const failuresLeft = new Map<string, number>();

  return defineConfig({
    plugins: [
      cloudflareTest({
        wrangler: { configPath: fileURLToPath(new URL('../../wrangler.toml', import.meta.url)) },
        miniflare: {
          bindings: {
            ADMIN_TOKEN: 'test-admin-token',
            METRICS_TOKEN: 'test-metrics-token',
            BACKEND_SECRET: 'test-backend-secret',
            CDN_SECRET: 'test-cdn-secret',
            WEBHOOK_BACKOFF_MS: '100',
            WEBHOOK_ALLOW_HTTP: 'true', // the recorder below is http://hooks.test
            PUBLIC_BASE_URL: 'http://edge.test',
            MAX_QUEUE: '50',
            UPLOAD_PART_BYTES: String(5 * 1024 * 1024), // R2's smallest part: multipart tests stay small
            ...o.bindings,
          },
          outboundService: async (req: Request) => {
            const url = new URL(req.url);
            if (url.hostname !== 'hooks.test') return new Response(`unexpected outbound request to ${url.hostname}`, { status: 599 });
            if (url.pathname === '/__log') return Response.json(received);
          // POST /__verify {url, secret}: the openai SDK (here in Node) verifies the last delivery to url
          if (url.pathname === '/__verify') {
            const { url: target, secret } = (await req.json()) as { url: string; secret: string };
            const d = received.findLast((r) => r.url === target);
            if (!d) return Response.json({ ok: false, error: `nothing delivered to ${target}` });
            try {
              const event = await new OpenAI({ apiKey: 'unused' }).webhooks.unwrap(d.body, d.headers, secret);
              return Response.json({ ok: true, event });
            } catch (e) {
              return Response.json({ ok: false, error: (e as Error).message });
            }
          }
            received.push({ url: req.url, headers: Object.fromEntries(req.headers), body: await req.text(), at: Date.now() });
            // /redirect/... answers 307 to /followed (a redirect must not be followed).
            if (url.pathname.startsWith('/redirect/')) return new Response(null, { status: 307, headers: { location: 'http://hooks.test/followed' } });
            // /fail-N/... answers 500 to the first N deliveries, then 204.
            const m = /^\/fail-(\d+)\//.exec(url.pathname);
            if (m) {
              const left = failuresLeft.get(url.pathname) ?? Number(m[1]);
              failuresLeft.set(url.pathname, left - 1);
              if (left > 0) return new Response('try later', { status: 500 });
            }
            return new Response(null, { status: 204 });
          },
        },
      }),
    ],
    test: {
      name: o.name,
      include: ['**/*.test.ts'],
      exclude: ['**/*.node.test.ts', ...o.exclude],
      testTimeout: 20_000,
      isolate: false, // one module graph for all edge files: most of the suite's time was per-file imports
    },
  });
}

export default edgeProject({ name: 'edge', exclude: ['sharded/**'], bindings: {} });
