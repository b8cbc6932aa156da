// ONNX pieces the TypeScript heads share: raw channel-major features to normalised maps, a spatial softmax's
// expected cell positions, and the MlpWeights network (two ReLU layers and a linear one).
import type { OnnxGraph } from '../onnx/builder.js';
import { gridPositions, type MlpWeights } from './train.js';

const EPS = 1e-8;

/** 'features' [B, C·H·W] raw → [B, C, H, W] with each channel standardised: (x − mean)·1/(std + ε). */
export function normalisedMaps(
  g: OnnxGraph,
  features: string,
  p: { channels: number; height: number; width: number; mean: Float32Array; std: Float32Array },
  prefix: string,
): string {
  const C = p.channels;
  const maps = g.op('Reshape', [features, g.ints([-1, C, p.height, p.width])]);
  const inv = Float32Array.from(p.std, (s) => 1 / (s + EPS));
  return g.op('Mul', [g.op('Sub', [maps, g.weight(`${prefix}.mean`, [1, C, 1, 1], p.mean)]), g.weight(`${prefix}.inv_std`, [1, C, 1, 1], inv)]);
}

/** Score maps [B, K, L] (any leading shape reshaped) → softmax over the L = H·W cells → expected positions [B, K, 2] in [-1, 1]. */
export function spatialSoftmaxGraph(g: OnnxGraph, scores: string, keypoints: number, height: number, width: number, prefix: string, outName?: string): string {
  const L = height * width;
  const probs = g.op('Softmax', [g.op('Reshape', [scores, g.ints([-1, keypoints, L])])], { axis: -1 });
  return g.op('MatMul', [probs, g.weight(`${prefix}.positions`, [L, 2], gridPositions(height, width))], {}, outName);
}

/** The MlpWeights network on z [B, inDim]: ReLU(z·w1 + b1) → ReLU(·w2 + b2) → ·w3 + b3, [B, outDim]. */
export function mlpGraph(g: OnnxGraph, z: string, p: MlpWeights, inDim: number, hidden: number, outDim: number, prefix: string): string {
  const layer = (x: string, w: Float32Array, b: Float32Array, n: number, k: number, name: string) =>
    g.op('Add', [g.op('MatMul', [x, g.weight(`${name}.weight`, [n, k], w)]), g.weight(`${name}.bias`, [k], b)]);
  const h1 = g.op('Relu', [layer(z, p.w1, p.b1, inDim, hidden, `${prefix}.0`)]);
  const h2 = g.op('Relu', [layer(h1, p.w2, p.b2, hidden, hidden, `${prefix}.1`)]);
  return layer(h2, p.w3, p.b3, hidden, outDim, `${prefix}.2`);
}
