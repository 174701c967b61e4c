// Streaming access to one shard of a weights file (safetensors or .pth): tensors are read one at a time when the graph builder asks
// for them, so building a segment never holds the raw copy of every weight next to the builder's own (transposed)
// copy. Names outside the shard are refused, which checks that a segment only touches its own tensors.

import type { UViTConfig } from '../model/config.ts';
import { openTensorFile } from '../model/tensorFile.ts';
import { validateWeightsFile } from '../model/weights.ts';

export interface ShardReader {
  /** float32 data of one tensor of the shard (read from disk on each call) */
  get(name: string): Float32Array;
  /** names read so far */
  readonly read: Set<string>;
  close(): void;
}

export function openShard(weightsPath: string, cfg: UViTConfig, names: readonly string[]): ShardReader {
  const file = openTensorFile(weightsPath);
  try {
    validateWeightsFile(file, cfg);
  } catch (e) {
    file.close();
    throw e;
  }
  const allowed = new Set(names);
  const read = new Set<string>();
  return {
    read,
    get(name) {
      if (!allowed.has(name)) throw new Error(`shard of ${weightsPath}: tensor "${name}" is not in this shard (${allowed.size} tensors)`);
      read.add(name);
      return file.readFloat32(name);
    },
    close: () => file.close(),
  };
}
