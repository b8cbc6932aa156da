// Conversions between token sequences (B×N×C, ViT-like) and feature maps (B×C×h×w), and prefix-token handling.
import type { Tensor } from './tensor.js';

/** Splits B×(P+h·w)×C into the P prefix tokens (B×P×C) and the spatial tokens as a map B×C×h×w (h = w = √(N−P)). */
export function tokensToMap(tokens: Tensor, numPrefix: number): { prefix: Tensor; map: Tensor } {
  const [b, n, c] = tokens.dims;
  const spatial = n - numPrefix;
  const side = Math.round(Math.sqrt(spatial));
  if (spatial <= 0 || side * side !== spatial) {
    throw new Error(`backbone returned ${n} tokens; with ${numPrefix} prefix tokens the remaining ${spatial} do not form a square grid`);
  }
  const s = tokens.data;
  const prefix = new Float32Array(b * numPrefix * c);
  const map = new Float32Array(b * c * spatial);
  for (let i = 0; i < b; i++) {
    const base = i * n * c;
    prefix.set(s.subarray(base, base + numPrefix * c), i * numPrefix * c);
    const mapBase = i * c * spatial;
    for (let t = 0; t < spatial; t++) {
      const tok = base + (numPrefix + t) * c;
      for (let k = 0; k < c; k++) map[mapBase + k * spatial + t] = s[tok + k];
    }
  }
  return { prefix: { dims: [b, numPrefix, c], data: prefix }, map: { dims: [b, c, side, side], data: map } };
}

/**
 * Averages the prefix tokens of one scale over its crops: the input holds nCrops·B rows ordered crop-major
 * (the chessboard order), the output B×P×C.
 */
export function averagePrefix(prefix: Tensor, batch: number): Tensor {
  const [bb, p, c] = prefix.dims;
  const crops = bb / batch;
  const per = p * c;
  const out = new Float32Array(batch * per);
  for (let k = 0; k < crops; k++) {
    for (let i = 0; i < batch * per; i++) out[i] += prefix.data[k * batch * per + i];
  }
  for (let i = 0; i < out.length; i++) out[i] /= crops;
  return { dims: [batch, p, c], data: out };
}

/**
 * Writes the final B×(P+h·w)×(C·S) token output: the scales' averaged prefix tokens concatenated on channels,
 * then the concatenated map B×(C·S)×h×w flattened to tokens.
 */
export function assembleTokens(prefixes: Tensor[], map: Tensor): Tensor {
  const [b, c, h, w] = map.dims;
  const p = prefixes.length > 0 ? prefixes[0].dims[1] : 0;
  const n = p + h * w;
  const out = new Float32Array(b * n * c);
  for (let i = 0; i < b; i++) {
    let chOffset = 0;
    for (const pre of prefixes) {
      const pc = pre.dims[2];
      for (let t = 0; t < p; t++) {
        out.set(pre.data.subarray((i * p + t) * pc, (i * p + t + 1) * pc), (i * n + t) * c + chOffset);
      }
      chOffset += pc;
    }
    const hw = h * w;
    const mapBase = i * c * hw;
    for (let k = 0; k < c; k++) {
      const plane = mapBase + k * hw;
      for (let t = 0; t < hw; t++) out[(i * n + p + t) * c + k] = map.data[plane + t];
    }
  }
  return { dims: [b, n, c], data: out };
}
