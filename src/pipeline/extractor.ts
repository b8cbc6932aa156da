// From camera frames to per-camera feature vectors: ingestion (sharp), one batched S² pass over all cameras,
// and pooling (cls | mean | grid:K | tokens). Built once from the config, warmed up before the first frame.
import { OnnxBackbone } from '../backbone/onnx-backbone.js';
import { resolveS2Options } from '../backbone/resolve.js';
import { pair, type Config } from '../config/config.js';
import { UserError } from '../errors.js';
import { createIngester, type Ingester, type IngestResult } from '../image/ingest.js';
import type { CompressedImageMsg, ImageMsg } from '../msgs/types.js';
import type { CameraFrame } from './operators.js';
import { presetNormalization, type Normalization } from '../image/normalize.js';
import { areaResize } from '../s2/pool.js';
import { multiscaleForward, type S2Timings } from '../s2/multiscale.js';
import type { S2Options, S2Plan } from '../s2/plan.js';
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

export class FeatureExtractor {
  readonly timings: S2Timings = { resizeMs: 0, inferenceMs: 0, mergeMs: 0, crops: 0, calls: 0 };

  private constructor(
    readonly backbone: OnnxBackbone,
    readonly ingester: Ingester,
    readonly options: S2Options,
    readonly plan: S2Plan,
    readonly layout: FeatureLayout,
    readonly pooling: Pooling,
    readonly cameras: number,
  ) {}

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
      const { options, plan } = await resolveS2Options(backbone, s2, [cameras, 3, base[0], base[1]]);
      const norm: Normalization = typeof config.image.normalization === 'string' ? presetNormalization(config.image.normalization, 'image.normalization') : config.image.normalization;
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
      // One warm-up pass sizes every buffer and gives the layout of the output.
      const zeros: Tensor = { dims: [cameras, 3, base[0], base[1]], data: new Float32Array(cameras * 3 * base[0] * base[1]) };
      const out = await multiscaleForward(backbone, zeros, options);
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
      return new FeatureExtractor(backbone, ingester, options, plan, layout, pooling, cameras);
    } catch (e) {
      await backbone.release();
      throw e;
    }
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
    const out = await multiscaleForward(this.backbone, base, this.options, this.timings, scales);
    return inputs.map((_, b) => poolFeatures(out, b, this.layout, this.pooling));
  }

  /** The full S² output (unpooled) for the given inputs, for feature extraction to files. */
  async features(inputs: CameraInput[]): Promise<Tensor> {
    const base = stack(inputs.map((i) => i.base));
    const scales = inputs[0].scales ? this.plan.scales.map((_, k) => stack(inputs.map((i) => (i.scales as Tensor[])[k]))) : undefined;
    return multiscaleForward(this.backbone, base, this.options, this.timings, scales);
  }

  async release(): Promise<void> {
    await this.backbone.release();
  }
}
