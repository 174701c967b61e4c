// The official golden case a_cls_conv (UVIT.md §7). Ground truth lives beside the project root in ../shared/golden;
// a byte-identical copy is vendored in tests/fixtures/golden so a clone anywhere runs its tests. UVIT_GOLDEN_DIR wins.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const beside = resolve(root, '../shared/golden/a_cls_conv');
const vendored = join(root, 'tests/fixtures/golden/a_cls_conv');

export const GOLDEN_DIR = process.env.UVIT_GOLDEN_DIR ?? (existsSync(join(beside, 'case.json')) ? beside : vendored);
