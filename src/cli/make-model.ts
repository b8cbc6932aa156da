// `s2-policy make-model`: writes one of the project's deterministic test/demo backbones as an ONNX file.
import { existsSync } from 'node:fs';
import { UserError } from '../errors.js';
import { checkOutputPath } from '../io/atomic.js';
import { writePresetModel } from '../models/write.js';
import { PRESETS, isPresetName } from '../models/zoo.js';
import { parseFlags, required, str } from './args.js';

export const MAKE_MODEL_HELP = `usage: s2-policy make-model --preset NAME --out model.onnx [--weights-dir DIR] [--force]
       presets: ${Object.keys(PRESETS).join(', ')}`;

export function makeModelCommand(argv: string[]): number {
  const flags = parseFlags('make-model', argv, {
    preset: { type: 'string' },
    out: { type: 'string' },
    'weights-dir': { type: 'string' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(MAKE_MODEL_HELP);
    return 0;
  }
  const preset = required(flags, 'preset', 'make-model');
  if (!isPresetName(preset)) throw new UserError(`make-model: unknown --preset '${preset}' (presets: ${Object.keys(PRESETS).join(', ')})`);
  const out = required(flags, 'out', 'make-model');
  checkOutputPath(out, 'file', '--out');
  if (existsSync(out) && !flags.force) throw new UserError(`${out}: exists; pass --force to overwrite`);
  writePresetModel(preset, out, str(flags, 'weights-dir'));
  console.log(`wrote ${out} (${preset})`);
  return 0;
}
