// `s2-policy features`: S² features of a .npy batch or an image file, written as a float32 .npy.
import { UserError } from '../errors.js';
import { OnnxBackbone } from '../backbone/onnx-backbone.js';
import { compiledInfo } from '../compile/compile.js';
import { CompiledS2 } from '../compile/engine.js';
import { resolveS2Options } from '../backbone/resolve.js';
import { checkOutputPath, refuseAliases } from '../io/atomic.js';
import { readNpy, writeNpy } from '../io/npy.js';
import { loadStillImage, type StillSize } from '../image/still.js';
import { parseTriple, presetNormalization, type Normalization } from '../image/normalize.js';
import { multiscaleForward } from '../s2/multiscale.js';
import type { Tensor } from '../s2/tensor.js';
import { MODEL_FLAGS, S2_FLAGS, int, parseFlags, required, s2OptionsFromFlags, sizeList, str, type Flags } from './args.js';

export const FEATURES_HELP = `usage: s2-policy features --model M.onnx (--input x.npy | --image photo.jpg) --out y.npy
         (--scales 1,2 | --img-sizes 224,448 | --img-sizes 224x336,448x672)
         [--max-split-size N] [--num-prefix-token K] [--output-shape bnc|bchw] [--resize-output-to-idx I]
         [--split-mode resize|pad] [--max-batch N] [--threads N] [--provider cpu|cuda|tensorrt]
         [--input-name NAME] [--output-name NAME]
       with --image: [--size N | --size HxW] [--preset imagenet|clip|none | --mean a,b,c --std a,b,c]
       a compiled model (s2-policy compile) runs as it is, without S² flags`;

export function backboneOptions(flags: Flags): { threads?: number; executionProviders?: string[]; inputName?: string; outputName?: string } {
  const provider = str(flags, 'provider');
  return {
    threads: int(flags, 'threads'),
    executionProviders: provider === undefined ? undefined : provider.split(',').map((p) => p.trim()),
    inputName: str(flags, 'input-name'),
    outputName: str(flags, 'output-name'),
  };
}

function normalizationFor(flags: Flags, metadata: Record<string, string>, model: string): Normalization {
  const preset = str(flags, 'preset');
  const mean = str(flags, 'mean');
  const std = str(flags, 'std');
  if (preset !== undefined && (mean !== undefined || std !== undefined)) throw new UserError('give either --preset or --mean/--std, not both');
  if (preset !== undefined) return presetNormalization(preset, '--preset');
  if ((mean === undefined) !== (std === undefined)) throw new UserError('--mean and --std go together');
  if (mean !== undefined && std !== undefined) {
    const s = parseTriple(std, '--std');
    // Normalisation divides by std: 0 would turn every pixel into ±Inf or NaN.
    if (s.some((v) => !(v > 0))) throw new UserError(`--std: every value must be positive (pixels are divided by it), got '${std}'`);
    return { mean: parseTriple(mean, '--mean'), std: s };
  }
  if (metadata['s2.mean'] && metadata['s2.std']) {
    return { mean: parseTriple(metadata['s2.mean'], `${model} metadata s2.mean`), std: parseTriple(metadata['s2.std'], `${model} metadata s2.std`) };
  }
  throw new UserError(`${model} has no s2.mean/s2.std metadata: pass --preset imagenet|clip|none or --mean/--std`);
}

/** Features with a NaN or Inf are not written: from a finite input they mean the model is broken. */
function finiteOutput(t: Tensor, model: string): Tensor {
  const bad = t.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new UserError(`${model}: produced a non-finite feature (${t.data[bad]} at flat index ${bad}) from a finite input; nothing written`);
  return t;
}

export async function featuresCommand(argv: string[]): Promise<number> {
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
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(FEATURES_HELP);
    return 0;
  }
  const modelFile = required(flags, 'model', 'features');
  const outFile = required(flags, 'out', 'features');
  const inputFile = str(flags, 'input');
  const imageFile = str(flags, 'image');
  if ((inputFile === undefined) === (imageFile === undefined)) throw new UserError('features: give exactly one of --input x.npy or --image photo.jpg');
  checkOutputPath(outFile, 'file', '--out');
  refuseAliases(
    [{ path: outFile, what: '--out' }],
    [
      { path: modelFile, what: '--model' },
      ...(inputFile !== undefined ? [{ path: inputFile, what: '--input' }] : []),
      ...(imageFile !== undefined ? [{ path: imageFile, what: '--image' }] : []),
    ],
  );
  const options = s2OptionsFromFlags(flags);

  const backbone = await OnnxBackbone.load(modelFile, backboneOptions(flags));
  try {
    const compiled = compiledInfo(backbone.metadata, modelFile);
    if (compiled) {
      const given = Object.keys(S2_FLAGS).filter((k) => flags[k] !== undefined);
      if (given.length > 0) throw new UserError(`features: ${modelFile} is a compiled S² model (its S² options are built in); drop --${given[0]}`);
    } else if (options.scales === undefined && options.imgSizes === undefined) {
      throw new UserError('features: one of --scales or --img-sizes is required');
    }
    let input: Tensor;
    if (inputFile !== undefined) {
      input = readNpy(inputFile);
      if (input.dims.length !== 4) throw new UserError(`${inputFile}: expected a 4-D float32 N×C×H×W array, got shape (${input.dims.join(', ')})`);
      if (input.dims.some((d) => d === 0)) throw new UserError(`${inputFile}: empty array, shape (${input.dims.join(', ')}): nothing to compute`);
      const bad = input.data.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new UserError(`${inputFile}: value ${bad} (flat index) is ${input.data[bad]}; the input must be finite`);
    } else {
      const sizeText = str(flags, 'size');
      let size: StillSize = compiled ? compiled.inputSize : backbone.nativeSize;
      if (sizeText !== undefined) {
        const parsed = sizeList(sizeText, 'size');
        if (parsed.length !== 1) throw new UserError(`--size takes one size, got '${sizeText}'`);
        size = typeof parsed[0] === 'number' ? parsed[0] : [parsed[0][0], parsed[0][1]];
      }
      input = await loadStillImage(imageFile as string, size, normalizationFor(flags, backbone.metadata, modelFile));
    }
    if (compiled) {
      const engine = CompiledS2.of(backbone);
      engine.assertInput(input.dims, inputFile ?? (imageFile as string));
      const out = await engine.forward(input);
      writeNpy(outFile, finiteOutput(out, modelFile));
      console.log(`wrote ${outFile}: float32 (${out.dims.join(', ')}) [compiled S², ${compiled.outputShape}, ${compiled.numPrefixToken} prefix tokens]`);
      return 0;
    }
    const { options: resolved } = await resolveS2Options(backbone, options, input.dims);
    const out = await multiscaleForward(backbone, input, resolved);
    writeNpy(outFile, finiteOutput(out, modelFile));
    console.log(`wrote ${outFile}: float32 (${out.dims.join(', ')}) [${resolved.outputShape}, ${resolved.numPrefixToken} prefix tokens]`);
    return 0;
  } finally {
    await backbone.release();
  }
}
