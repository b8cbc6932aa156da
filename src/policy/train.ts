// What the TypeScript heads share: Gaussian initialisation, cell-centre positions of a grid, a seeded shuffle and one
// Adam step (β 0.9 / 0.999, ε 1e-8) with a cosine learning-rate decay and an optional L2 weight decay.

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
