// S² features of a float32 N×C×H×W .npy batch or of an image file, through a backbone (S² options given) or a
// compiled S² model (options built in), written as a float32 .npy.
import { OnnxBackbone, type BackboneOptions } from '../backbone/onnx-backbone.js';
import { resolveS2Options } from '../backbone/resolve.js';
import { compiledInfo, compiledResize } from '../compile/compile.js';
import { CompiledS2 } from '../compile/engine.js';
import { UserError } from '../errors.js';
import { parseTriple, type Normalization } from '../image/normalize.js';
import { loadStillImage, type StillSize } from '../image/still.js';
import { readNpy, writeNpy } from '../io/npy.js';
import { multiscaleForward } from '../s2/multiscale.js';
import { S2OptionError, type S2Options } from '../s2/plan.js';
import type { Tensor } from '../s2/tensor.js';

export interface FeaturesOptions {
  model: string;
  out: string;
  /** A float32 N×C×H×W .npy; exactly one of input and image. */
  input?: string;
  /** An image file (JPEG, PNG, …), resized to `size` and normalised. */
  image?: string;
  /** S² options; none for a compiled model. */
  s2: S2Options;
  backbone?: BackboneOptions;
  /** Image: the shorter side (N) or exact H×W; default the model's input size. */
  size?: StillSize;
  /** Image: explicit normalisation; default the model's s2.mean/s2.std metadata. */
  normalization?: Normalization;
}

export interface FeaturesResult {
  out: string;
  dims: number[];
  outputShape: 'bnc' | 'bchw';
  numPrefixToken: number;
  compiled: boolean;
}

/** Features with a NaN or Inf are not written: from a finite input they mean the model is broken. */
function finiteOutput(t: Tensor, model: string): Tensor {
  const bad = t.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new UserError(`${model}: produced a non-finite feature (${t.data[bad]} at flat index ${bad}) from a finite input; nothing written`);
  return t;
}

/**
 * Reads the .npy batch, saying what to do with the usual mistakes: an image given as --input, and a channels-last
 * (N×H×W×C, OpenCV's and PIL's order) array, which would otherwise read as C = H channels of H×C pixels.
 */
export function readInputBatch(file: string, modelChannels: number | undefined): Tensor {
  let input: Tensor;
  try {
    input = readNpy(file);
  } catch (e) {
    if (e instanceof UserError && /\(bad magic\)$/.test(e.message)) throw new UserError(`${e.message}; for an image file (JPEG, PNG, …) use --image ${file}`);
    throw e;
  }
  const d = input.dims;
  if (d.length !== 4) throw new UserError(`${file}: expected a 4-D float32 N×C×H×W array, got shape (${d.join(', ')})`);
  if (d.some((x) => x === 0)) throw new UserError(`${file}: empty array, shape (${d.join(', ')}): nothing to compute`);
  const channelsLike = (c: number) => (modelChannels !== undefined ? c === modelChannels : c === 1 || c === 3 || c === 4);
  if (channelsLike(d[3]) && !channelsLike(d[1]))
    throw new UserError(
      `${file}: shape (${d.join(', ')}) looks channels-last (N×H×W×C, ${d[3]} channels); the input must be N×C×H×W: save x.transpose(0, 3, 1, 2)`,
    );
  const bad = input.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new UserError(`${file}: value ${bad} (flat index) is ${input.data[bad]}; the input must be finite`);
  return input;
}

/** Runs the batch or image through the model and writes the features to `o.out`. */
export async function computeFeatures(o: FeaturesOptions): Promise<FeaturesResult> {
  if ((o.input === undefined) === (o.image === undefined)) throw new UserError('features: give exactly one of --input x.npy or --image photo.jpg');
  const backbone = await OnnxBackbone.load(o.model, o.backbone ?? {});
  try {
    const compiled = compiledInfo(backbone.metadata, o.model);
    if (compiled) {
      if (compiledResize(compiled) === 'native') {
        throw new UserError(
          `features: ${o.model} takes one image per scale (compiled with --resize native); features feeds one base image: compile it without --resize native, or run it in the node with image.resize native`,
        );
      }
      const given = Object.entries(o.s2).find(([, v]) => v !== undefined);
      // The option's name is spelled as the user wrote it by the caller (renameS2Options): --max-split-size, s2.max_split_size.
      if (given) throw new S2OptionError(`features: ${o.model} is a compiled S² model (its S² options are built in); drop ${given[0]}`);
    } else if (o.s2.scales === undefined && o.s2.imgSizes === undefined) {
      throw new S2OptionError('features: one of scales or imgSizes is required');
    }
    let input: Tensor;
    if (o.input !== undefined) input = readInputBatch(o.input, compiled ? compiled.channels : backbone.inputChannels);
    else {
      const size = o.size ?? (compiled ? compiled.inputSize : backbone.nativeSize);
      input = await loadStillImage(o.image as string, size, o.normalization ?? modelNormalization(backbone.metadata, o.model));
    }
    if (compiled) {
      const engine = CompiledS2.of(backbone);
      engine.assertInput(input.dims, o.input ?? (o.image as string));
      const out = await engine.forward(input);
      writeNpy(o.out, finiteOutput(out, o.model));
      return { out: o.out, dims: out.dims, outputShape: compiled.outputShape, numPrefixToken: compiled.numPrefixToken, compiled: true };
    }
    const { options: resolved } = await resolveS2Options(backbone, o.s2, input.dims);
    const out = await multiscaleForward(backbone, input, resolved);
    writeNpy(o.out, finiteOutput(out, o.model));
    return { out: o.out, dims: out.dims, outputShape: resolved.outputShape ?? 'bnc', numPrefixToken: resolved.numPrefixToken ?? 0, compiled: false };
  } finally {
    await backbone.release();
  }
}

function modelNormalization(metadata: Record<string, string>, model: string): Normalization {
  if (metadata['s2.mean'] && metadata['s2.std']) {
    return { mean: parseTriple(metadata['s2.mean'], `${model} metadata s2.mean`), std: parseTriple(metadata['s2.std'], `${model} metadata s2.std`) };
  }
  throw new UserError(`${model} has no s2.mean/s2.std metadata: pass --preset imagenet|clip|none or --mean/--std`);
}
