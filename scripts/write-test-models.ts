// Writes every preset backbone to a folder, each with its weights as .npy files (used to make golden values).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writePresetModel } from '../src/models/write.js';
import { PRESETS, type PresetName } from '../src/models/zoo.js';

const out = process.argv[2];
if (!out) {
  console.error('usage: node dist/scripts/write-test-models.js OUT_DIR');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
for (const name of Object.keys(PRESETS) as PresetName[]) {
  writePresetModel(name, join(out, `${name}.onnx`), join(out, name));
  console.log(`wrote ${join(out, `${name}.onnx`)} and ${join(out, name)}/`);
}
