// Writes a preset backbone to disk, optionally with every weight as a .npy (for independent re-implementations).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { writeNpy } from '../io/npy.js';
import { PRESETS, type PresetName } from './zoo.js';

export function writePresetModel(preset: PresetName, file: string, weightsDir?: string): void {
  const graph = PRESETS[preset]();
  writeFileAtomic(file, graph.serialize());
  if (weightsDir !== undefined) {
    mkdirSync(weightsDir, { recursive: true });
    for (const [name, w] of graph.floatWeights()) writeNpy(join(weightsDir, `${name}.npy`), { dims: w.dims, data: w.data });
  }
}
