// `s2-policy features`: S² features of a .npy batch or an image file, written as a float32 .npy.
import { UserError } from '../errors.js';
import { parseTriple, presetNormalization, type Normalization } from '../image/normalize.js';
import { computeFeatures } from '../run/features.js';
import type { Command } from './command.js';
import { parseFlags, required, sizeList, str, type Flags } from './args.js';
import { MODEL_FLAGS, S2_FLAGS, backboneOptions, s2OptionsFromFlags } from './model-flags.js';
import { claimOutputs } from './output.js';

const FEATURES_HELP = `usage: s2-policy features --model M.onnx (--input x.npy | --image photo.jpg) --out y.npy [--force]
         (--scales 1,2 | --img-sizes 224,448 | --img-sizes 224x336,448x672)
         [--max-split-size N] [--num-prefix-token K] [--output-shape bnc|bchw] [--resize-output-to-idx I]
         [--split-mode resize|pad] [--max-batch N] [--threads N] [--provider cpu|cuda|tensorrt]
         [--input-name NAME] [--output-name NAME]
       with --image: [--size N | --size HxW] [--preset imagenet|clip|none | --mean a,b,c --std a,b,c]
       a compiled model (s2-policy compile) runs as it is, without S² flags`;

/** --preset or --mean/--std; undefined leaves it to the model's s2.mean/s2.std metadata. */
function normalizationFlags(flags: Flags): Normalization | undefined {
  const preset = str(flags, 'preset');
  const mean = str(flags, 'mean');
  const std = str(flags, 'std');
  if (preset !== undefined && (mean !== undefined || std !== undefined)) throw new UserError('give either --preset or --mean/--std, not both');
  if (preset !== undefined) return presetNormalization(preset, '--preset');
  if ((mean === undefined) !== (std === undefined)) throw new UserError('--mean and --std go together');
  if (mean === undefined || std === undefined) return undefined;
  const s = parseTriple(std, '--std');
  // Normalisation divides by std: 0 would turn every pixel into ±Inf or NaN.
  if (s.some((v) => !(v > 0))) throw new UserError(`--std: every value must be positive (pixels are divided by it), got '${std}'`);
  return { mean: parseTriple(mean, '--mean'), std: s };
}

export const featuresCommand: Command = {
  name: 'features',
  summary: 'S² features of a .npy batch or an image, written as .npy',
  help: FEATURES_HELP,
  writes: '--out',
  run: async (argv) => {
    const flags = parseFlags('features', argv, {
      ...MODEL_FLAGS,
      ...S2_FLAGS,
      input: { type: 'string' },
      image: { type: 'string' },
      out: { type: 'string' },
      size: { type: 'string' },
      preset: { type: 'string' },
      mean: { type: 'string' },
      std: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
    if (flags.help) {
      console.log(FEATURES_HELP);
      return 0;
    }
    const model = required(flags, 'model', 'features');
    const out = required(flags, 'out', 'features');
    const input = str(flags, 'input');
    const image = str(flags, 'image');
    if ((input === undefined) === (image === undefined)) throw new UserError('features: give exactly one of --input x.npy or --image photo.jpg');
    claimOutputs('features', [{ path: out, what: '--out', kind: 'file' }], Boolean(flags.force), [
      { path: model, what: '--model' },
      ...(input !== undefined ? [{ path: input, what: '--input' }] : []),
      ...(image !== undefined ? [{ path: image, what: '--image' }] : []),
    ]);
    const sizeText = str(flags, 'size');
    const size = sizeText === undefined ? undefined : sizeList(sizeText, 'size');
    if (size !== undefined && size.length !== 1) throw new UserError(`--size takes one size, got '${sizeText}'`);
    const r = await computeFeatures({
      model,
      out,
      input,
      image,
      s2: s2OptionsFromFlags(flags),
      backbone: backboneOptions(flags),
      size: size === undefined ? undefined : typeof size[0] === 'number' ? size[0] : [size[0][0], size[0][1]],
      normalization: image !== undefined ? normalizationFlags(flags) : undefined,
    });
    console.log(`wrote ${out}: float32 (${r.dims.join(', ')}) [${r.compiled ? 'compiled S², ' : ''}${r.outputShape}, ${r.numPrefixToken} prefix tokens]`);
    return 0;
  },
};
