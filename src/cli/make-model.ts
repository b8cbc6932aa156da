// `s2-policy make-model`: writes one of the project's deterministic test/demo backbones as an ONNX file.
import { UserError } from '../errors.js';
import { writePresetModel } from '../models/write.js';
import { PRESETS, isPresetName } from '../models/zoo.js';
import { parseFlags, required, str } from './args.js';

export const MAKE_MODEL_HELP = `usage: s2-policy make-model --preset NAME --out model.onnx [--weights-dir DIR]
       presets: ${Object.keys(PRESETS).join(', ')}`;

export function makeModelCommand(argv: string[]): number {
  const flags = parseFlags('make-model', argv, { preset: { type: 'string' }, out: { type: 'string' }, 'weights-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (flags.help) {
    console.log(MAKE_MODEL_HELP);
    return 0;
  }
  const preset = required(flags, 'preset', 'make-model');
  if (!isPresetName(preset)) throw new UserError(`make-model: unknown --preset '${preset}' (presets: ${Object.keys(PRESETS).join(', ')})`);
  const out = required(flags, 'out', 'make-model');
  writePresetModel(preset, out, str(flags, 'weights-dir'));
  console.log(`wrote ${out} (${preset})`);
  return 0;
}
