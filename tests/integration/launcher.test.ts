// ffmpeg started through the driver's Launcher (gpu-backend/driver/launcher.ts): a small helper process starts the
// children and hands back their stdin, so the driver never forks itself. The same bytes as an ffmpeg started here,
// the same errors, children of the helper and not of this process, and a helper that dies is replaced.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeMp4 } from '../../gpu-backend/driver/ffmpeg.ts';
import { Launcher } from '../../gpu-backend/driver/launcher.ts';

const dir = mkdtempSync(join(tmpdir(), 'uvit-launcher-'));
const W = 64, H = 48, N = 24;
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
/** a moving gradient, so the encoder has something to do */
const frames = () => Array.from({ length: N }, (_, t) => Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 7 + t * 13) & 255));
const opts = (name: string) => ({ width: W, height: H, fps: 8, out: join(dir, `${name}.mp4`), variants: { base: join(dir, name), frames: N } });

/** the parent pid of a child started by `launch`, as the child itself reports it */
async function parentOf(launcher: Launcher): Promise<number> {
  const c = await launcher.launch('/bin/sh', ['-c', 'echo $PPID >&2; cat > /dev/null']);
  c.stdin.end('ignored');
  expect(await c.exited).toBe(0);
  return Number(c.stderr().trim());
}

describe('Launcher', () => {
  const launcher = Launcher.start();
  afterAll(() => {
    launcher.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('encodes the same MP4, thumbnail and spritesheet bytes as an ffmpeg started by this process', async () => {
    const here = await encodeMp4(frames(), opts('here'));
    const there = await encodeMp4(frames(), { ...opts('there'), launch: launcher.launch });
    expect(there.frames).toBe(N);
    expect([there.path, ...there.variants.map((v) => v.file)].map(sha)).toEqual([here.path, ...here.variants.map((v) => v.file)].map(sha));
  });

  it('starts its children from the helper process, not from this one', async () => {
    const ppid = await parentOf(launcher);
    expect(ppid).toBe(launcher.pid);
    expect(ppid).not.toBe(process.pid);
  });

  it('reports a binary that cannot start, an exit code with its stderr, a kill, and ffmpeg errors as encodeMp4 does', async () => {
    await expect(launcher.launch('/no/such/binary', [])).rejects.toThrow(/^could not start \/no\/such\/binary: .*ENOENT/);
    const failing = await launcher.launch('/bin/sh', ['-c', 'echo boom >&2; exit 3']);
    expect(await failing.exited).toBe(3);
    expect(failing.stderr()).toContain('boom');
    expect(failing.done).toBe(true);
    const sleeping = await launcher.launch('/bin/sleep', ['30']);
    expect(sleeping.done).toBe(false);
    sleeping.kill();
    expect(await sleeping.exited).toBe(128);
    const bad = { ...opts('bad'), out: join(dir, 'no/such/dir/bad.mp4'), launch: launcher.launch };
    await expect(encodeMp4(frames(), bad)).rejects.toThrow(/^mp4: ffmpeg exited with \d+: .*no[/]such[/]dir/s);
  });

  it('fails the children of a helper that died, and starts a new helper for the next one', async () => {
    const first = launcher.pid!;
    const running = await launcher.launch('/bin/sleep', ['30']);
    process.kill(first, 'SIGKILL');
    await expect(running.exited).rejects.toThrow('the launcher process exited');
    running.stdin.destroy();
    const ppid = await parentOf(launcher);
    expect(ppid).toBe(launcher.pid);
    expect(ppid).not.toBe(first);
  });
});
