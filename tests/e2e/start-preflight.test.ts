// `npm start` refuses clearly, before starting anything, when a port is taken, ffmpeg is missing or --host leaves
// loopback without --expose.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../scripts/startStack.ts';
import { freePort } from '../../scripts/startProcs.ts';

function start(args: string[], env: Record<string, string> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'uvit-start-'));
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/start.ts'), '--quiet', '--data-dir', dataDir, ...args], {
    cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env },
  });
  return { ...r, dataDir };
}

describe('npm start preflight', () => {
  it('a taken port: exit 1 naming the port, the role and the flag; nothing started', async () => {
    const srv = createServer();
    const port = await new Promise<number>((res) => srv.listen(0, '127.0.0.1', () => res((srv.address() as { port: number }).port)));
    try {
      const r = start(['--edge-port', String(port)]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`port ${port} on 127.0.0.1 (edge (wrangler dev)) is already in use`);
      expect(r.stderr).toContain('--edge-port');
      expect(r.stdout).not.toContain('UVIT_API_KEY=');
      expect(existsSync(join(r.dataDir, 'local', 'logs'))).toBe(false); // no process was started
    } finally {
      srv.close();
    }
  });

  it('a taken stage port is caught too', async () => {
    const srv = createServer();
    const port = await new Promise<number>((res) => srv.listen(0, '127.0.0.1', () => res((srv.address() as { port: number }).port)));
    try {
      const r = start(['--edge-port', String(await freePort()), '--stage-port', String(port - 1)]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`port ${port} on 127.0.0.1 \\(stage 1\\) is already in use`));
    } finally {
      srv.close();
    }
  });

  it('ffmpeg missing: exit 1 with how to fix it', async () => {
    const r = start(['--edge-port', String(await freePort())], { UVIT_FFMPEG: '/nonexistent/ffmpeg' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ffmpeg is missing: UVIT_FFMPEG=/nonexistent/ffmpeg is not an executable file');
    expect(r.stderr).toContain('apt-get install ffmpeg');
  });

  it('a --host beyond loopback needs --expose, and says what would be exposed', async () => {
    const r = start(['--host', '0.0.0.0', '--edge-port', String(await freePort())]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('--host 0.0.0.0 is not a loopback address: the edge API, the stage ports and the driver metrics would be reachable from the network');
    expect(r.stderr).toContain('--expose');
    expect(existsSync(join(r.dataDir, 'local', 'logs'))).toBe(false);
  });

  it('bad flags: exit 1 with the reason', () => {
    expect(start(['--stages', 'two']).stderr).toMatch(/stages must be a positive integer/);
    expect(start(['--frobnicate']).stderr).toMatch(/Unknown option '--frobnicate'/);
  });
});
