// The official golden case a_cls_conv (docs/model.md §7): made by the official PyTorch U-ViT code, kept in the
// repository under tests/fixtures/golden so every clone runs the parity tests against the same bytes.
import { join, resolve } from 'node:path';

export const GOLDEN_DIR = join(resolve(import.meta.dirname, '..'), 'tests/fixtures/golden/a_cls_conv');
