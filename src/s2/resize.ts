// Bicubic resize of B×C×H×W batches, numerically as PyTorch F.interpolate(mode='bicubic', align_corners=False).
import type { Tensor } from './tensor.js';

/** PyTorch's cubic-convolution constant. */
const A = -0.75;

/** Per output coordinate: the 4 clamped source indices and their 4 weights. */
export interface AxisTable {
  index: Int32Array;
  weight: Float32Array;
}

const tableCache = new Map<string, AxisTable>();

function cubicNear(x: number): number {
  return ((A + 2) * x - (A + 3)) * x * x + 1; // |x| <= 1
}

function cubicFar(x: number): number {
  return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; // 1 < |x| < 2
}

/**
 * Source taps for one axis. Half-pixel centres (scale = in/out, src = (dst + 0.5)·scale − 0.5), no clamping of
 * the source coordinate, neighbour indices clamped to the border, and no antialiasing when shrinking: the same
 * choices PyTorch makes for bicubic with align_corners=False.
 */
export function bicubicAxis(inSize: number, outSize: number): AxisTable {
  const key = `${inSize}>${outSize}`;
  const cached = tableCache.get(key);
  if (cached) return cached;
  const index = new Int32Array(outSize * 4);
  const weight = new Float32Array(outSize * 4);
  // Math.fround mirrors PyTorch computing the scale and source coordinate in float32.
  const scale = Math.fround(inSize / outSize);
  for (let o = 0; o < outSize; o++) {
    const src = Math.fround(Math.fround(scale * Math.fround(o + 0.5)) - 0.5);
    const i0 = Math.floor(src);
    const t = Math.min(Math.max(src - i0, 0), 1);
    const w = [cubicFar(t + 1), cubicNear(t), cubicNear(1 - t), cubicFar(2 - t)];
    for (let k = 0; k < 4; k++) {
      index[o * 4 + k] = Math.min(Math.max(i0 - 1 + k, 0), inSize - 1);
      weight[o * 4 + k] = w[k];
    }
  }
  const table = { index, weight };
  if (tableCache.size > 256) tableCache.clear();
  tableCache.set(key, table);
  return table;
}

/**
 * Bicubic-resizes every B×C plane of `src` to outH×outW and hands each output row to `emit` (plane index p = b·C + c,
 * row y, values in a buffer reused between calls), so callers can place rows without an intermediate image.
 */
export function resizeBicubicRows(src: Tensor, outH: number, outW: number, emit: (p: number, y: number, row: Float32Array) => void): void {
  const [b, c, h, w] = src.dims;
  const planes = b * c;
  const s = src.data;
  if (h === outH && w === outW) {
    // The taps are exactly (0, 1, 0, 0) at scale 1, and PyTorch copies too.
    for (let p = 0; p < planes; p++) for (let y = 0; y < h; y++) emit(p, y, s.subarray((p * h + y) * w, (p * h + y + 1) * w));
    return;
  }
  const tx = bicubicAxis(w, outW);
  const ty = bicubicAxis(h, outH);
  const xi = tx.index;
  const xw = tx.weight;
  const yi = ty.index;
  const yw = ty.weight;
  const rows = new Float32Array(h * outW); // one plane, resized along x
  const line = new Float32Array(outW);
  for (let p = 0; p < planes; p++) {
    const inBase = p * h * w;
    for (let y = 0; y < h; y++) {
      const row = inBase + y * w;
      const rowOut = y * outW;
      for (let x = 0; x < outW; x++) {
        const k = x * 4;
        rows[rowOut + x] = s[row + xi[k]] * xw[k] + s[row + xi[k + 1]] * xw[k + 1] + s[row + xi[k + 2]] * xw[k + 2] + s[row + xi[k + 3]] * xw[k + 3];
      }
    }
    for (let y = 0; y < outH; y++) {
      const k = y * 4;
      const r0 = yi[k] * outW;
      const r1 = yi[k + 1] * outW;
      const r2 = yi[k + 2] * outW;
      const r3 = yi[k + 3] * outW;
      const w0 = yw[k];
      const w1 = yw[k + 1];
      const w2 = yw[k + 2];
      const w3 = yw[k + 3];
      for (let x = 0; x < outW; x++) line[x] = rows[r0 + x] * w0 + rows[r1 + x] * w1 + rows[r2 + x] * w2 + rows[r3 + x] * w3;
      emit(p, y, line);
    }
  }
}

/** Resizes every B×C plane of `src` to outH×outW (bicubic, as PyTorch). */
export function resizeBicubic(src: Tensor, outH: number, outW: number): Tensor {
  const [b, c] = src.dims;
  const dst = new Float32Array(b * c * outH * outW);
  resizeBicubicRows(src, outH, outW, (p, y, row) => dst.set(row, (p * outH + y) * outW));
  return { dims: [b, c, outH, outW], data: dst };
}

/** Zero-pads every plane at the bottom and right to outH×outW. */
export function padBottomRight(src: Tensor, outH: number, outW: number): Tensor {
  const [b, c, h, w] = src.dims;
  if (outH < h || outW < w) throw new Error(`cannot pad ${h}×${w} down to ${outH}×${outW}`);
  const dst = new Float32Array(b * c * outH * outW);
  for (let p = 0; p < b * c; p++) {
    for (let y = 0; y < h; y++) {
      dst.set(src.data.subarray((p * h + y) * w, (p * h + y + 1) * w), (p * outH + y) * outW);
    }
  }
  return { dims: [b, c, outH, outW], data: dst };
}
