// `npm start [-- options]` (`npm start -- --help` lists them): the whole stack on this machine. Prepares the demo
// model, starts the edge (wrangler's dev server) and one backend group (stage processes + driver), creates a local
// API key, prints UVIT_API_KEY / UVIT_BASE_URL and how to make a clip, and runs until Ctrl-C, which stops everything
// it started.
import { parseArgs } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { Stack, defaultOptions, ROOT } from './startStack.ts';

/** 127.0.0.0/8, ::1 and localhost: reachable from this machine only. */
function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

const HELP = `usage: npm start -- [options]      (each also as an environment variable)
  --edge-port N      edge (wrangler dev) port            UVIT_EDGE_PORT     default 8787
  --stage-port N     first stage port (stage k: N+k)     UVIT_STAGE_PORT    default 7101
  --metrics-port N   driver /metrics port                UVIT_METRICS_PORT  default 9464
  --inspector-port N turn on the edge isolate's DevTools  UVIT_INSPECTOR_PORT default off
                     inspector on 127.0.0.1:N (0: any free port); anyone who can connect runs code
                     in the edge and reads its secrets
  --host H           bind address                        UVIT_HOST          default 127.0.0.1
  --expose           allow a --host beyond loopback      UVIT_EXPOSE=1      default off
  --public-url URL   origin of download_url / cdn_url    UVIT_PUBLIC_URL    default http://HOST:EDGE_PORT
  --stages N         stage processes in the group        UVIT_STAGES        default 2
  --config FILE      backend group config                UVIT_CONFIG        default models/uvit-t2v-shapes/group.json
                     (the trained model; gpu-backend/demo/demo.json: the random-weights demo)
  --model NAME       serve an image checkpoint of the catalogue models/catalogue.json (e.g.
                     imagenet256_uvit_huge) or of an entry file NAME.json, instead of --config
                                                         UVIT_MODEL
  --weights-dir DIR  the --model's checkpoint files, named as its catalogue entry says
                                                         UVIT_WEIGHTS_DIR
  --data-dir DIR     model cache, edge state, logs       UVIT_DATA_DIR      default .data
  --quiet            do not echo the processes' output (it is always in DATA_DIR/local/logs/)`;

async function main(): Promise<number> {
  const { values: v } = parseArgs({
    options: {
      'edge-port': { type: 'string' }, 'stage-port': { type: 'string' }, 'metrics-port': { type: 'string' },
      'inspector-port': { type: 'string' }, host: { type: 'string' }, expose: { type: 'boolean', default: false }, 'public-url': { type: 'string' },
      stages: { type: 'string' }, config: { type: 'string' }, 'data-dir': { type: 'string' },
      model: { type: 'string' }, 'weights-dir': { type: 'string' },
      quiet: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (v.help) { console.log(HELP); return 0; }
  const env = { ...process.env };
  const set = (flag: string | undefined, name: string) => { if (flag !== undefined) env[name] = flag; };
  set(v['edge-port'], 'UVIT_EDGE_PORT'); set(v['stage-port'], 'UVIT_STAGE_PORT'); set(v['metrics-port'], 'UVIT_METRICS_PORT');
  set(v['inspector-port'], 'UVIT_INSPECTOR_PORT');
  set(v['public-url'], 'UVIT_PUBLIC_URL');
  set(v.host, 'UVIT_HOST'); set(v.stages, 'UVIT_STAGES'); set(v.config, 'UVIT_CONFIG');
  set(v.model, 'UVIT_MODEL'); set(v['weights-dir'], 'UVIT_WEIGHTS_DIR');
  if (v['data-dir'] !== undefined) env.UVIT_DATA_DIR = resolve(v['data-dir']);
  const opts = defaultOptions(env);
  for (const [k, n] of Object.entries({ edgePort: opts.edgePort, stagePort: opts.stagePort, metricsPort: opts.metricsPort, stages: opts.stages })) {
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${k} must be a positive integer (port ≤ 65535), got ${n}`);
  }
  if (opts.inspectorPort !== undefined && (!Number.isInteger(opts.inspectorPort) || opts.inspectorPort < 0 || opts.inspectorPort > 65535)) {
    throw new Error(`inspectorPort must be 0 (any free port) or a port ≤ 65535, got ${opts.inspectorPort}`);
  }
  const exposed = !isLoopback(opts.host);
  if (exposed && !v.expose && env.UVIT_EXPOSE !== '1') {
    throw new Error(`--host ${opts.host} is not a loopback address: the edge API, the stage ports and the driver metrics would be reachable from the network. Add --expose (UVIT_EXPOSE=1) if that is meant.`);
  }
  const log = (s: string) => process.stderr.write(`[start] ${s}\n`);
  if (exposed) {
    log(`WARNING: binding ${opts.host}: reachable from the network are the edge API (http://${opts.host}:${opts.edgePort}, API keys and the admin token guard it, plain HTTP), ` +
      `${opts.stages} stage ports (${opts.host}:${opts.stagePort}…${opts.stagePort + opts.stages - 1}) and the driver metrics (http://${opts.host}:${opts.metricsPort}/metrics). Put TLS in front for anything but a trusted network.`);
  }
  if (opts.inspectorPort !== undefined) {
    log(`WARNING: the edge isolate's inspector is on at 127.0.0.1:${opts.inspectorPort || '(a free port)'}: any local process that connects can run code in the edge and read ADMIN_TOKEN, BACKEND_SECRET and CDN_SECRET from its heap.`);
  }
  // the data dir holds the edge state (keys, prompts, webhook secrets, results), secrets and logs: the user's alone
  const dataDir = dirname(opts.stateDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  const stack = new Stack({ ...opts, log, echo: v.quiet ? undefined : process.stderr });

  let stopping: Promise<void> | undefined;
  const shutdown = (why: string) => {
    stopping ??= (async () => {
      log(`${why}: stopping ${stack.procs.filter((p) => p.alive).map((p) => p.spec.name).join(', ') || 'nothing'}…`);
      await stack.stop();
      log('stopped');
    })();
    return stopping;
  };
  process.once('SIGINT', () => void shutdown('Ctrl-C').then(() => process.exit(130)));
  process.once('SIGTERM', () => void shutdown('SIGTERM').then(() => process.exit(143)));

  const t0 = performance.now();
  try {
    await stack.start();
  } catch (e) {
    await shutdown('start failed');
    throw e;
  }
  const key = await stack.apiKey();
  const envFile = join(opts.stateDir, 'client.env');
  writeFileSync(envFile, `UVIT_API_KEY=${key}\nUVIT_BASE_URL=${stack.baseUrl}\n`, { mode: 0o600 });
  const rel = (p: string) => (p.startsWith(ROOT + '/') ? p.slice(ROOT.length + 1) : p);
  const secretsFile = rel(join(opts.stateDir, 'secrets.json'));
  const secretsRef = secretsFile.startsWith('/') ? secretsFile : `./${secretsFile}`;
  // The two env lines go to stdout alone, so `npm start --silent | head -2 > .env` works; the rest is stderr.
  console.log(`UVIT_API_KEY=${key}`);
  console.log(`UVIT_BASE_URL=${stack.baseUrl}`);
  process.stderr.write(`
ready in ${((performance.now() - t0) / 1000).toFixed(1)} s: edge ${stack.baseUrl}, ${opts.stages} stages (${opts.host}:${opts.stagePort}…), driver metrics http://${opts.host}:${opts.metricsPort}/metrics
logs: ${rel(join(opts.stateDir, 'logs'))}/   env: ${rel(envFile)}

${opts.imageModel ? `make an image (another terminal):
  export $(cat ${rel(envFile)})
  npx uvit-client image "${stack.model?.image?.clip ? 'a red bus on a street' : '207'}" --out image.png` : `make a 16-second clip (another terminal):
  export $(cat ${rel(envFile)})
  npx uvit-client generate "a red ball bouncing" --duration 16 --out clip.mp4`}

more keys: ADMIN_TOKEN=$(node -p "require('${secretsRef}').ADMIN_TOKEN") npm run keys -- create --owner NAME
Ctrl-C stops everything.
`);
  // Stay up; if a process dies on its own, say so and stop the rest.
  const died = await Promise.race(stack.procs.map((p) => p.exited.then(() => p)));
  if (!died.stopping) {
    log(`${died.spec.name} exited unexpectedly (${JSON.stringify(died.exitInfo)}); last output:\n${died.tail()}`);
    await shutdown('a process died');
    return 1;
  }
  await stopping;
  return 0;
}

main().then((rc) => process.exit(rc), (e) => {
  process.stderr.write(`npm start: ${(e as Error).message}\n`);
  process.exit(1);
});
