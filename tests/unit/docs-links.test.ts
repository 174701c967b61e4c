// The README stays a front door (≤ 200 lines), and every relative link in README.md and docs/*.md resolves to a file
// the repository tracks (so it works in a clean clone), with its #anchor when it points into a Markdown file.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const README_MAX_LINES = 200;

/** Markdown with fenced code blocks and inline code spans blanked out (links inside them are not links). */
function prose(md: string): string {
  return md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** Link targets: inline links/images `[t](target)`, reference definitions `[t]: target`, HTML src/href. */
export function linkTargets(md: string): string[] {
  const text = prose(md);
  const out: string[] = [];
  for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push(m[1]);
  for (const m of text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)) out.push(m[1]);
  for (const m of text.matchAll(/\b(?:src|href)="([^"]+)"/g)) out.push(m[1]);
  return out;
}

/** GitHub's heading anchors (github-slugger): lower case, punctuation dropped, spaces → '-', repeats get -1, -2, … */
export function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const noFences = md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const m of noFences.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const text = m[1]
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links → their text
      .replace(/<[^>]+>/g, '') // inline HTML
      .replace(/[`*_~]/g, (c) => (c === '_' ? '_' : '')); // code and emphasis markers (slugger keeps '_')
    const base = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function tracked(): Set<string> | null {
  try {
    const out = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return new Set(out.split('\0').filter(Boolean));
  } catch {
    return null; // not a git checkout (e.g. an unpacked tarball): fall back to what exists on disk
  }
}

/** Problems with the links of one Markdown file (path relative to ROOT); empty when every link resolves. */
export function brokenLinks(file: string, md: string, files: Set<string> | null, read = (p: string) => readFileSync(join(ROOT, p), 'utf8')): string[] {
  const problems: string[] = [];
  for (const target of linkTargets(md)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:, …
    const [pathPart, anchor] = target.split('#', 2) as [string, string | undefined];
    let rel = file;
    if (pathPart) {
      const abs = resolve(ROOT, dirname(file), decodeURI(pathPart));
      rel = relative(ROOT, abs).split(sep).join('/');
      if (rel.startsWith('..')) {
        problems.push(`${file}: ${target} points outside the repository`);
        continue;
      }
      const isDir = files ? [...files].some((f) => f.startsWith(`${rel.replace(/\/$/, '')}/`)) : existsSync(abs) && statSync(abs).isDirectory();
      const isFile = files ? files.has(rel) : existsSync(abs) && statSync(abs).isFile();
      if (!isFile && !isDir) {
        problems.push(`${file}: ${target} → ${rel} is not a file in the repository`);
        continue;
      }
      if (isDir) continue;
    }
    if (anchor && rel.endsWith('.md') && !anchors(read(rel)).has(anchor)) problems.push(`${file}: ${target} → no heading #${anchor} in ${rel}`);
  }
  return problems;
}

describe('README and docs', () => {
  const files = tracked();
  // tracked pages only: a page still being written (untracked) is not part of a clone yet
  const docs = files
    ? [...files].filter((f) => /^docs\/[^/]+\.md$/.test(f))
    : readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);

  it(`README.md is at most ${README_MAX_LINES} lines`, () => {
    const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').replace(/\n$/, '').split('\n').length;
    expect(lines).toBeLessThanOrEqual(README_MAX_LINES);
  });

  it('every relative link in README.md and docs/*.md resolves to a tracked file (and its anchor)', () => {
    const problems = ['README.md', ...docs].flatMap((f) => brokenLinks(f, readFileSync(join(ROOT, f), 'utf8'), files));
    expect(problems).toEqual([]);
    expect(docs.length).toBeGreaterThan(0);
  });

  it('every `npm run X` named in README.md and docs/*.md is a script of package.json', () => {
    const scripts = Object.keys(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts ?? {});
    const named = ['README.md', ...docs].flatMap((f) =>
      [...readFileSync(join(ROOT, f), 'utf8').matchAll(/npm run ([a-z][\w:-]*)(\*?)/g)]
        .filter((m) => !m[2] && !m[1].endsWith(':')) // `npm run bench:*` names a family
        .map((m) => ({ f, s: m[1] })));
    expect(named.filter(({ s }) => !scripts.includes(s)).map(({ f, s }) => `${f}: npm run ${s}`)).toEqual([]);
    expect(named.length).toBeGreaterThan(5);
  });

  it('no tracked file points at reference material outside the repository (it must stand on its own)', () => {
    // The spec files beside the original checkout; their content lives in docs/model.md and docs/protocol.md now.
    const outside = new RegExp(['UVIT', 'DESIGN'].map((n) => `\\b${n}\\.md\\b`).concat('\\.\\./shared/golden', '/work/shared').join('|'));
    const self = 'tests/unit/docs-links.test.ts';
    const list = files ?? new Set<string>();
    const hits = [...list]
      .filter((f) => f !== self && !f.startsWith('tests/fixtures/') && /\.(ts|js|mjs|py|json|md|toml|ya?ml|sh)$|Dockerfile|^\.ci\//.test(f))
      .filter((f) => existsSync(join(ROOT, f)) && outside.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(hits).toEqual([]);
    if (files) expect(list.size).toBeGreaterThan(100);
  });

  it('the checker itself catches a missing file, a missing anchor, an escape, and ignores code and URLs', () => {
    const fake = new Set(['docs/a.md', 'docs/b.md', 'tests/x/y.ts']);
    const read = (p: string) => (p === 'docs/b.md' ? '# Title\n## 2. The `frame` format (v1)\n## Title\n' : '# A\n');
    const md = [
      '[ok](b.md#2-the-frame-format-v1) [ok](b.md#title-1) [ok](../tests/x/) [ok](#a) [ok](https://example.com/x.md)',
      '`[code](nowhere.md)`',
      '```\n[fenced](nowhere.md)\n```',
      '[bad file](c.md) [bad anchor](b.md#nope) [escape](../../etc/passwd) <img src="../missing.png">',
    ].join('\n');
    expect(brokenLinks('docs/a.md', md, fake, read)).toEqual([
      'docs/a.md: c.md → docs/c.md is not a file in the repository',
      'docs/a.md: b.md#nope → no heading #nope in docs/b.md',
      'docs/a.md: ../../etc/passwd points outside the repository',
      'docs/a.md: ../missing.png → missing.png is not a file in the repository',
    ]);
  });
});
