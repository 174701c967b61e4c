// .pth (or safetensors) -> safetensors, tensor by tensor in the stored dtype. Everything is checked before the output
// exists, the data goes to a temporary file renamed into place at the end, so a refused input never leaves a file.
import { renameSync, rmSync } from 'node:fs';
import type { UViTConfig } from './config.ts';
import { SafetensorsWriter, type WriteDType } from './safetensors.ts';
import { openTensorFile } from './tensorFile.ts';
import { validateWeightsFile } from './weights.ts';

export interface ConvertResult {
  tensors: number;
  dtypes: string[];
}

/** With `cfg`, the tensors must be exactly the official parameters of that U-ViT config. */
export function convertToSafetensors(inPath: string, outPath: string, cfg?: UViTConfig): ConvertResult {
  const src = openTensorFile(inPath);
  const tmp = `${outPath}.partial-${process.pid}`;
  let writer: SafetensorsWriter | undefined;
  try {
    if (cfg) validateWeightsFile(src, cfg);
    const specs = new Map<string, { dtype: WriteDType; shape: number[] }>();
    for (const name of src.names) {
      const { dtype, shape } = src.info(name);
      if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') {
        throw new Error(`${inPath}: tensor "${name}" has dtype ${dtype}; only F32, F16 and BF16 are converted`);
      }
      specs.set(name, { dtype, shape });
    }
    writer = new SafetensorsWriter(tmp, specs, { source: 'uvit convert' });
    // F16/BF16 values pass through float32 exactly, so the stored bits come back unchanged
    for (const name of src.names) writer.write(name, src.readFloat32(name));
    writer.close();
    renameSync(tmp, outPath);
    return { tensors: specs.size, dtypes: [...new Set([...specs.values()].map((s) => s.dtype))].sort() };
  } catch (e) {
    writer?.abort();
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    src.close();
  }
}
