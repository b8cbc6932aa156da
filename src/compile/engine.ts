// Running a compiled S² model: one onnxruntime call per batch (base images, or with resize 'native' each scale's
// images), and the check that it computes what the JavaScript engine (multiscaleForward over the plain backbone)
// computes from the same inputs.
import { ModelError, OnnxBackbone, type BackboneOptions } from '../backbone/onnx-backbone.js';
import { multiscaleForward } from '../s2/multiscale.js';
import type { S2Options } from '../s2/plan.js';
import type { Tensor } from '../s2/tensor.js';
import { compiledInfo, compiledResize, type CompiledInfo } from './compile.js';
import { scaleInputName, type CompiledResize } from './s2-graph.js';
import { quantizationInfo, type QuantizationInfo } from './quantization.js';

export class CompiledS2 {
  private constructor(
    readonly model: OnnxBackbone,
    readonly info: CompiledInfo,
    /** The INT8 description (scripts/quantize_int8.py), undefined for a float model. */
    readonly quantization: QuantizationInfo | undefined,
  ) {}

  /** Wraps a loaded model; throws a one-line error when it is not a compiled S² model. */
  static of(model: OnnxBackbone): CompiledS2 {
    const info = compiledInfo(model.metadata, model.file);
    if (!info) throw new ModelError(`${model.file}: not a compiled S² model (no ${'s2.compiled'} metadata)`);
    return new CompiledS2(model, info, quantizationInfo(model.metadata, model.file));
  }

  static async load(file: string, options: BackboneOptions = {}): Promise<CompiledS2> {
    const model = await OnnxBackbone.load(file, options);
    try {
      return CompiledS2.of(model);
    } catch (e) {
      await model.release();
      throw e;
    }
  }

  static async fromBytes(bytes: Uint8Array, name: string, options: BackboneOptions = {}): Promise<CompiledS2> {
    const model = await OnnxBackbone.fromBytes(bytes, name, options);
    try {
      return CompiledS2.of(model);
    } catch (e) {
      await model.release();
      throw e;
    }
  }

  /** 'reference': the model resizes every scale from the base image; 'native': it takes each scale's image. */
  get resize(): CompiledResize {
    return compiledResize(this.info);
  }

  /** Checks that a base-image batch fits the compiled input (any batch, fixed channels and size). */
  assertInput(dims: readonly number[], what: string): void {
    const [h, w] = this.info.inputSize;
    const c = this.info.channels;
    if (dims.length !== 4 || dims[1] !== c || dims[2] !== h || dims[3] !== w || dims[0] < 1) {
      throw new ModelError(`${what} is [${dims.join(', ')}]; the compiled model ${this.model.file} takes B×${c}×${h}×${w}`);
    }
  }

  /** Checks per-scale images against a 'native' model's inputs: one B×C×h×w batch per scale, at its size. */
  assertScales(scales: readonly Tensor[] | undefined, batch: number): asserts scales is readonly Tensor[] {
    const sizes = this.info.scales.map((s) => s.size);
    const wanted = sizes.map(([h, w]) => `${batch}×${this.info.channels}×${h}×${w}`).join(', ');
    if (scales === undefined || scales.length !== sizes.length) {
      throw new ModelError(`the compiled model ${this.model.file} takes one image batch per scale (${wanted}); ${scales?.length ?? 0} given`);
    }
    scales.forEach((t, i) => {
      const d = t.dims;
      if (d.length !== 4 || d[0] !== batch || d[1] !== this.info.channels || d[2] !== sizes[i][0] || d[3] !== sizes[i][1]) {
        throw new ModelError(`scale ${i} image is [${d.join(', ')}]; the compiled model ${this.model.file} takes ${wanted}`);
      }
    });
  }

  /**
   * S² features in one onnxruntime call: of a B×C×H×W base batch, or for a 'native' model of `scales` (one B×C×h×w
   * batch per scale; the base batch only gives B). Input buffers may be handed to the worker.
   */
  async forward(input: Tensor, scales?: readonly Tensor[]): Promise<Tensor> {
    this.assertInput(input.dims, 'input');
    if (this.resize === 'reference') return this.model.forward(input);
    this.assertScales(scales, input.dims[0]);
    return this.model.runFeeds(Object.fromEntries(scales.map((t, i) => [scaleInputName(i), t])));
  }

  release(): Promise<void> {
    return this.model.release();
  }
}

export interface CheckResult {
  maxError: number;
  rms: number;
  /** The acceptance bound, rel × RMS of the JavaScript engine's output. */
  bound: number;
  ok: boolean;
}

/** A reproducible pseudo-random batch in [-2, 2). */
export function randomBatch(dims: number[], seed = 1234567): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s / 4294967296 - 0.5) * 4;
  }
  return { dims, data };
}

/**
 * Runs the compiled model and the JavaScript engine (over `backbone`, the plain model) on one random batch and
 * compares them: max |difference| ≤ rel × RMS of the JavaScript output. For a 'native' model the batch is random
 * images per scale, which both engines take as the scales' images (multiscaleForward's `scaleImages`).
 */
export async function checkCompiled(compiled: CompiledS2, backbone: OnnxBackbone, options: S2Options, batch: number, rel = 1e-4): Promise<CheckResult> {
  const [h, w] = compiled.info.inputSize;
  const c = compiled.info.channels;
  const input = randomBatch([batch, c, h, w]);
  const scales = compiled.resize === 'native' ? compiled.info.scales.map((s, i) => randomBatch([batch, c, s.size[0], s.size[1]], 7654321 + i)) : undefined;
  const reference = await multiscaleForward(backbone, input, options, undefined, scales);
  const copy = (t: Tensor): Tensor => ({ dims: t.dims, data: t.data.slice() });
  const got = await compiled.forward(copy(input), scales?.map(copy));
  if (got.dims.join(',') !== reference.dims.join(',')) {
    return { maxError: Infinity, rms: 0, bound: 0, ok: false };
  }
  let maxError = 0;
  let ss = 0;
  for (let i = 0; i < got.data.length; i++) {
    maxError = Math.max(maxError, Math.abs(got.data[i] - reference.data[i]));
    ss += reference.data[i] * reference.data[i];
  }
  const rms = Math.sqrt(ss / reference.data.length);
  const bound = rel * rms;
  return { maxError, rms, bound, ok: maxError <= bound && Number.isFinite(maxError) };
}
