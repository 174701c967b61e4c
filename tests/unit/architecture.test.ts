// The dependency rules of docs/architecture.md, checked on the import specifiers of every TypeScript file: no import
// cycles anywhere (type-only imports count: they tie modules as tightly for a reader), the backend's folders import
// only downward, the edge, the client and shared/ stay inside their own walls. The checker is tested on a planted
// graph first, so a green run means the rules were applied, not that the parser found nothing.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

/** gpu-backend folders, top to bottom; a file may import its own folder or a folder on a lower row, never one on its own row */
export const BACKEND_LAYERS: string[][] = [
  ['cli'],
  ['demo'],
  ['serve'],
  ['driver', 'pipeline'],
  ['engine'],
  ['partition'],
  ['model'],
  ['sampler', 'onnx', 'metrics'],
];

/** inside gpu-backend/pipeline: the wire format under both sides; the stage side never imports the client side */
const PIPELINE_LAYERS: string[][] = [['client'], ['stage'], ['wire']];

/** top-level folders that may import only themselves and these */
const WALLS: Record<string, string[]> = {
  shared: [],
  edge: ['shared'],
  client: ['shared'],
  'gpu-backend': ['shared'],
};

type Graph = Map<string, string[]>;

/** build output, scratch and dependency folders (.gitignore) hold no source of ours */
const SKIP = new Set(['node_modules', 'dist', 'tmp']);
const isSourceDir = (name: string) => !SKIP.has(name) && !name.startsWith('.');

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (isSourceDir(e.name)) sourceFiles(p, out);
    } else if (/\.(ts|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** repo-relative file → repo-relative targets of its relative imports (static, re-exports, dynamic import()) */
function importGraph(): Graph {
  const tops = readdirSync(ROOT, { withFileTypes: true })
    .filter((e) => e.isDirectory() && isSourceDir(e.name))
    .map((e) => e.name);
  const g: Graph = new Map();
  for (const f of tops.flatMap((d) => sourceFiles(d))) {
    const info = ts.preProcessFile(readFileSync(join(ROOT, f), 'utf8'), true, true);
    g.set(
      f,
      info.importedFiles.map((i) => i.fileName).filter((s) => s.startsWith('./') || s.startsWith('../')).map((s) => normalize(join(dirname(f), s))),
    );
  }
  return g;
}

/** strongly connected components with more than one file, or a file importing itself (Tarjan) */
export function cycles(g: Graph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

function rowOf(layers: string[][], folder: string): number {
  return layers.findIndex((row) => row.includes(folder));
}

/** "a -> b" for each import that breaks the layer order of the folders under `base` */
export function upwardImports(g: Graph, base: string, layers: string[][]): string[] {
  const bad: string[] = [];
  const folder = (p: string) => {
    const r = relative(base, p);
    return r.startsWith('..') || !r.includes('/') ? undefined : r.split('/')[0];
  };
  for (const [f, targets] of g) {
    const from = folder(f);
    if (from === undefined) continue;
    for (const t of targets) {
      const to = folder(t);
      if (to === undefined || to === from) continue;
      const a = rowOf(layers, from);
      const b = rowOf(layers, to);
      if (a < 0 || b < 0) bad.push(`${f} -> ${t} (folder not in the layer table)`);
      else if (b <= a) bad.push(`${f} -> ${t}`);
    }
  }
  return bad;
}

/** "a -> b" for each import that leaves a walled top-level folder for one it may not use */
export function wallBreaches(g: Graph): string[] {
  const bad: string[] = [];
  for (const [f, targets] of g) {
    const from = f.split('/')[0];
    const allowed = WALLS[from];
    if (!allowed) continue;
    for (const t of targets) {
      const to = t.split('/')[0];
      if (to !== from && !allowed.includes(to)) bad.push(`${f} -> ${t}`);
    }
  }
  return bad;
}

describe('the checker', () => {
  it('finds a planted cycle, an upward import, an import between neighbours and a breached wall', () => {
    const g: Graph = new Map([
      ['gpu-backend/driver/a.ts', ['gpu-backend/driver/b.ts', 'gpu-backend/pipeline/wire/c.ts']],
      ['gpu-backend/driver/b.ts', ['gpu-backend/driver/a.ts']],
      ['gpu-backend/serve/s.ts', ['gpu-backend/demo/d.ts', 'gpu-backend/driver/a.ts']],
      ['gpu-backend/engine/e.ts', ['gpu-backend/cli/x.ts', 'edge/env.ts']],
      ['gpu-backend/pipeline/stage/t.ts', ['gpu-backend/pipeline/client/u.ts', 'gpu-backend/pipeline/wire/c.ts']],
    ]);
    expect(cycles(g)).toEqual([['gpu-backend/driver/a.ts', 'gpu-backend/driver/b.ts']]);
    expect(upwardImports(g, 'gpu-backend', BACKEND_LAYERS).sort()).toEqual([
      'gpu-backend/driver/a.ts -> gpu-backend/pipeline/wire/c.ts',
      'gpu-backend/engine/e.ts -> gpu-backend/cli/x.ts',
      'gpu-backend/serve/s.ts -> gpu-backend/demo/d.ts',
    ]);
    expect(upwardImports(g, 'gpu-backend/pipeline', PIPELINE_LAYERS)).toEqual([
      'gpu-backend/pipeline/stage/t.ts -> gpu-backend/pipeline/client/u.ts',
    ]);
    expect(wallBreaches(g)).toEqual(['gpu-backend/engine/e.ts -> edge/env.ts']);
  });
});

describe('the repository', () => {
  const g = importGraph();

  it('parses the imports of every source file', () => {
    expect(g.size).toBeGreaterThan(200);
    // each resolved target exists (a wrong path would drop out of the graph and hide a rule break)
    const missing = [...g.entries()].flatMap(([f, targets]) => targets.filter((t) => /\.(ts|js)$/.test(t) && !g.has(t)).map((t) => `${f} -> ${t}`));
    expect(missing).toEqual([]);
    expect(g.get('gpu-backend/cli/commands/serve.ts')).toContain('gpu-backend/serve/worker.ts');
  });

  it('has no import cycles', () => {
    expect(cycles(g)).toEqual([]);
  });

  it('gpu-backend imports downward only: cli → demo → serve → driver | pipeline → engine → partition → model → sampler | onnx | metrics', () => {
    expect(upwardImports(g, 'gpu-backend', BACKEND_LAYERS)).toEqual([]);
  });

  it('the stage side of the pipeline never imports the client side; the wire format imports neither', () => {
    expect(upwardImports(g, 'gpu-backend/pipeline', PIPELINE_LAYERS)).toEqual([]);
  });

  it('shared/ imports nothing of the repo; edge/, client/ and gpu-backend/ import only shared/ outside themselves', () => {
    expect(wallBreaches(g)).toEqual([]);
  });
});
