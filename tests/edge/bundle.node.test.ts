// The Worker as it would be uploaded: `wrangler deploy --dry-run --minify` bundles edge/ exactly as a deploy does
// and writes the script instead of sending it. Its size bounds cold starts and the upload limit; the bound catches
// an import that drags in a whole library (`import { z } from 'zod'` pulled every zod locale: 572 KiB).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const MAX_KIB = 250;

it(`the minified Worker bundle is at most ${MAX_KIB} KiB`, async () => {
  const out = mkdtempSync(join(tmpdir(), 'uvit-bundle-'));
  try {
    const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1', NO_UPDATE_NOTIFIER: '1', WRANGLER_WRITE_LOGS: 'false' };
    await promisify(execFile)('npx', ['wrangler', 'deploy', '--dry-run', '--minify', '--outdir', out], { env });
    const kib = statSync(join(out, 'index.js')).size / 1024;
    console.log(`Worker bundle (wrangler deploy --dry-run --minify): ${kib.toFixed(1)} KiB`);
    expect(kib).toBeGreaterThan(20); // a real bundle, not an empty stub
    expect(kib).toBeLessThanOrEqual(MAX_KIB);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 120_000);
