// `s2-policy make-input`: a seeded random float32 batch as .npy, to try `features`, `compile` or a model without
// Python or a camera.
import { UserError } from '../errors.js';
import { writeNpy } from '../io/npy.js';
import { seededRandom } from '../models/zoo.js';
import type { Command } from './command.js';
import { int, parseFlags, required } from './args.js';
import { claimOutputs } from './output.js';

const MAKE_INPUT_HELP = `usage: s2-policy make-input --shape NxCxHxW --out x.npy [--seed S] [--force]
       uniform random values in [0, 1), float32, C order (what features --input takes); the same seed gives the same file`;

/** Largest batch written (elements): 256 Mi floats, 1 GiB. */
const MAX_ELEMENTS = 1 << 28;

function parseShape(text: string): number[] {
  const dims = text.split(/[x×,]/).map((s) => Number(s.trim()));
  if (dims.length !== 4 || dims.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new UserError(`make-input: --shape '${text}': expected four positive integers N x C x H x W, e.g. 1x3x224x224`);
  }
  if (dims.reduce((a, b) => a * b, 1) > MAX_ELEMENTS) throw new UserError(`make-input: --shape '${text}': more than ${MAX_ELEMENTS} values`);
  return dims;
}

export const makeInputCommand: Command = {
  name: 'make-input',
  summary: 'write a seeded random N×C×H×W float32 .npy, to try a model',
  help: MAKE_INPUT_HELP,
  writes: '--out',
  run: (argv) => {
    const flags = parseFlags('make-input', argv, {
      shape: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
    if (flags.help) {
      console.log(MAKE_INPUT_HELP);
      return 0;
    }
    const dims = parseShape(required(flags, 'shape', 'make-input'));
    const out = required(flags, 'out', 'make-input');
    const seed = int(flags, 'seed', 0) ?? 0;
    claimOutputs('make-input', [{ path: out, what: '--out', kind: 'file' }], Boolean(flags.force));
    const rand = seededRandom(seed);
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = rand();
    writeNpy(out, { dims, data });
    console.log(`wrote ${out}: float32 (${dims.join(', ')}), seed ${seed}`);
    return 0;
  },
};
