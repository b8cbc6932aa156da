// The flags shared by the commands that load a backbone: the S² options (the reference's names) and the model's
// session options.
import type { BackboneOptions } from '../backbone/onnx-backbone.js';
import { UserError } from '../errors.js';
import type { S2Options } from '../s2/plan.js';
import { int, numberList, sizeList, str, type Flags } from './args.js';

export const S2_FLAGS = {
  scales: { type: 'string' },
  'img-sizes': { type: 'string' },
  'max-split-size': { type: 'string' },
  'num-prefix-token': { type: 'string' },
  'output-shape': { type: 'string' },
  'resize-output-to-idx': { type: 'string' },
  'split-mode': { type: 'string' },
  'max-batch': { type: 'string' },
} as const;

export const MODEL_FLAGS = {
  model: { type: 'string' },
  threads: { type: 'string' },
  provider: { type: 'string' },
  'input-name': { type: 'string' },
  'output-name': { type: 'string' },
} as const;

/** The S² options given on the command line (layout options may still come from detection). */
export function s2OptionsFromFlags(flags: Flags): S2Options {
  const o: S2Options = {};
  const scales = str(flags, 'scales');
  const sizes = str(flags, 'img-sizes');
  if (scales !== undefined && sizes !== undefined) throw new UserError('give either --scales or --img-sizes, not both');
  if (scales !== undefined) o.scales = numberList(scales, 'scales');
  if (sizes !== undefined) o.imgSizes = sizeList(sizes, 'img-sizes');
  o.maxSplitSize = int(flags, 'max-split-size');
  o.numPrefixToken = int(flags, 'num-prefix-token', 0);
  o.resizeOutputToIdx = int(flags, 'resize-output-to-idx', 0);
  o.maxBatch = int(flags, 'max-batch');
  const shape = str(flags, 'output-shape');
  if (shape !== undefined) {
    if (shape !== 'bnc' && shape !== 'bchw') throw new UserError(`--output-shape must be bnc or bchw, got '${shape}'`);
    o.outputShape = shape;
  }
  const mode = str(flags, 'split-mode');
  if (mode !== undefined) {
    if (mode !== 'resize' && mode !== 'pad') throw new UserError(`--split-mode must be resize or pad, got '${mode}'`);
    o.splitMode = mode;
  }
  return o;
}

/** --threads, --provider, --input-name and --output-name as backbone session options. */
export function backboneOptions(flags: Flags): BackboneOptions {
  const provider = str(flags, 'provider');
  return {
    threads: int(flags, 'threads'),
    executionProviders: provider === undefined ? undefined : provider.split(',').map((p) => p.trim()),
    inputName: str(flags, 'input-name'),
    outputName: str(flags, 'output-name'),
  };
}
