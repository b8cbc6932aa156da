// Constant matrices that express the S² engine's resampling steps as products: bicubic resize (PyTorch's taps,
// borders clamped), a second resize or zero padding to the split size, and area pooling limited to a valid extent;
// and the banded form of a resize matrix (tiles of output rows, each reading a short window of inputs).
import { bicubicAxis } from '../s2/resize.js';
import { areaBounds } from '../s2/pool.js';

/** A row-major out×in matrix in float64 (products of matrices are formed before rounding to float32). */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

/** out×in: row o holds the 4 bicubic weights of output o at their (clamped) source columns; taps on one column add. */
export function bicubicMatrix(inSize: number, outSize: number): Matrix {
  const data = new Float64Array(outSize * inSize);
  if (inSize === outSize) {
    // resize.ts copies at equal size; its taps there are exactly (0, 1, 0, 0).
    for (let i = 0; i < inSize; i++) data[i * inSize + i] = 1;
    return { rows: outSize, cols: inSize, data };
  }
  const t = bicubicAxis(inSize, outSize);
  for (let o = 0; o < outSize; o++) for (let k = 0; k < 4; k++) data[o * inSize + t.index[o * 4 + k]] += t.weight[o * 4 + k];
  return { rows: outSize, cols: inSize, data };
}

/** (rows)×(in): `m` followed by zero rows, i.e. m then zero padding at the end of the axis. */
export function padRows(m: Matrix, rows: number): Matrix {
  if (rows < m.rows) throw new Error(`cannot pad ${m.rows} rows down to ${rows}`);
  const data = new Float64Array(rows * m.cols);
  data.set(m.data);
  return { rows, cols: m.cols, data };
}

export function multiply(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.rows) throw new Error(`matrix product ${a.rows}×${a.cols} · ${b.rows}×${b.cols}`);
  const data = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let k = 0; k < a.cols; k++) {
      const v = a.data[i * a.cols + k];
      if (v === 0) continue;
      for (let j = 0; j < b.cols; j++) data[i * b.cols + j] += v * b.data[k * b.cols + j];
    }
  }
  return { rows: a.rows, cols: b.cols, data };
}

/**
 * out×in: adaptive average pooling of the first `valid` of `inSize` cells to `outSize` cells, as areaBounds
 * defines them; cells from `valid` on (padding) get weight 0.
 */
export function areaMatrix(inSize: number, valid: number, outSize: number): Matrix {
  const data = new Float64Array(outSize * inSize);
  const b = areaBounds(valid, outSize);
  for (let o = 0; o < outSize; o++) {
    const lo = b[2 * o];
    const hi = b[2 * o + 1];
    for (let i = lo; i < hi; i++) data[o * inSize + i] = 1 / (hi - lo);
  }
  return { rows: outSize, cols: inSize, data };
}

/**
 * A matrix cut into tiles of `tile` consecutive rows, tile k reading only the `length` consecutive columns from
 * `starts[k]`: the form in which a resize costs about `length` (a few taps plus tile/scale) multiply-adds per output
 * instead of one per input column. Every non-zero of the matrix lies inside its tile's window.
 */
export interface TiledMatrix {
  tile: number;
  tiles: number;
  length: number;
  starts: number[];
  /** [tiles, tile, length] row-major: tile k's rows restricted to its window, rounded to float32. */
  weights: Float32Array;
}

/** Cuts `m` (rows divisible by `tile`) into tiles with one window length, the longest any tile needs. */
export function tileRows(m: Matrix, tile: number): TiledMatrix {
  if (tile < 1 || m.rows % tile !== 0) throw new Error(`cannot cut ${m.rows} rows into tiles of ${tile}`);
  const tiles = m.rows / tile;
  const lo: number[] = [];
  let length = 1;
  for (let k = 0; k < tiles; k++) {
    let a = m.cols;
    let b = -1;
    for (let o = k * tile; o < (k + 1) * tile; o++) {
      for (let c = 0; c < m.cols; c++) {
        if (m.data[o * m.cols + c] === 0) continue;
        a = Math.min(a, c);
        b = Math.max(b, c);
      }
    }
    // A tile of zero rows (padding) reads anything and multiplies it by zero.
    lo.push(b < 0 ? 0 : a);
    length = Math.max(length, b - a + 1);
  }
  // One length for all tiles (one batched product); windows near the end start earlier to stay inside the axis.
  const starts = lo.map((a) => Math.min(a, m.cols - length));
  const weights = new Float32Array(m.rows * length);
  for (let k = 0; k < tiles; k++) {
    for (let o = k * tile; o < (k + 1) * tile; o++) {
      for (let l = 0; l < length; l++) weights[o * length + l] = m.data[o * m.cols + starts[k] + l];
    }
  }
  return { tile, tiles, length, starts, weights };
}

/**
 * The tile height for crops of `size`: the divisor of `size` nearest to `target` by ratio. Tiles never straddle
 * two crops, so a scale's tiles stack into its crops without moving data; 32 measured fastest for 224-pixel crops
 * (bench/compile-resize.bench.ts).
 */
export function tileSizeFor(size: number, target = 32): number {
  let best = size;
  for (let d = 1; d <= size; d++) {
    if (size % d === 0 && Math.abs(Math.log(d / target)) < Math.abs(Math.log(best / target))) best = d;
  }
  return best;
}

export function isIdentity(m: Matrix): boolean {
  if (m.rows !== m.cols) return false;
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) if (m.data[i * m.cols + j] !== (i === j ? 1 : 0)) return false;
  return true;
}

export function toFloat32(m: Matrix, transpose = false): Float32Array {
  if (!transpose) return Float32Array.from(m.data);
  const out = new Float32Array(m.rows * m.cols);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) out[j * m.rows + i] = m.data[i * m.cols + j];
  return out;
}
