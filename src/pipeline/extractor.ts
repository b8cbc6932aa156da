// From camera frames to per-camera feature vectors: ingestion (sharp), one batched S² pass over all cameras,
// and pooling (cls | mean | grid:K | tokens). Built once from the config, warmed up before the first frame.
import { ModelError, OnnxBackbone } from '../backbone/onnx-backbone.js';
import { compileLoaded, compiledInfo, compiledResize, type CompiledInfo } from '../compile/compile.js';
import { quantizationLine, quantizationWarning } from '../compile/quantization.js';
import { CompiledS2, checkCompiled } from '../compile/engine.js';
import { resolveS2Options } from '../backbone/resolve.js';
import { pair, type Config } from '../config/config.js';
import { UserError } from '../errors.js';
import { createIngester, type Ingester, type IngestResult } from '../image/ingest.js';
import type { CompressedImageMsg, ImageMsg } from '../msgs/types.js';
import type { CameraFrame } from './operators.js';
import { presetNormalization, type Normalization } from '../image/normalize.js';
import { areaResize } from '../s2/pool.js';
import { multiscaleForward, type S2Timings } from '../s2/multiscale.js';
import { planScales, type S2Options, type S2Plan } from '../s2/plan.js';
import type { Tensor } from '../s2/tensor.js';

export type Pooling = { kind: 'cls' } | { kind: 'mean' } | { kind: 'tokens' } | { kind: 'grid'; k: number };

export function parsePooling(text: string): Pooling {
  if (text === 'cls' || text === 'mean' || text === 'tokens') return { kind: text };
  const m = /^grid:([1-9][0-9]*)$/.exec(text);
  if (!m) throw new UserError(`features.pool: expected cls, mean, tokens or grid:K, got '${text}'`);
  return { kind: 'grid', k: Number(m[1]) };
}

/** What one S² feature map holds: the fields of an S2Features message besides the data. */
export interface FeatureLayout {
  scaleSizes: [number, number][];
  numPrefixTokens: number;
  gridHeight: number;
  gridWidth: number;
  channels: number;
  outputShape: 'bnc' | 'bchw';
  pooling: string;
  /** Values per camera after pooling. */
  perCamera: number;
}

/** Ingested inputs of one camera frame: the base tensor and, with resize 'native', one tensor per scale. */
export interface CameraInput {
  base: Tensor;
  scales?: Tensor[];
}

const zeros = (dims: number[]): Tensor => ({ dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) });

function stack(tensors: Tensor[]): Tensor {
  const [, c, h, w] = tensors[0].dims;
  const per = c * h * w;
  const data = new Float32Array(tensors.length * per);
  tensors.forEach((t, i) => data.set(t.data, i * per));
  return { dims: [tensors.length, c, h, w], data };
}

/** Pools camera b's part of an S² output into one vector. */
export function poolFeatures(out: Tensor, b: number, layout: Pick<FeatureLayout, 'numPrefixTokens' | 'outputShape'>, pooling: Pooling): Float32Array {
  if (layout.outputShape === 'bnc') {
    const [, n, c] = out.dims;
    const p = layout.numPrefixTokens;
    const base = b * n * c;
    const s = out.data;
    switch (pooling.kind) {
      case 'cls':
        return s.slice(base, base + c);
      case 'tokens':
        return s.slice(base, base + n * c);
      case 'mean': {
        const acc = new Float64Array(c);
        for (let t = p; t < n; t++) for (let k = 0; k < c; k++) acc[k] += s[base + t * c + k];
        return Float32Array.from(acc, (v) => v / (n - p));
      }
      case 'grid': {
        const side = Math.round(Math.sqrt(n - p));
        // Spatial tokens as a 1×C×h×w map, pooled, then back to K·K tokens of C.
        const map = new Float32Array(c * (n - p));
        for (let t = 0; t < n - p; t++) for (let k = 0; k < c; k++) map[k * (n - p) + t] = s[base + (p + t) * c + k];
        const pooled = areaResize({ dims: [1, c, side, (n - p) / side], data: map }, pooling.k, pooling.k).data;
        const kk = pooling.k * pooling.k;
        const outv = new Float32Array(kk * c);
        for (let t = 0; t < kk; t++) for (let k = 0; k < c; k++) outv[t * c + k] = pooled[k * kk + t];
        return outv;
      }
    }
  }
  const [, c, h, w] = out.dims;
  const hw = h * w;
  const plane = out.data.subarray(b * c * hw, (b + 1) * c * hw);
  switch (pooling.kind) {
    case 'cls':
      throw new UserError("features.pool: 'cls' needs a token (bnc) backbone output");
    case 'tokens':
      return plane.slice();
    case 'mean': {
      const v = new Float32Array(c);
      for (let k = 0; k < c; k++) {
        let sum = 0;
        for (let i = 0; i < hw; i++) sum += plane[k * hw + i];
        v[k] = sum / hw;
      }
      return v;
    }
    case 'grid':
      return areaResize({ dims: [1, c, h, w], data: plane }, pooling.k, pooling.k).data;
  }
}

/** A line worth logging at start-up, not an error: 'info', or 'warn' for what the user should look at. */
export interface StartupNote {
  level: 'info' | 'warn';
  text: string;
}

export class FeatureExtractor {
  readonly timings: S2Timings = { resizeMs: 0, inferenceMs: 0, mergeMs: 0, crops: 0, calls: 0 };

  /** The plain backbone session: the JavaScript engine's (with s2.engine compiled it is released after the start-up check). */
  private js?: OnnxBackbone;

  private constructor(
    backbone: OnnxBackbone,
    /** With s2.engine compiled: the S² model built from the backbone at start-up, one onnxruntime call per group. */
    readonly compiled: CompiledS2 | undefined,
    readonly ingester: Ingester,
    readonly options: S2Options,
    readonly plan: S2Plan,
    readonly layout: FeatureLayout,
    readonly pooling: Pooling,
    readonly cameras: number,
    /** Start-up lines for the log: what a given compiled model is (an INT8 one's record) and what was not checked. */
    readonly notes: StartupNote[] = [],
  ) {
    if (!compiled) this.js = backbone;
  }

  /** 'compiled' (S² inside one ONNX model) or 'js' (multiscaleForward over the backbone). */
  get engine(): 'compiled' | 'js' {
    return this.compiled ? 'compiled' : 'js';
  }

  static async create(config: Config): Promise<FeatureExtractor> {
    const backbone = await OnnxBackbone.load(config.backbone.model, {
      threads: config.backbone.threads,
      executionProviders: config.backbone.providers,
      inputName: config.backbone.input_name,
      outputName: config.backbone.output_name,
      outputShape: config.s2.output_shape,
      numPrefixToken: config.s2.num_prefix_token,
    });
    try {
      const given = compiledInfo(backbone.metadata, config.backbone.model);
      const base = pair(config.image.base_size);
      const cameras = config.cameras.length;
      const s2: S2Options = {
        scales: config.s2.scales,
        imgSizes: config.s2.img_sizes,
        maxSplitSize: config.s2.max_split_size,
        numPrefixToken: config.s2.num_prefix_token,
        outputShape: config.s2.output_shape,
        resizeOutputToIdx: config.s2.resize_output_to_idx,
        splitMode: config.s2.split_mode,
        maxBatch: config.s2.max_batch,
      };
      const notes: StartupNote[] = [];
      let compiled: CompiledS2 | undefined;
      let options: S2Options;
      let plan: S2Plan;
      if (given) {
        // A compiled S² model (s2-policy compile, scripts/quantize_int8.py) runs as it is, when it was compiled for
        // what this config asks; its S² options are the ones built in.
        options = { ...s2, outputShape: given.outputShape, numPrefixToken: given.numPrefixToken };
        plan = planScales([cameras, 3, base[0], base[1]], options);
        checkGivenCompiled(config, given, plan, backbone.fixedBatch);
        compiled = CompiledS2.of(backbone);
        notes.push(...givenCompiledNotes(compiled, config.backbone.model));
      } else ({ options, plan } = await resolveS2Options(backbone, s2, [cameras, 3, base[0], base[1]]));
      const norm: Normalization =
        typeof config.image.normalization === 'string' ? presetNormalization(config.image.normalization, 'image.normalization') : config.image.normalization;
      const ingester = createIngester({
        crop: config.image.crop,
        resize: config.image.resize,
        baseSize: base,
        scaleSizes: config.image.resize === 'native' ? plan.scales.map((s) => s.size) : undefined,
        normalization: norm,
        maxPixels: config.image.max_pixels,
      });
      const pooling = parsePooling(config.features.pool);
      if (pooling.kind === 'cls' && (options.outputShape !== 'bnc' || (options.numPrefixToken ?? 0) === 0)) {
        throw new UserError(`features.pool: 'cls' needs a prefix token, and ${config.backbone.model} has none (use mean, grid:K or tokens)`);
      }
      let out: Tensor;
      if (compiled || config.s2.engine === 'compiled') {
        compiled ??= await compiledEngine(config, backbone, options, base, cameras);
        // Its self-check ran both engines: the warm-up below sizes the compiled engine's buffers.
        out = await compiled.forward(
          zeros([cameras, 3, base[0], base[1]]),
          compiled.resize === 'native' ? plan.scales.map((s) => zeros([cameras, 3, ...s.size])) : undefined,
        );
      } else {
        // One warm-up pass sizes every buffer and gives the layout of the output.
        out = await multiscaleForward(backbone, zeros([cameras, 3, base[0], base[1]]), options);
      }
      const shape = options.outputShape ?? 'bnc';
      const prefix = options.numPrefixToken ?? 0;
      const grid = shape === 'bnc' ? Math.round(Math.sqrt(out.dims[1] - prefix)) : out.dims[2];
      const partial = { numPrefixTokens: prefix, outputShape: shape };
      const layout: FeatureLayout = {
        scaleSizes: plan.scales.map((s) => s.size),
        numPrefixTokens: prefix,
        gridHeight: grid,
        gridWidth: shape === 'bnc' ? (out.dims[1] - prefix) / grid : out.dims[3],
        channels: shape === 'bnc' ? out.dims[2] : out.dims[1],
        outputShape: shape,
        pooling: config.features.pool,
        perCamera: poolFeatures(out, 0, partial, pooling).length,
      };
      // The plain backbone's session is not needed after the start-up check (a given compiled model is its own).
      if (compiled && compiled.model !== backbone) await backbone.release();
      return new FeatureExtractor(backbone, compiled, ingester, options, plan, layout, pooling, cameras, notes);
    } catch (e) {
      await backbone.release();
      throw e;
    }
  }

  /** The S² output of a stacked batch with either engine; timings filled in. */
  private async forwardS2(base: Tensor, scales: Tensor[] | undefined): Promise<Tensor> {
    if (this.js) return multiscaleForward(this.js, base, this.options, this.timings, scales);
    const compiled = this.compiled as CompiledS2;
    const t = performance.now();
    const out = await compiled.forward(base, scales);
    // Resize, split, merge and pooling run inside the one call: all of it counts as inference here.
    this.timings.resizeMs = 0;
    this.timings.inferenceMs = performance.now() - t;
    this.timings.mergeMs = 0;
    this.timings.crops = this.plan.scales.reduce((n, s) => n + s.numSplit[0] * s.numSplit[1], 0) * base.dims[0];
    this.timings.calls = 1;
    return out;
  }

  /** Ingests one camera frame, raw or compressed (never throws; a bad frame is a rejection). */
  ingestFrame(f: CameraFrame): Promise<IngestResult> {
    return f.kind === 'raw' ? this.ingester.ingest(f.msg as ImageMsg, 'raw') : this.ingester.ingest(f.msg as CompressedImageMsg, 'compressed');
  }

  /** S² over all cameras in one pass (one backbone call when the model allows), pooled per camera. */
  async extract(inputs: CameraInput[]): Promise<Float32Array[]> {
    if (inputs.length !== this.cameras) throw new Error(`expected ${this.cameras} camera inputs, got ${inputs.length}`);
    const base = stack(inputs.map((i) => i.base));
    const scales = inputs[0].scales ? this.plan.scales.map((_, k) => stack(inputs.map((i) => (i.scales as Tensor[])[k]))) : undefined;
    const out = await this.forwardS2(base, scales);
    return inputs.map((_, b) => poolFeatures(out, b, this.layout, this.pooling));
  }

  /** The full S² output (unpooled) for the given inputs, for feature extraction to files. */
  async features(inputs: CameraInput[]): Promise<Tensor> {
    const base = stack(inputs.map((i) => i.base));
    const scales = inputs[0].scales ? this.plan.scales.map((_, k) => stack(inputs.map((i) => (i.scales as Tensor[])[k]))) : undefined;
    return this.forwardS2(base, scales);
  }

  async release(): Promise<void> {
    await this.js?.release();
    await this.compiled?.release();
  }
}

/**
 * Compiles the backbone with the resolved S² options for `cameras` base images (with image.resize 'native', for the
 * ingester's per-scale images), loads the result, and checks it against the JavaScript engine on a random input of
 * the same kind (max error ≤ 1e-4 × RMS); a mismatch is an error.
 */
async function compiledEngine(config: Config, backbone: OnnxBackbone, options: S2Options, base: [number, number], cameras: number): Promise<CompiledS2> {
  const model = config.backbone.model;
  if (config.s2.max_batch !== undefined)
    throw new UserError("s2.max_batch: not used by s2.engine 'compiled' (all crops of a size go in one pass); remove it or set s2.engine 'js'");
  if (backbone.fixedBatch !== undefined) {
    throw new UserError(
      `s2.engine: ${model} has a fixed batch of ${backbone.fixedBatch}, which 'compiled' cannot batch crops through; set s2.engine 'js' or re-export the backbone with a dynamic batch`,
    );
  }
  const { bytes } = await compileLoaded(backbone, options, base, config.image.resize);
  const compiled = await CompiledS2.fromBytes(bytes, `${model} (compiled S²)`, {
    threads: config.backbone.threads,
    executionProviders: config.backbone.providers,
  });
  try {
    const r = await checkCompiled(compiled, backbone, options, cameras);
    if (!r.ok) {
      throw new ModelError(
        `${model}: the compiled S² engine differs from the JavaScript engine on a random input (max error ${r.maxError.toExponential(3)} > 1e-4 × RMS = ${r.bound.toExponential(3)}); set s2.engine 'js'`,
      );
    }
    return compiled;
  } catch (e) {
    await compiled.release();
    throw e;
  }
}

const sizeText = (s: readonly number[]): string => `${s[0]}x${s[1]}`;
const sizesText = (ss: readonly (readonly number[])[]): string => ss.map(sizeText).join(',');

/**
 * Refuses a compiled S² model given as backbone.model that was compiled for other settings than the config asks: one
 * line naming the config key, the config's value and the model's.
 */
function checkGivenCompiled(config: Config, info: CompiledInfo, plan: S2Plan, fixedBatch: number | undefined): void {
  const file = config.backbone.model;
  const fail = (key: string, want: string, has: string): never => {
    throw new UserError(`${key}: ${want}, but ${file} is a compiled S² model built for ${has} (compile it again for this config, or give the plain backbone)`);
  };
  if (config.s2.engine === 'js') {
    throw new UserError(
      `s2.engine: 'js' runs S² around the plain backbone, and backbone.model ${file} is a compiled S² model; set s2.engine 'compiled' or give the plain backbone`,
    );
  }
  if (config.s2.max_batch !== undefined) fail('s2.max_batch', `${config.s2.max_batch}`, 'all crops of a size in one pass (remove s2.max_batch)');
  const resize = compiledResize(info);
  if (config.image.resize !== resize) {
    fail('image.resize', config.image.resize, resize === 'native' ? 'native (one input per scale)' : 'reference (one base image input)');
  }
  if (info.channels !== plan.channels) fail('backbone.model', `the ingester makes ${plan.channels}-channel images`, `${info.channels}-channel images`);
  if (plan.inputSize[0] !== info.inputSize[0] || plan.inputSize[1] !== info.inputSize[1]) {
    fail('image.base_size', sizeText(plan.inputSize), `base images of ${sizeText(info.inputSize)}`);
  }
  if (config.s2.output_shape !== undefined && config.s2.output_shape !== info.outputShape) fail('s2.output_shape', config.s2.output_shape, info.outputShape);
  if (config.s2.num_prefix_token !== undefined && config.s2.num_prefix_token !== info.numPrefixToken) {
    fail('s2.num_prefix_token', `${config.s2.num_prefix_token}`, `${info.numPrefixToken} prefix tokens`);
  }
  const sizes = plan.scales.map((s) => s.size);
  const built = info.scales.map((s) => s.size);
  if (sizesText(sizes) !== sizesText(built)) {
    fail(config.s2.img_sizes !== undefined ? 's2.img_sizes' : 's2.scales', `scale sizes ${sizesText(sizes)}`, `scale sizes ${sizesText(built)}`);
  }
  if (plan.maxSplitSize !== info.maxSplitSize) fail('s2.max_split_size', `${plan.maxSplitSize}`, `max split size ${info.maxSplitSize}`);
  if ((plan.splitMode ?? null) !== info.splitMode) {
    const mode = (m: string | null | undefined) => m ?? 'none (square equal crops)';
    fail('s2.split_mode', mode(plan.splitMode), `split mode ${mode(info.splitMode)}`);
  }
  if (plan.resizeOutputToIdx !== info.resizeOutputToIdx)
    fail('s2.resize_output_to_idx', `${plan.resizeOutputToIdx}`, `pooling to scale ${info.resizeOutputToIdx}`);
  // What the options above fix, checked too, so that no other planner difference slips through.
  plan.scales.forEach((s, i) => {
    const b = info.scales[i];
    if (sizesText([s.numSplit, s.splitSize, s.cropSize]) !== sizesText([b.numSplit, b.splitSize, b.cropSize])) {
      fail(
        's2.max_split_size',
        `scale ${i} in ${s.numSplit[0]}x${s.numSplit[1]} crops of ${sizeText(s.cropSize)}`,
        `${b.numSplit[0]}x${b.numSplit[1]} crops of ${sizeText(b.cropSize)}`,
      );
    }
  });
  if (fixedBatch !== undefined && fixedBatch !== plan.batch) fail('cameras', `${plan.batch} camera(s) in one batch`, `a fixed batch of ${fixedBatch}`);
}

/** What the log says of a compiled model given as backbone.model: what it is, and what start-up could not check. */
function givenCompiledNotes(m: CompiledS2, file: string): StartupNote[] {
  const q = m.quantization;
  if (!q) {
    return [
      {
        level: 'info',
        text: `S² engine: ${file} is a compiled S² model built for these s2/image settings; run as it is, without the start-up check against the JavaScript engine (that needs the plain backbone)`,
      },
    ];
  }
  const notes: StartupNote[] = [
    {
      level: 'info',
      text: `S² engine: ${file} is an INT8 compiled S² model built for these s2/image settings, run as it is (not compared with fp32 at start-up): ${quantizationLine(q)}`,
    },
  ];
  const warning = quantizationWarning(q, file);
  if (warning) notes.push({ level: 'warn', text: warning });
  return notes;
}
