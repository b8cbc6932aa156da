// Compiling a backbone and S² options into one ONNX model (src/compile), checked against the JavaScript engine on a
// random batch before it is written atomically.
import { OnnxBackbone, type BackboneOptions } from '../backbone/onnx-backbone.js';
import { compileLoaded, type CompiledInfo } from '../compile/compile.js';
import type { CompiledResize } from '../compile/s2-graph.js';
import { CompiledS2, checkCompiled } from '../compile/engine.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { S2OptionError, type S2Options } from '../s2/plan.js';

export interface CompileOptions {
  model: string;
  out: string;
  s2: S2Options;
  /** The base image the compiled model takes; by default as defaultInputSize says. */
  inputSize?: [number, number];
  backbone?: BackboneOptions;
  /** 'native': one input per scale (the images the node's ingester makes with image.resize native). */
  resize?: CompiledResize;
  /** Compare with the JavaScript engine on a random batch of 2 before writing (default true). */
  check?: boolean;
}

export interface CompileResult {
  info: CompiledInfo;
  /** Where the input size came from. */
  inputSizeFrom: 'given' | 'model' | 'smallest img size';
  /** Max difference from the S² engine, relative to the features' RMS, when checked. */
  relativeError?: number;
}

/**
 * The base image size when none is given, as the reference wrapper takes it: the backbone's own input size (fixed,
 * or its s2.image_size metadata); otherwise the smallest of the explicit image sizes (the reference's first scale is
 * the input, and its max_split_size defaults to the input side, so crops are that scale's side). With only scales
 * nothing fixes the size, and the error says what to pass.
 */
export function defaultInputSize(
  nativeSize: number | undefined,
  o: S2Options,
  model: string,
): { size: [number, number]; from: CompileResult['inputSizeFrom'] } {
  if (nativeSize !== undefined) return { size: [nativeSize, nativeSize], from: 'model' };
  if (o.imgSizes !== undefined && o.imgSizes.length > 0) {
    const pairs = o.imgSizes.map((s): [number, number] => (typeof s === 'number' ? [s, s] : [s[0], s[1]]));
    const smallest = pairs.reduce((a, b) => (b[0] * b[1] < a[0] * a[1] ? b : a));
    return { size: smallest, from: 'smallest img size' };
  }
  const m = o.maxSplitSize;
  throw new S2OptionError(
    `compile: ${model} has no fixed input size or s2.image_size metadata, and scales multiply the input's size: ` +
      (m !== undefined
        ? `pass --input-size ${m} (the crop side maxSplitSize ${m}) or the side of your images`
        : 'pass --input-size N, the side of your images') +
      ', or give imgSizes instead',
  );
}

/** Compiles `o.model` with `o.s2` and writes the compiled model to `o.out` (only after the check passed). */
export async function compileModel(o: CompileOptions): Promise<CompileResult> {
  if (o.s2.scales === undefined && o.s2.imgSizes === undefined) throw new S2OptionError('compile: one of scales or imgSizes is required');
  if (o.s2.maxBatch !== undefined) throw new S2OptionError('compile: maxBatch cannot be compiled (the graph runs all crops of one size in one pass)');
  const backbone = await OnnxBackbone.load(o.model, { ...o.backbone, outputShape: o.s2.outputShape, numPrefixToken: o.s2.numPrefixToken });
  try {
    const { size: inputSize, from } =
      o.inputSize !== undefined ? { size: o.inputSize, from: 'given' as const } : defaultInputSize(backbone.nativeSize, o.s2, o.model);
    const compiled = await compileLoaded(backbone, o.s2, inputSize, o.resize);
    let relativeError: number | undefined;
    if (o.check ?? true) {
      const engine = await CompiledS2.fromBytes(compiled.bytes, o.out, { threads: o.backbone?.threads });
      try {
        const r = await checkCompiled(engine, backbone, compiled.info.options, 2);
        if (!r.ok)
          throw new UserError(
            `compile: the compiled model differs from the S² engine on a random batch (max error ${r.maxError.toExponential(3)} > ${r.bound.toExponential(3)} = 1e-4 × RMS); not written`,
          );
        relativeError = r.maxError / r.rms;
      } finally {
        await engine.release();
      }
    }
    // Written under a temporary name and renamed, so a failed run leaves no half-written model.
    writeFileAtomic(o.out, compiled.bytes, '--out');
    return { info: compiled.info, inputSizeFrom: from, relativeError };
  } finally {
    await backbone.release();
  }
}
