// The small dense float64 linear algebra ridge regression needs: Gram matrices, Cholesky and its solves, products.
// All matrices are row-major Float64Arrays; the kernels are register-blocked because V8 does not vectorise.

/** A row-major matrix view: `data` holds rows·cols values. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array | Float64Array;
}

/** Thrown by choleskyInPlace when a pivot is not positive; `pivot` is the 0-based row. */
export class NotPositiveDefiniteError extends Error {
  override name = 'NotPositiveDefiniteError';
  constructor(
    readonly pivot: number,
    readonly size: number,
    readonly value: number,
  ) {
    super(`matrix is not positive definite: pivot ${pivot} of ${size} is ${value.toPrecision(3)}`);
  }
}

export function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  // Tiled so that neither side strides through memory a whole row at a time.
  const B = 32;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) t[j * rows + i] = a[i * cols + j];
    }
  }
  return t;
}

/**
 * A·Aᵀ for A m×p (row-major): the m×m symmetric Gram matrix of A's rows, both triangles filled.
 * X·Xᵀ is the dual (kernel) matrix; Xᵀ·X is gramRows(transpose(X)).
 */
export function gramRows(a: Float64Array, m: number, p: number): Float64Array {
  const g = new Float64Array(m * m);
  // 4 rows × 3 rows per block: 12 accumulators and 7 loads per 12 multiply-adds (16 registers on x86-64);
  // p tiled so the 7 rows stay in cache.
  const KB = 256;
  for (let k0 = 0; k0 < p; k0 += KB) {
    const k1 = Math.min(p, k0 + KB);
    for (let i = 0; i < m; i += 4) {
      const a0 = i * p;
      const a1 = Math.min(i + 1, m - 1) * p;
      const a2 = Math.min(i + 2, m - 1) * p;
      const a3 = Math.min(i + 3, m - 1) * p;
      const jEnd = Math.min(i + 4, m);
      for (let j = 0; j < jEnd; j += 3) {
        const b0 = j * p;
        const b1 = Math.min(j + 1, m - 1) * p;
        const b2 = Math.min(j + 2, m - 1) * p;
        let s00 = 0,
          s01 = 0,
          s02 = 0,
          s10 = 0,
          s11 = 0,
          s12 = 0,
          s20 = 0,
          s21 = 0,
          s22 = 0,
          s30 = 0,
          s31 = 0,
          s32 = 0;
        for (let k = k0; k < k1; k++) {
          const x0 = a[b0 + k];
          const x1 = a[b1 + k];
          const x2 = a[b2 + k];
          let y = a[a0 + k];
          s00 += y * x0;
          s01 += y * x1;
          s02 += y * x2;
          y = a[a1 + k];
          s10 += y * x0;
          s11 += y * x1;
          s12 += y * x2;
          y = a[a2 + k];
          s20 += y * x0;
          s21 += y * x1;
          s22 += y * x2;
          y = a[a3 + k];
          s30 += y * x0;
          s31 += y * x1;
          s32 += y * x2;
        }
        const c1 = j + 1 < m;
        const c2 = j + 2 < m;
        let o = i * m + j;
        g[o] += s00;
        if (c1) g[o + 1] += s01;
        if (c2) g[o + 2] += s02;
        if (i + 1 < m) {
          o += m;
          g[o] += s10;
          if (c1) g[o + 1] += s11;
          if (c2) g[o + 2] += s12;
        }
        if (i + 2 < m) {
          o += m;
          g[o] += s20;
          if (c1) g[o + 1] += s21;
          if (c2) g[o + 2] += s22;
        }
        if (i + 3 < m) {
          o += m;
          g[o] += s30;
          if (c1) g[o + 1] += s31;
          if (c2) g[o + 2] += s32;
        }
      }
    }
  }
  // The blocks above computed the lower triangle (and a few entries above it); mirror it.
  for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) g[i * m + j] = g[j * m + i];
  return g;
}

/**
 * In place: the lower-triangular L with L·Lᵀ = A (A m×m symmetric; only its lower triangle is read), upper triangle
 * zeroed. Throws NotPositiveDefiniteError at the first non-positive pivot.
 */
export function choleskyInPlace(l: Float64Array, m: number): Float64Array {
  for (let i0 = 0; i0 < m; i0 += 4) {
    const nr = Math.min(4, m - i0);
    const a0 = i0 * m;
    const a1 = Math.min(i0 + 1, m - 1) * m;
    const a2 = Math.min(i0 + 2, m - 1) * m;
    const a3 = Math.min(i0 + 3, m - 1) * m;
    // Columns left of this 4-row block, three at a time: every row they need is finished (Cholesky–Crout order).
    let j = 0;
    for (; j + 2 < i0; j += 3) {
      const b0 = j * m;
      const b1 = b0 + m;
      const b2 = b1 + m;
      let s00 = 0,
        s01 = 0,
        s02 = 0,
        s10 = 0,
        s11 = 0,
        s12 = 0,
        s20 = 0,
        s21 = 0,
        s22 = 0,
        s30 = 0,
        s31 = 0,
        s32 = 0;
      for (let k = 0; k < j; k++) {
        const x0 = l[b0 + k];
        const x1 = l[b1 + k];
        const x2 = l[b2 + k];
        let y = l[a0 + k];
        s00 += y * x0;
        s01 += y * x1;
        s02 += y * x2;
        y = l[a1 + k];
        s10 += y * x0;
        s11 += y * x1;
        s12 += y * x2;
        y = l[a2 + k];
        s20 += y * x0;
        s21 += y * x1;
        s22 += y * x2;
        y = l[a3 + k];
        s30 += y * x0;
        s31 += y * x1;
        s32 += y * x2;
      }
      // The 3×3 diagonal block of columns j…j+2 finishes the three entries of each row in order.
      const d0 = l[b0 + j];
      const l10 = l[b1 + j];
      const d1 = l[b1 + j + 1];
      const l20 = l[b2 + j];
      const l21 = l[b2 + j + 1];
      const d2 = l[b2 + j + 2];
      const finish = (o: number, t0: number, t1: number, t2: number) => {
        const v0 = (l[o] - t0) / d0;
        const v1 = (l[o + 1] - t1 - v0 * l10) / d1;
        l[o] = v0;
        l[o + 1] = v1;
        l[o + 2] = (l[o + 2] - t2 - v0 * l20 - v1 * l21) / d2;
      };
      finish(a0 + j, s00, s01, s02);
      if (nr > 1) finish(a1 + j, s10, s11, s12);
      if (nr > 2) finish(a2 + j, s20, s21, s22);
      if (nr > 3) finish(a3 + j, s30, s31, s32);
    }
    // Leftover columns and the diagonal block, one entry at a time.
    for (let r = 0; r < nr; r++) {
      const i = i0 + r;
      const oi = i * m;
      for (let jj = j; jj <= i; jj++) {
        const oj = jj * m;
        let s = l[oi + jj];
        for (let k = 0; k < jj; k++) s -= l[oi + k] * l[oj + k];
        if (jj === i) {
          if (!(s > 0)) throw new NotPositiveDefiniteError(i, m, s);
          l[oi + i] = Math.sqrt(s);
        } else {
          l[oi + jj] = s / l[oj + jj];
        }
      }
      for (let jj = i + 1; jj < m; jj++) l[oi + jj] = 0;
    }
  }
  return l;
}

/** In place on B (m×k): B ← (L·Lᵀ)⁻¹·B for the factor L of choleskyInPlace. */
export function choleskySolveInPlace(l: Float64Array, m: number, b: Float64Array, k: number): Float64Array {
  // L·Z = B, row by row (each step a row operation on contiguous k-vectors).
  for (let i = 0; i < m; i++) {
    const oi = i * m;
    const bi = i * k;
    for (let j = 0; j < i; j++) {
      const f = l[oi + j];
      if (f === 0) continue;
      const bj = j * k;
      for (let c = 0; c < k; c++) b[bi + c] -= f * b[bj + c];
    }
    const d = l[oi + i];
    for (let c = 0; c < k; c++) b[bi + c] /= d;
  }
  // Lᵀ·X = Z from the bottom: once X[i] is final, subtract its share from every row above.
  for (let i = m - 1; i >= 0; i--) {
    const oi = i * m;
    const bi = i * k;
    const d = l[oi + i];
    for (let c = 0; c < k; c++) b[bi + c] /= d;
    for (let j = 0; j < i; j++) {
      const f = l[oi + j];
      if (f === 0) continue;
      const bj = j * k;
      for (let c = 0; c < k; c++) b[bj + c] -= f * b[bi + c];
    }
  }
  return b;
}

/** A·B for A m×p and B p×k. */
export function matmul(a: Float64Array, m: number, p: number, b: Float64Array, k: number): Float64Array {
  const c = new Float64Array(m * k);
  for (let i = 0; i < m; i++) {
    const oa = i * p;
    const oc = i * k;
    for (let j = 0; j < p; j++) {
      const f = a[oa + j];
      if (f === 0) continue;
      const ob = j * k;
      for (let t = 0; t < k; t++) c[oc + t] += f * b[ob + t];
    }
  }
  return c;
}

/** Aᵀ·B for A n×p and B n×k: p×k. */
export function matmulTN(a: Float64Array, n: number, p: number, b: Float64Array, k: number): Float64Array {
  const c = new Float64Array(p * k);
  for (let r = 0; r < n; r++) {
    const oa = r * p;
    const ob = r * k;
    for (let j = 0; j < p; j++) {
      const f = a[oa + j];
      if (f === 0) continue;
      const oc = j * k;
      for (let t = 0; t < k; t++) c[oc + t] += f * b[ob + t];
    }
  }
  return c;
}
