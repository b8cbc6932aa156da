// `s2-policy compile`: writes one ONNX model computing the S² features of a backbone (see src/compile/README.md),
// checked against the JavaScript engine on a random batch before it is written.
import { OnnxBackbone } from '../backbone/onnx-backbone.js';
import { compileLoaded } from '../compile/compile.js';
import { CompiledS2, checkCompiled } from '../compile/engine.js';
import { UserError } from '../errors.js';
import { refuseAliases, writeFileAtomic } from '../io/atomic.js';
import { backboneOptions } from './features.js';
import { MODEL_FLAGS, S2_FLAGS, parseFlags, required, s2OptionsFromFlags, str } from './args.js';

export const COMPILE_HELP = `usage: s2-policy compile --model backbone.onnx --out s2_backbone.onnx
         (--scales 1,2 | --img-sizes 224,448 | --img-sizes 224x336,448x672) [--input-size N | HxW]
         [--max-split-size N] [--num-prefix-token K] [--output-shape bnc|bchw] [--resize-output-to-idx I]
         [--split-mode resize|pad] [--input-name NAME] [--output-name NAME] [--no-check]
       input size: the base image the compiled model takes (default: the backbone's input size)`;

export function parseInputSize(text: string, flag: string): [number, number] {
  const m = /^\s*(\d+)\s*(?:[x×]\s*(\d+))?\s*$/.exec(text);
  const size: [number, number] | undefined = m ? [Number(m[1]), m[2] === undefined ? Number(m[1]) : Number(m[2])] : undefined;
  if (!size || size[0] <= 0 || size[1] <= 0) throw new UserError(`--${flag} must be N or HxW, got '${text}'`);
  return size;
}

export async function compileCommand(argv: string[]): Promise<number> {
  const flags = parseFlags('compile', argv, {
    ...MODEL_FLAGS,
    ...S2_FLAGS,
    out: { type: 'string' },
    'input-size': { type: 'string' },
    'no-check': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(COMPILE_HELP);
    return 0;
  }
  const modelFile = required(flags, 'model', 'compile');
  const outFile = required(flags, 'out', 'compile');
  const options = s2OptionsFromFlags(flags);
  if (options.scales === undefined && options.imgSizes === undefined) throw new UserError('compile: one of --scales or --img-sizes is required');
  if (options.maxBatch !== undefined) throw new UserError('compile: --max-batch cannot be compiled (the graph runs all crops of one size in one pass)');
  const sizeText = str(flags, 'input-size');
  refuseAliases([{ path: outFile, what: '--out' }], [{ path: modelFile, what: '--model' }]);

  const backbone = await OnnxBackbone.load(modelFile, { ...backboneOptions(flags), outputShape: options.outputShape, numPrefixToken: options.numPrefixToken });
  try {
    let inputSize: [number, number];
    if (sizeText !== undefined) inputSize = parseInputSize(sizeText, 'input-size');
    else {
      const native = backbone.nativeSize;
      if (native === undefined) throw new UserError(`compile: ${modelFile} has no fixed input size or s2.image_size metadata; pass --input-size`);
      inputSize = [native, native];
    }
    const compiled = await compileLoaded(backbone, options, inputSize);
    let checked = '';
    if (!flags['no-check']) {
      const engine = await CompiledS2.fromBytes(compiled.bytes, outFile, { threads: backboneOptions(flags).threads });
      try {
        const r = await checkCompiled(engine, backbone, compiled.info.options, 2);
        if (!r.ok)
          throw new UserError(
            `compile: the compiled model differs from the S² engine on a random batch (max error ${r.maxError.toExponential(3)} > ${r.bound.toExponential(3)} = 1e-4 × RMS); not written`,
          );
        checked = `, checked against the S² engine (max error ${(r.maxError / r.rms).toExponential(2)} × RMS)`;
      } finally {
        await engine.release();
      }
    }
    // Written under a temporary name and renamed, so a failed run leaves no half-written model.
    writeFileAtomic(outFile, compiled.bytes, '--out');
    const i = compiled.info;
    console.log(
      `wrote ${outFile}: image [batch, ${i.channels}, ${i.inputSize[0]}, ${i.inputSize[1]}] -> features [${i.outputDims.join(', ')}] ` +
        `(${i.outputShape}, ${i.numPrefixToken} prefix tokens, ${i.scales.length} scales, ${i.backboneCalls} backbone pass${i.backboneCalls === 1 ? '' : 'es'})${checked}`,
    );
    return 0;
  } finally {
    await backbone.release();
  }
}
