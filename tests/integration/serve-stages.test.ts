// The one cache rule for exported stages (serve/stages.ts): kept while the model config, the weights, the stage count
// and the partition are the same; redone when any of them changes; the kept split is the one the stages load.
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoFileMakers } from '../../gpu-backend/demo/demo.ts';
import { readPlanFile } from '../../gpu-backend/partition/planFile.ts';
import { loadGroupConfig } from '../../gpu-backend/serve/groupConfig.ts';
import { prepareModelFiles } from '../../gpu-backend/serve/modelFiles.ts';
import { exportStages } from '../../gpu-backend/serve/stages.ts';
import { writeTinyGroup } from './serve-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'uvit-stages-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('exportStages', () => {
  const cfg = loadGroupConfig(writeTinyGroup(dir));
  prepareModelFiles(cfg, undefined, demoFileMakers(cfg));
  const root = join(dir, 'stages');

  it('exports once, keeps the export while its inputs are unchanged, and redoes it when the weights change', () => {
    const first = exportStages(cfg, 2, root);
    expect(first.made).toBe(true);
    const { plan, segmentPaths } = readPlanFile(first.planPath);
    expect(plan.numStages).toBe(2);
    for (const p of segmentPaths) expect(statSync(p).size).toBeGreaterThan(0);
    const planTime = statSync(first.planPath).mtimeMs;

    const again = exportStages(cfg, 2, root);
    expect(again).toEqual({ planPath: first.planPath, made: false });
    expect(statSync(first.planPath).mtimeMs).toBe(planTime);

    // the same bytes with a new mtime count as new weights (the rule does not hash gigabytes on every start)
    const t = new Date(Date.now() + 5000);
    utimesSync(cfg.weights, t, t);
    expect(exportStages(cfg, 2, root).made).toBe(true);
    expect(exportStages(cfg, 2, root).made).toBe(false);
  });

  it('keeps one folder per stage count and partition, and leaves no temporary folder behind', () => {
    const three = exportStages(cfg, 3, root);
    expect(three.made).toBe(true);
    expect(readPlanFile(three.planPath).plan.numStages).toBe(3);
    expect(dirname(three.planPath)).not.toBe(dirname(exportStages(cfg, 2, root).planPath));
    expect(readdirSync(root).sort()).toEqual([`uvit-tiny-s2-${cfg.partition}`, `uvit-tiny-s3-${cfg.partition}`]);
  });
});
