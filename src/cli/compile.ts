// `s2-policy compile`: writes one ONNX model computing the S² features of a backbone (see src/compile/README.md),
// checked against the JavaScript engine on a random batch before it is written.
import { compiledInputs, type CompiledInfo } from '../compile/compile.js';
import { UserError } from '../errors.js';
import { compileModel } from '../run/compile.js';
import type { Command } from './command.js';
import { parseFlags, required, str } from './args.js';
import { MODEL_FLAGS, S2_FLAGS, backboneOptions, s2OptionsFromFlags } from './model-flags.js';
import { claimOutputs } from './output.js';

const COMPILE_HELP = `usage: s2-policy compile --model backbone.onnx --out s2_backbone.onnx [--force]
         (--scales 1,2 | --img-sizes 224,448 | --img-sizes 224x336,448x672) [--input-size N | HxW]
         [--max-split-size N] [--num-prefix-token K] [--output-shape bnc|bchw] [--resize-output-to-idx I]
         [--split-mode resize|pad] [--input-name NAME] [--output-name NAME] [--resize reference|native] [--no-check]
       input size: the base image the compiled model takes; default the backbone's input size (fixed, or its
       s2.image_size metadata), else the smallest --img-sizes (so --img-sizes 224,448 takes 224×224 images in
       crops of 224, as the reference does); with --scales alone on a dynamic backbone, pass --input-size
       --resize native: one input per scale (image_scale0, image_scale1, …) at that scale's size, as the node's
       image.resize native makes them from the frame, instead of the base image 'image' resized inside the model`;

export function parseInputSize(text: string, flag: string): [number, number] {
  const m = /^\s*(\d+)\s*(?:[x×]\s*(\d+))?\s*$/.exec(text);
  const size: [number, number] | undefined = m ? [Number(m[1]), m[2] === undefined ? Number(m[1]) : Number(m[2])] : undefined;
  if (!size || size[0] <= 0 || size[1] <= 0) throw new UserError(`--${flag} must be N or HxW, got '${text}'`);
  return size;
}

/** The compiled model's inputs as `name [dims]`, comma-separated. */
export function inputsText(i: CompiledInfo): string {
  return compiledInputs(i)
    .map((x) => `${x.name} [${x.dims.join(', ')}]`)
    .join(', ');
}

export const compileCommand: Command = {
  name: 'compile',
  summary: 'one ONNX model computing the S² features of a backbone (runs in any onnxruntime, Triton, …)',
  help: COMPILE_HELP,
  writes: '--out',
  run: async (argv) => {
    const flags = parseFlags('compile', argv, {
      ...MODEL_FLAGS,
      ...S2_FLAGS,
      out: { type: 'string' },
      'input-size': { type: 'string' },
      resize: { type: 'string' },
      'no-check': { type: 'boolean' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
    if (flags.help) {
      console.log(COMPILE_HELP);
      return 0;
    }
    const model = required(flags, 'model', 'compile');
    const out = required(flags, 'out', 'compile');
    const s2 = s2OptionsFromFlags(flags);
    const sizeText = str(flags, 'input-size');
    const inputSize = sizeText === undefined ? undefined : parseInputSize(sizeText, 'input-size');
    const resize = str(flags, 'resize') ?? 'reference';
    if (resize !== 'reference' && resize !== 'native') throw new UserError(`--resize must be reference or native, got '${resize}'`);
    claimOutputs('compile', [{ path: out, what: '--out', kind: 'file' }], Boolean(flags.force), [{ path: model, what: '--model' }]);
    const r = await compileModel({ model, out, s2, inputSize, resize, backbone: backboneOptions(flags), check: !flags['no-check'] });
    const i = r.info;
    const from = r.inputSizeFrom === 'smallest img size' ? ` (input size ${i.inputSize[0]}×${i.inputSize[1]}: the smallest --img-sizes)` : '';
    const checked = r.relativeError === undefined ? '' : `, checked against the S² engine (max error ${r.relativeError.toExponential(2)} × RMS)`;
    console.log(
      `wrote ${out}: ${inputsText(i)} -> features [${i.outputDims.join(', ')}] ` +
        `(${i.outputShape}, ${i.numPrefixToken} prefix tokens, ${i.scales.length} scales, ${i.backboneCalls} backbone pass${i.backboneCalls === 1 ? '' : 'es'})${checked}${from}`,
    );
    return 0;
  },
};
