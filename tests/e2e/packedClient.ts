// The published shape of the client, as a user gets it: `npm pack` of the uvit-client workspace (its prepack compiles
// client/ and the shared schemas to JavaScript + .d.ts), then `npm install <tarball>` into an empty folder, outside
// this repository and its node_modules. The build runs on a copy of the sources so that a test run leaves no dist/
// behind in the work tree.
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../scripts/startStack.ts';

const run = promisify(execFile);

export type PackedClient = { dir: string; tarball: string; packMs: number; installMs: number };

/** Packs the client into `tmp` and installs the tarball into `tmp/app` (registry only for zod, from the cache when it can). */
export async function packAndInstallClient(tmp: string): Promise<PackedClient> {
  const src = join(tmp, 'src');
  mkdirSync(src, { recursive: true });
  for (const p of ['package.json', 'client', 'shared', 'tsconfig.json']) cpSync(join(ROOT, p), join(src, p), { recursive: true, filter: (f) => f !== join(ROOT, 'client/dist') });
  symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'));
  let t0 = performance.now();
  await run('npm', ['pack', '--workspace', 'uvit-client', '--pack-destination', tmp, '--silent'], { cwd: src });
  const packMs = performance.now() - t0;
  const tarball = join(tmp, readdirSync(tmp).find((f) => f.endsWith('.tgz'))!);
  const dir = join(tmp, 'app');
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'packed-client-check', private: true, type: 'module' }));
  t0 = performance.now();
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], { cwd: dir });
  return { dir, tarball, packMs, installMs: performance.now() - t0 };
}

/** PATH with `nodeBin`'s folder first, so that npx and the bin's `#!/usr/bin/env node` run on that Node. */
function envFor(c: PackedClient, nodeBin: string, env: Record<string, string>): NodeJS.ProcessEnv {
  const PATH = [dirname(nodeBin), '/usr/local/bin', '/usr/bin', '/bin'].join(':');
  // npm_config_yes=false: npx never fetches a package, it runs the installed bin or fails
  return { PATH, HOME: process.env.HOME ?? c.dir, npm_config_yes: 'false', ...env };
}

/** `npx uvit-client ARGS` in the install folder on the given Node. */
export async function npxClient(c: PackedClient, nodeBin: string, args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  const r = await run('npx', ['uvit-client', ...args], { cwd: c.dir, env: envFor(c, nodeBin, env) });
  return { stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

/** Imports the package by name from the install folder (its `exports`) and lists what it exports. */
export async function importClient(c: PackedClient, nodeBin: string): Promise<string[]> {
  const code = "const m = await import('uvit-client'); console.log(JSON.stringify(Object.keys(m).sort()));";
  const r = await run(nodeBin, ['--input-type=module', '-e', code], { cwd: c.dir, env: envFor(c, nodeBin, {}) });
  return JSON.parse(r.stdout) as string[];
}
