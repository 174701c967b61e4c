// uvit-client: generate / status / list / cancel / delete / download / models against the public API.
// Key and URL from --api-key / --base-url or UVIT_API_KEY / UVIT_BASE_URL (what `npm start` prints).
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { UvitClient, TERMINAL } from './client.ts';
import { UvitApiError } from './errors.ts';
import type { CreateImageInput, CreateVideoInput, ListInput, Video } from './client.ts';
import { ProgressView, fmtSeconds } from './progress.ts';

const USAGE = `usage: uvit-client <command> [options]

commands:
  generate PROMPT   submit, follow progress (SSE), download the MP4
      --duration S (alias --seconds)  --size WxH  --model ID  --seed N  --steps N  --guidance X  --fps N
      --out FILE (default video_<id>.mp4)  --no-wait (print the job and exit)  --idempotency-key K
  status ID         show one video
  list              your videos   [--limit N] [--after ID] [--order asc|desc] [--all (every page)]
  cancel ID         cancel a queued or running video
  delete ID         delete a video (cancels it first when running)
  download ID       save a completed video   [--out FILE]
  image PROMPT      generate images with an image model and save the PNGs
      --model ID  --n N  --size WxH  --class-label K (class models; or a class index as the PROMPT)
      --seed N  --steps N  --guidance X  --out FILE (default img_<id>.png; with --n > 1: FILE-0.png, FILE-1.png …)
  models            the models on offer

options: --base-url URL (env UVIT_BASE_URL)  --api-key KEY (env UVIT_API_KEY)  --json (machine-readable output)
         --max-retries N (on 408/429/5xx and lost connections, default 2)`;

class UsageError extends Error {}

const OPTIONS = {
  'base-url': { type: 'string' },
  'api-key': { type: 'string' },
  json: { type: 'boolean', default: false },
  duration: { type: 'string' },
  seconds: { type: 'string' },
  size: { type: 'string' },
  model: { type: 'string' },
  seed: { type: 'string' },
  steps: { type: 'string' },
  guidance: { type: 'string' },
  fps: { type: 'string' },
  out: { type: 'string', short: 'o' },
  'no-wait': { type: 'boolean', default: false },
  'idempotency-key': { type: 'string' },
  limit: { type: 'string' },
  after: { type: 'string' },
  order: { type: 'string' },
  all: { type: 'boolean', default: false },
  'max-retries': { type: 'string' },
  n: { type: 'string' },
  'class-label': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`);
  return n;
}

function summary(v: Video): string {
  const parts = [`${v.id}  ${v.status}${v.status === 'in_progress' ? ` ${Math.round(v.progress)}%` : ''}`,
    `  model ${v.model}, ${v.seconds} s, ${v.size}, ${v.fps} fps, seed ${v.seed}, steps ${v.steps}${v.cached ? ', cached' : ''}`,
    `  prompt: ${JSON.stringify(v.prompt)}`];
  if (v.error) parts.push(`  error: ${v.error.code}: ${v.error.message}`);
  if (v.cdn_url) parts.push(`  cdn: ${v.cdn_url}`);
  return parts.join('\n');
}

export type CliIo = { stdout: (s: string) => void; stderr: NodeJS.WriteStream; env: NodeJS.ProcessEnv; fetch?: typeof fetch };

export async function main(argv: string[], io: CliIo = { stdout: (s) => process.stdout.write(s), stderr: process.stderr, env: process.env }): Promise<number> {
  const print = (s: string) => io.stdout(s + '\n');
  try {
    const { values: o, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    const [cmd, ...rest] = positionals;
    if (o.help || !cmd) { print(USAGE); return cmd || o.help ? 0 : 2; }
    let made: UvitClient | undefined;
    const client = () => (made ??= new UvitClient({
      baseUrl: o['base-url'] ?? io.env.UVIT_BASE_URL ?? '',
      apiKey: o['api-key'] ?? io.env.UVIT_API_KEY ?? '',
      fetch: io.fetch,
      maxRetries: num('max-retries', o['max-retries']),
    }));
    const one = (what: string) => {
      if (rest.length !== 1) throw new UsageError(`${cmd} takes exactly one ${what}, got ${rest.length}`);
      return rest[0];
    };
    const show = (v: unknown, text: string) => print(o.json ? JSON.stringify(v, null, 2) : text);

    switch (cmd) {
      case 'generate': {
        const prompt = rest.join(' ');
        if (!prompt.trim()) throw new UsageError('generate needs a PROMPT');
        const seconds = num('duration', o.duration ?? o.seconds);
        const input: CreateVideoInput = { prompt };
        if (seconds !== undefined) input.seconds = seconds;
        if (o.size) input.size = o.size;
        if (o.model) input.model = o.model;
        for (const k of ['seed', 'steps', 'guidance', 'fps'] as const) {
          const n = num(k, o[k]);
          if (n !== undefined) input[k] = n;
        }
        const t0 = performance.now();
        let v = await client().create(input, { idempotencyKey: o['idempotency-key'] });
        const tSubmit = performance.now();
        if (!o.json) io.stderr.write(`submitted ${v.id} (${v.status}${v.cached ? ', cache hit' : ''}) in ${fmtSeconds(tSubmit - t0)}\n`);
        if (o['no-wait']) { show(v, summary(v)); return 0; }
        if (!TERMINAL.has(v.status)) {
          const view = new ProgressView(io.stderr);
          const ctl = new AbortController();
          const onSig = () => ctl.abort();
          process.once('SIGINT', onSig);
          try {
            v = await client().wait(v.id, { onProgress: (p) => view.update(p.status, p.progress), signal: ctl.signal });
          } finally {
            process.off('SIGINT', onSig);
            view.done();
          }
        }
        const tDone = performance.now();
        if (v.status !== 'completed') {
          io.stderr.write(`error: video ${v.id} ended ${v.status}${v.error ? `: ${v.error.code}: ${v.error.message}` : ''}\n`);
          return 1;
        }
        const out = resolve(o.out ?? `${v.id}.mp4`);
        const dl = await client().download(v, out);
        const total = performance.now() - t0;
        const timings = { submit_ms: Math.round(tSubmit - t0), generate_ms: Math.round(tDone - tSubmit), download_ms: Math.round(dl.ms), total_ms: Math.round(total) };
        if (o.json) print(JSON.stringify({ video: v, path: out, bytes: dl.bytes, timings }, null, 2));
        else {
          print(out);
          io.stderr.write(`${dl.bytes} bytes from ${dl.url}\n` +
            `timings: submit ${fmtSeconds(timings.submit_ms)}, queue+generate ${fmtSeconds(timings.generate_ms)}, ` +
            `download ${fmtSeconds(timings.download_ms)}, total ${fmtSeconds(timings.total_ms)}\n`);
        }
        return 0;
      }
      case 'image': {
        const prompt = rest.join(' ');
        if (!prompt.trim()) throw new UsageError('image needs a PROMPT');
        const input: CreateImageInput = { prompt };
        if (o.size) input.size = o.size;
        if (o.model) input.model = o.model;
        for (const [k, flag] of [['n', 'n'], ['class_label', 'class-label'], ['seed', 'seed'], ['steps', 'steps'], ['guidance', 'guidance']] as const) {
          const n = num(flag, o[flag]);
          if (n !== undefined) input[k] = n;
        }
        const t0 = performance.now();
        const g = await client().generateImages(input);
        if (g.status !== 'completed') {
          io.stderr.write(`error: image generation ${g.id} ended ${g.status}${g.error ? `: ${g.error.code}: ${g.error.message}` : ''}\n`);
          return 1;
        }
        const { writeFile } = await import('node:fs/promises');
        const base = resolve(o.out ?? `${g.id}.png`);
        const paths: string[] = [];
        for (let i = 0; i < g.data.length; i++) {
          const path = g.data.length === 1 ? base : base.replace(/(\.png)?$/i, `-${i}.png`);
          await writeFile(path, await client().imageBytes(g, i));
          paths.push(path);
        }
        if (o.json) print(JSON.stringify({ generation: g, paths, ms: Math.round(performance.now() - t0) }, null, 2));
        else {
          print(paths.join('\n'));
          io.stderr.write(`${g.id}: ${g.data.length} × ${g.size} PNG in ${fmtSeconds(performance.now() - t0)}\n`);
        }
        return 0;
      }
      case 'status': { const v = await client().retrieve(one('ID')); show(v, summary(v)); return 0; }
      case 'list': {
        const order = o.order;
        if (order !== undefined && order !== 'asc' && order !== 'desc') throw new UsageError(`--order must be asc or desc, got "${order}"`);
        const q: ListInput = { limit: num('limit', o.limit), after: o.after, order };
        const line = (v: Video) => `${v.id}  ${v.status.padEnd(11)} ${v.seconds.padStart(3)} s  ${new Date(v.created_at * 1000).toISOString()}  ${JSON.stringify(v.prompt.slice(0, 50))}`;
        if (o.all) {
          const all: Video[] = [];
          for await (const v of client().list(q)) all.push(v);
          show(all, all.length ? all.map(line).join('\n') : '(no videos)');
          return 0;
        }
        const l = await client().list(q);
        show(l, l.data.length ? l.data.map(line).join('\n') + (l.has_more ? `\n(more: --after ${l.last_id} or --all)` : '') : '(no videos)');
        return 0;
      }
      case 'cancel': { const v = await client().cancel(one('ID')); show(v, summary(v)); return 0; }
      case 'delete': { const d = await client().delete(one('ID')); show(d, `${d.id} deleted`); return 0; }
      case 'download': {
        const v = await client().retrieve(one('ID'));
        const dl = await client().download(v, resolve(o.out ?? `${v.id}.mp4`));
        show({ path: dl.path, bytes: dl.bytes }, dl.path);
        return 0;
      }
      case 'models': {
        const m = await client().models();
        show(m, m.data.map((x) => `${x.id}  sizes ${x.sizes.join(',')}  ${'max_seconds' in x ? `≤ ${x.max_seconds} s` : `images (${x.conditioning}), ≤ ${x.max_images} per request`}  groups ${x.backend_groups}`).join('\n'));
        return 0;
      }
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    const err = e as Error;
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`error: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (err instanceof UvitApiError) {
      io.stderr.write(`error: ${err.message}${err.retryAfter !== undefined ? `\n  retry after ${err.retryAfter} s` : ''}\n`);
      return 1;
    }
    io.stderr.write(`error: ${err.message}\n`);
    return 1;
  }
}
