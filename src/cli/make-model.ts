// `s2-policy make-model`: writes one of the project's deterministic test/demo backbones as an ONNX file.
import { UserError } from '../errors.js';
import { writePresetModel } from '../models/write.js';
import { PRESETS, isPresetName } from '../models/zoo.js';
import type { Command } from './command.js';
import { parseFlags, required, str } from './args.js';
import { claimOutputs } from './output.js';

const MAKE_MODEL_HELP = `usage: s2-policy make-model --preset NAME --out model.onnx [--weights-dir DIR] [--force]
       presets: ${Object.keys(PRESETS).join(', ')}`;

export const makeModelCommand: Command = {
  name: 'make-model',
  summary: "write one of the project's deterministic test backbones",
  help: MAKE_MODEL_HELP,
  writes: '--out',
  run: (argv) => {
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
    claimOutputs('make-model', [{ path: out, what: '--out', kind: 'file' }], Boolean(flags.force));
    writePresetModel(preset, out, str(flags, 'weights-dir'));
    console.log(`wrote ${out} (${preset})`);
    return 0;
  },
};
