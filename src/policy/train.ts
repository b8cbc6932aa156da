// What the TypeScript heads share: Gaussian initialisation, cell-centre positions of a grid, dense layers and the
// forward/backward pass of their MLP, 1×1 convolutions and the spatial softmax over channel-major maps (forward and
// backward), feature statistics, a seeded shuffle and one Adam step (β 0.9 / 0.999, ε 1e-8) with a cosine
// learning-rate decay and an optional L2 weight decay.

/** A standard normal sample (Box–Muller) from `rand` in [0, 1). */
export function gaussian(rand: () => number): number {
  const u = Math.max(1e-12, rand());
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** Cell centres in [-1, 1]: x across, y down, row-major over an h × w grid. */
export function gridPositions(h: number, w: number): Float32Array {
  const pos = new Float32Array(h * w * 2);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      pos[(i * w + j) * 2] = ((j + 0.5) / w) * 2 - 1;
      pos[(i * w + j) * 2 + 1] = ((i + 0.5) / h) * 2 - 1;
    }
  }
  return pos;
}

/** Fisher–Yates shuffle of `order` in place with `rand` in [0, 1). */
export function shuffle(order: Int32Array, rand: () => number): void {
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
}

/** Cosine decay from lr0 at step 0 to `floor`·lr0 at `steps`. */
export function cosineRate(lr0: number, step: number, steps: number, floor: number): number {
  return lr0 * (floor + (1 - floor) * 0.5 * (1 + Math.cos((Math.PI * step) / steps)));
}

/**
 * One Adam step (`step` counts from 1) on every named parameter: the gradient sums `grads[k]` are scaled by
 * `inv` (1 / batch size) and get `decay(k)`·w added.
 */
export function adamStep<K extends string>(
  params: Record<K, Float32Array>,
  grads: Record<K, Float32Array>,
  m1: Record<K, Float32Array>,
  m2: Record<K, Float32Array>,
  keys: readonly K[],
  step: number,
  lr: number,
  inv: number,
  decay: (k: K) => number = () => 0,
): void {
  const c1 = 1 - 0.9 ** step;
  const c2 = 1 - 0.999 ** step;
  for (const k of keys) {
    const w = params[k];
    const g = grads[k];
    const a = m1[k];
    const v = m2[k];
    const d = decay(k);
    for (let i = 0; i < w.length; i++) {
      const gi = g[i] * inv + d * w[i];
      a[i] = 0.9 * a[i] + 0.1 * gi;
      v[i] = 0.999 * v[i] + 0.001 * gi * gi;
      w[i] -= (lr * (a[i] / c1)) / (Math.sqrt(v[i] / c2) + 1e-8);
    }
  }
}

/** out = b + xᵀw (w: n × k, row-major), ReLU optional. */
export function dense(x: Float32Array, w: Float32Array, b: Float32Array, out: Float32Array, n: number, k: number, relu: boolean): void {
  for (let j = 0; j < k; j++) out[j] = b[j];
  for (let i = 0; i < n; i++) {
    const xi = x[i];
    if (xi === 0) continue;
    const o = i * k;
    for (let j = 0; j < k; j++) out[j] += xi * w[o + j];
  }
  if (relu) for (let j = 0; j < k; j++) if (out[j] < 0) out[j] = 0;
}

/** Accumulates the gradients of w (into gw) and b (into gb) for dout, and writes dL/dx to dx. */
export function denseBack(
  x: Float32Array,
  w: Float32Array,
  dout: Float32Array,
  dx: Float32Array,
  gw: Float32Array,
  gb: Float32Array,
  n: number,
  k: number,
): void {
  for (let j = 0; j < k; j++) gb[j] += dout[j];
  for (let i = 0; i < n; i++) {
    const o = i * k;
    const xi = x[i];
    let acc = 0;
    for (let j = 0; j < k; j++) {
      gw[o + j] += xi * dout[j];
      acc += w[o + j] * dout[j];
    }
    dx[i] = acc;
  }
}

/** The weights of an MLP in → H (ReLU) → H (ReLU) → out, each layer's weight n × k row-major. */
export interface MlpWeights {
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
  w3: Float32Array;
  b3: Float32Array;
}

/** One row's activations and gradient scratch for an MlpWeights network. */
export class MlpPass {
  readonly h1: Float32Array;
  readonly h2: Float32Array;
  readonly y: Float32Array;
  readonly dh1: Float32Array;
  readonly dh2: Float32Array;
  /** dL/dz of the last backward(). */
  readonly dz: Float32Array;

  constructor(
    readonly inDim: number,
    readonly hidden: number,
    readonly outDim: number,
  ) {
    this.h1 = new Float32Array(hidden);
    this.h2 = new Float32Array(hidden);
    this.y = new Float32Array(outDim);
    this.dh1 = new Float32Array(hidden);
    this.dh2 = new Float32Array(hidden);
    this.dz = new Float32Array(inDim);
  }

  /** y for input z (kept, with the hidden activations, for backward()). */
  forward(p: MlpWeights, z: Float32Array): Float32Array {
    const H = this.hidden;
    dense(z, p.w1, p.b1, this.h1, this.inDim, H, true);
    dense(this.h1, p.w2, p.b2, this.h2, H, H, true);
    dense(this.h2, p.w3, p.b3, this.y, H, this.outDim, false);
    return this.y;
  }

  /** Accumulates into g the gradients for dy = dL/dy of the row last passed to forward(z), and leaves dL/dz in dz. */
  backward(p: MlpWeights, g: MlpWeights, z: Float32Array, dy: Float32Array): void {
    const { h1, h2, dh1, dh2, dz } = this;
    const H = this.hidden;
    denseBack(h2, p.w3, dy, dh2, g.w3, g.b3, H, this.outDim);
    for (let i = 0; i < H; i++) if (h2[i] <= 0) dh2[i] = 0;
    denseBack(h1, p.w2, dh2, dh1, g.w2, g.b2, H, H);
    for (let i = 0; i < H; i++) if (h1[i] <= 0) dh1[i] = 0;
    denseBack(z, p.w1, dh1, dz, g.w1, g.b1, this.inDim, H);
  }
}

/**
 * A 1×1 convolution over channel-major maps: out[k, l] = Σ_c w[k, c]·x[xo + c·L + l] (out: K × L, overwritten).
 * The loop runs along whole rows of cells so that the inner loop is one contiguous multiply-add.
 */
export function pointwiseConv(x: Float32Array, xo: number, w: Float32Array, out: Float32Array, C: number, K: number, L: number): void {
  out.fill(0, 0, K * L);
  for (let k = 0; k < K; k++) {
    const oo = k * L;
    for (let c = 0; c < C; c++) {
      const wk = w[k * C + c];
      if (wk === 0) continue;
      const fo = xo + c * L;
      for (let l = 0; l < L; l++) out[oo + l] += wk * x[fo + l];
    }
  }
}

/** Accumulates gw[k, c] += Σ_l dout[k, l]·x[xo + c·L + l]: the weight gradient of pointwiseConv. */
export function pointwiseConvBack(x: Float32Array, xo: number, dout: Float32Array, gw: Float32Array, C: number, K: number, L: number): void {
  for (let k = 0; k < K; k++) {
    const oo = k * L;
    for (let c = 0; c < C; c++) {
      const fo = xo + c * L;
      let acc = 0;
      for (let l = 0; l < L; l++) acc += dout[oo + l] * x[fo + l];
      gw[k * C + c] += acc;
    }
  }
}

/**
 * Spatial softmax (Levine et al. 2016): for each of K score maps over L cells, softmax over the cells (written
 * over `scores` as probabilities) and its expected position under `pos` (L × 2, e.g. gridPositions) into kp (K × 2).
 */
export function spatialSoftmax(scores: Float32Array, K: number, L: number, pos: Float32Array, kp: Float32Array): void {
  for (let k = 0; k < K; k++) {
    const so = k * L;
    let mx = -Infinity;
    for (let l = 0; l < L; l++) if (scores[so + l] > mx) mx = scores[so + l];
    let sum = 0;
    for (let l = 0; l < L; l++) sum += scores[so + l] = Math.exp(scores[so + l] - mx);
    let kx = 0;
    let ky = 0;
    const inv = 1 / sum;
    for (let l = 0; l < L; l++) {
      const p = (scores[so + l] *= inv);
      kx += p * pos[2 * l];
      ky += p * pos[2 * l + 1];
    }
    kp[2 * k] = kx;
    kp[2 * k + 1] = ky;
  }
}

/** dL/dscores (K × L, overwritten) from dL/dkp, for the probabilities and keypoints spatialSoftmax left: p_l·(pos_l − kp)·dkp. */
export function spatialSoftmaxBack(probs: Float32Array, kp: Float32Array, dkp: Float32Array, pos: Float32Array, K: number, L: number, ds: Float32Array): void {
  for (let k = 0; k < K; k++) {
    const so = k * L;
    const gx = dkp[2 * k];
    const gy = dkp[2 * k + 1];
    const kx = kp[2 * k];
    const ky = kp[2 * k + 1];
    for (let l = 0; l < L; l++) ds[so + l] = probs[so + l] * (gx * (pos[2 * l] - kx) + gy * (pos[2 * l + 1] - ky));
  }
}

/** Per-channel mean and floored std over every row and cell of channel-major maps (rows × C × L). */
export function channelStats(x: Float32Array, rows: number, C: number, L: number): { mean: Float32Array; std: Float32Array } {
  const mean = new Float32Array(C);
  const std = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    let s2 = 0;
    for (let r = 0; r < rows; r++) {
      const o = (r * C + c) * L;
      for (let l = 0; l < L; l++) {
        const v = x[o + l];
        s += v;
        s2 += v * v;
      }
    }
    const n = rows * L;
    const m = s / n;
    mean[c] = m;
    std[c] = Math.max(1e-6, Math.sqrt(Math.max(0, s2 / n - m * m)));
  }
  return { mean, std };
}

/** Per-column mean and floored std of a rows × cols matrix. */
export function columnStats(v: Float32Array, rows: number, cols: number): { mean: Float32Array; std: Float32Array } {
  const mean = new Float32Array(cols);
  const std = new Float32Array(cols);
  for (let j = 0; j < cols; j++) {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < rows; i++) {
      const x = v[i * cols + j];
      s += x;
      s2 += x * x;
    }
    mean[j] = s / rows;
    std[j] = Math.max(1e-6, Math.sqrt(Math.max(0, s2 / rows - (s / rows) ** 2)));
  }
  return { mean, std };
}
