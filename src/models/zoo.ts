// Deterministic, project-made ONNX backbones (a small ViT and a small ConvNet) for tests, benchmarks and demos.
// Weights come from a seeded generator, so the same options always give byte-identical files.
import { OnnxGraph } from '../onnx/builder.js';

/** mulberry32: a tiny seeded uniform generator in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uniform(rand: () => number, n: number, bound: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * bound;
  return out;
}

function around(rand: () => number, n: number, centre: number, spread: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = centre + (rand() * 2 - 1) * spread;
  return out;
}

export interface VitOptions {
  imgSize: number;
  patchSize: number;
  dim: number;
  depth: number;
  heads: number;
  mlpRatio?: number;
  /** Leading tokens before the patch grid: 1 = a CLS token, 1 + R = CLS plus R registers, 0 = none. */
  prefixTokens: number;
  /** A fixed batch size, or undefined for a dynamic batch axis. */
  batch?: number;
  seed?: number;
  /** Also emit a second output 'pooled' [B, D] (the first token, or the mean of all tokens), as many exports do. */
  pooledOutput?: boolean;
}

export interface ConvNetOptions {
  /** Output channels of each stride-2 3×3 conv stage; a 1×1 projection to `dim` follows. */
  stages: number[];
  /** Stride-1 3×3 conv + ReLU layers after each stage's stride-2 conv (0 by default). */
  extraConvs?: number;
  dim: number;
  /** Fixed input size, or undefined for dynamic height and width (fully convolutional). */
  imgSize?: number;
  batch?: number;
  seed?: number;
}

function layerNorm(g: OnnxGraph, x: string, prefix: string, dim: number, rand: () => number): string {
  const scale = g.weight(`${prefix}.weight`, [dim], around(rand, dim, 1, 0.1));
  const bias = g.weight(`${prefix}.bias`, [dim], uniform(rand, dim, 0.05));
  return g.op('LayerNormalization', [x, scale, bias], { axis: -1, epsilon: 1e-6 });
}

function linear(g: OnnxGraph, x: string, prefix: string, inDim: number, outDim: number, rand: () => number): string {
  const w = g.weight(`${prefix}.weight`, [inDim, outDim], uniform(rand, inDim * outDim, 1 / Math.sqrt(inDim)));
  const b = g.weight(`${prefix}.bias`, [outDim], uniform(rand, outDim, 0.02));
  return g.op('Add', [g.op('MatMul', [x, w]), b]);
}

function gelu(g: OnnxGraph, x: string): string {
  // Exact GELU: 0.5·x·(1 + erf(x/√2)); the Gelu op itself only exists from opset 20.
  const erf = g.op('Erf', [g.op('Div', [x, g.scalar(Math.SQRT2)])]);
  return g.op('Mul', [g.op('Mul', [x, g.op('Add', [erf, g.scalar(1)])]), g.scalar(0.5)]);
}

/** A ViT: patch conv, optional prefix tokens, learned position embedding, pre-norm blocks, final LayerNorm. */
export function buildVit(o: VitOptions): OnnxGraph {
  const { imgSize, patchSize: p, dim: d, depth, heads } = o;
  if (imgSize % p !== 0) throw new Error(`ViT imgSize ${imgSize} is not a multiple of patchSize ${p}`);
  if (d % heads !== 0) throw new Error(`ViT dim ${d} is not a multiple of heads ${heads}`);
  const rand = seededRandom(o.seed ?? 1);
  const grid = imgSize / p;
  const nTok = o.prefixTokens + grid * grid;
  const dh = d / heads;
  const hidden = Math.round(d * (o.mlpRatio ?? 2));
  const batch = o.batch ?? 'batch';
  const g = new OnnxGraph('s2_test_vit');
  g.metadata['s2.kind'] = 'vit';
  g.metadata['s2.image_size'] = String(imgSize);
  g.metadata['s2.num_prefix_tokens'] = String(o.prefixTokens);
  g.metadata['s2.mean'] = '0.485,0.456,0.406';
  g.metadata['s2.std'] = '0.229,0.224,0.225';

  const input = g.input('pixel_values', [batch, 3, imgSize, imgSize]);
  const pw = g.weight('patch.weight', [d, 3, p, p], uniform(rand, d * 3 * p * p, 1 / Math.sqrt(3 * p * p)));
  const pb = g.weight('patch.bias', [d], uniform(rand, d, 0.02));
  const conv = g.op('Conv', [input, pw, pb], { kernel_shape: [p, p], strides: [p, p] });
  let x = g.op('Transpose', [g.op('Reshape', [conv, g.ints([0, d, -1])])], { perm: [0, 2, 1] });
  if (o.prefixTokens > 0) {
    const prefix = g.weight('prefix', [1, o.prefixTokens, d], uniform(rand, o.prefixTokens * d, 1));
    const batchDim = g.op('Slice', [g.op('Shape', [input]), g.ints([0]), g.ints([1])]);
    const shape = g.op('Concat', [batchDim, g.ints([o.prefixTokens, d])], { axis: 0 });
    x = g.op('Concat', [g.op('Expand', [prefix, shape]), x], { axis: 1 });
  }
  x = g.op('Add', [x, g.weight('pos', [1, nTok, d], uniform(rand, nTok * d, 0.5))]);

  for (let i = 0; i < depth; i++) {
    const b = `blocks.${i}`;
    const h = layerNorm(g, x, `${b}.ln1`, d, rand);
    const qkv = linear(g, h, `${b}.attn.qkv`, d, 3 * d, rand);
    const split = g.op('Transpose', [g.op('Reshape', [qkv, g.ints([0, 0, 3, heads, dh])])], { perm: [2, 0, 3, 1, 4] });
    const q = g.op('Gather', [split, g.ints([0], [])], { axis: 0 });
    const k = g.op('Gather', [split, g.ints([1], [])], { axis: 0 });
    const v = g.op('Gather', [split, g.ints([2], [])], { axis: 0 });
    const scores = g.op('Mul', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]), g.scalar(1 / Math.sqrt(dh))]);
    const att = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
    const merged = g.op('Reshape', [g.op('Transpose', [att], { perm: [0, 2, 1, 3] }), g.ints([0, 0, d])]);
    x = g.op('Add', [x, linear(g, merged, `${b}.attn.proj`, d, d, rand)]);
    const h2 = layerNorm(g, x, `${b}.ln2`, d, rand);
    const mlp = linear(g, gelu(g, linear(g, h2, `${b}.mlp.fc1`, d, hidden, rand)), `${b}.mlp.fc2`, hidden, d, rand);
    x = g.op('Add', [x, mlp]);
  }
  const out = layerNorm(g, x, 'norm', d, rand);
  g.op('Identity', [out], {}, 'features');
  g.output('features', [batch, nTok, d]);
  if (o.pooledOutput) {
    const pooled = o.prefixTokens > 0 ? g.op('Gather', [out, g.ints([0], [])], { axis: 1 }) : g.op('ReduceMean', [out, g.ints([1])], { keepdims: 0 });
    g.op('Identity', [pooled], {}, 'pooled');
    g.output('pooled', [batch, d]);
  }
  return g;
}

/** A ConvNet: stride-2 3×3 conv + ReLU stages and a 1×1 projection; output B×dim×(H/2^s)×(W/2^s). */
export function buildConvNet(o: ConvNetOptions): OnnxGraph {
  const rand = seededRandom(o.seed ?? 2);
  const g = new OnnxGraph('s2_test_convnet');
  g.metadata['s2.kind'] = 'convnet';
  if (o.imgSize !== undefined) g.metadata['s2.image_size'] = String(o.imgSize);
  g.metadata['s2.mean'] = '0.485,0.456,0.406';
  g.metadata['s2.std'] = '0.229,0.224,0.225';
  const batch = o.batch ?? 'batch';
  const h = o.imgSize ?? 'height';
  const w = o.imgSize ?? 'width';
  let x = g.input('pixel_values', [batch, 3, h, w]);
  let cin = 3;
  o.stages.forEach((cout, i) => {
    const wt = g.weight(`stages.${i}.weight`, [cout, cin, 3, 3], uniform(rand, cout * cin * 9, 1.5 / Math.sqrt(cin * 9)));
    const b = g.weight(`stages.${i}.bias`, [cout], uniform(rand, cout, 0.05));
    x = g.op('Relu', [g.op('Conv', [x, wt, b], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })]);
    for (let k = 0; k < (o.extraConvs ?? 0); k++) {
      const we = g.weight(`stages.${i}.extra${k}.weight`, [cout, cout, 3, 3], uniform(rand, cout * cout * 9, 1.5 / Math.sqrt(cout * 9)));
      const be = g.weight(`stages.${i}.extra${k}.bias`, [cout], uniform(rand, cout, 0.05));
      x = g.op('Relu', [g.op('Conv', [x, we, be], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })]);
    }
    cin = cout;
  });
  const pw = g.weight('proj.weight', [o.dim, cin, 1, 1], uniform(rand, o.dim * cin, 1 / Math.sqrt(cin)));
  const pb = g.weight('proj.bias', [o.dim], uniform(rand, o.dim, 0.02));
  g.op('Conv', [x, pw, pb], { kernel_shape: [1, 1] }, 'features');
  const down = 2 ** o.stages.length;
  const oh = typeof h === 'number' ? Math.ceil(h / down) : 'out_height';
  const ow = typeof w === 'number' ? Math.ceil(w / down) : 'out_width';
  g.output('features', [batch, o.dim, oh, ow]);
  return g;
}

/** Named presets used by tests, benchmarks and demos. */
export const PRESETS = {
  /** Test ViT: 32-pixel crops, 8-pixel patches (4×4 grid), one CLS token. */
  'vit-tiny': (): OnnxGraph => buildVit({ imgSize: 32, patchSize: 8, dim: 24, depth: 2, heads: 2, prefixTokens: 1, pooledOutput: true }),
  /** The same ViT without prefix tokens (SigLIP-like). */
  'vit-tiny-noprefix': (): OnnxGraph => buildVit({ imgSize: 32, patchSize: 8, dim: 24, depth: 2, heads: 2, prefixTokens: 0, seed: 3 }),
  /** A ViT with a CLS token and 4 registers (DINOv2-reg-like). */
  'vit-tiny-reg': (): OnnxGraph => buildVit({ imgSize: 32, patchSize: 8, dim: 24, depth: 1, heads: 2, prefixTokens: 5, seed: 4 }),
  /** The test ViT with a fixed batch of 1, as some exports have. */
  'vit-tiny-b1': (): OnnxGraph => buildVit({ imgSize: 32, patchSize: 8, dim: 24, depth: 2, heads: 2, prefixTokens: 1, batch: 1 }),
  /** Test ConvNet: fully convolutional, stride 4, any input size. */
  'convnet-tiny': (): OnnxGraph => buildConvNet({ stages: [8, 16], dim: 12 }),
  /** Small benchmark ViT: 224-pixel crops, 16-pixel patches (14×14 grid), ViT-Ti width, 4 blocks. */
  'vit-bench': (): OnnxGraph => buildVit({ imgSize: 224, patchSize: 16, dim: 192, depth: 4, heads: 3, mlpRatio: 4, prefixTokens: 1, seed: 5 }),
  /** Small benchmark ConvNet: 224-pixel crops, stride 16, 192 channels. */
  'convnet-bench': (): OnnxGraph => buildConvNet({ stages: [32, 64, 128, 192], dim: 192, imgSize: 224, seed: 6 }),
  /** ViT-S/16-sized benchmark ViT (384 wide, 12 blocks, 6 heads; random weights): the compute of a real small backbone. */
  'vit-s16-bench': (): OnnxGraph => buildVit({ imgSize: 224, patchSize: 16, dim: 384, depth: 12, heads: 6, mlpRatio: 4, prefixTokens: 1, seed: 7 }),
  /** ResNet-18-sized benchmark ConvNet (64…512 channels, two 3×3 convs per stage, stride 16; random weights). */
  'convnet-r18-bench': (): OnnxGraph => buildConvNet({ stages: [64, 128, 256, 512], extraConvs: 1, dim: 512, imgSize: 224, seed: 8 }),
} as const;

export type PresetName = keyof typeof PRESETS;

export function isPresetName(name: string): name is PresetName {
  return Object.prototype.hasOwnProperty.call(PRESETS, name);
}
