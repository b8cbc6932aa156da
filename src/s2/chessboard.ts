// Splitting images into a grid of crops stacked on the batch axis, and merging crop outputs back.
// Crop (i, j) of image b sits at batch index (i·nw + j)·B + b: row-major over the grid, images innermost.
import type { Tensor } from './tensor.js';

/** Where row y of plane p (= b·C + c) of an H×W image goes when it is cut into nh×nw crops, as a row writer. */
export function chessboardRowWriter(
  dims: readonly number[],
  nh: number,
  nw: number,
  dst: Float32Array,
  dstOffset: number,
): (p: number, y: number, row: Float32Array) => void {
  const [b, c, h, w] = dims;
  if (h % nh !== 0 || w % nw !== 0) throw new Error(`cannot split ${h}×${w} into ${nh}×${nw} equal crops`);
  const ch = h / nh;
  const cw = w / nw;
  const cropSize = c * ch * cw;
  return (p, y, row) => {
    const n = Math.floor(p / c);
    const k = p - n * c;
    const i = Math.floor(y / ch);
    const yy = y - i * ch;
    for (let j = 0; j < nw; j++) {
      const crop = (i * nw + j) * b + n;
      dst.set(row.subarray(j * cw, (j + 1) * cw), dstOffset + crop * cropSize + (k * ch + yy) * cw);
    }
  };
}

/**
 * Cuts each B×C×H×W image into nh×nw equal crops and writes them, batch-ordered as above, into `dst` starting at
 * element `dstOffset` (so several scales can share one backbone batch). Returns the number of elements written.
 */
export function splitChessboardInto(src: Tensor, nh: number, nw: number, dst: Float32Array, dstOffset: number): number {
  const [b, c, h, w] = src.dims;
  const write = chessboardRowWriter(src.dims, nh, nw, dst, dstOffset);
  for (let p = 0; p < b * c; p++) for (let y = 0; y < h; y++) write(p, y, src.data.subarray((p * h + y) * w, (p * h + y + 1) * w));
  return b * c * h * w;
}

export function splitChessboard(src: Tensor, nh: number, nw: number): Tensor {
  const [b, c, h, w] = src.dims;
  const data = new Float32Array(b * c * h * w);
  splitChessboardInto(src, nh, nw, data, 0);
  return { dims: [b * nh * nw, c, h / nh, w / nw], data };
}

/** The inverse of splitChessboard: nh·nw·B crop maps of C×h×w become B maps of C×(nh·h)×(nw·w). */
export function mergeChessboard(crops: Tensor, nh: number, nw: number): Tensor {
  const [bb, c, h, w] = crops.dims;
  if (bb % (nh * nw) !== 0) throw new Error(`${bb} crops do not form a ${nh}×${nw} grid`);
  const b = bb / (nh * nw);
  const H = nh * h;
  const W = nw * w;
  const out = new Float32Array(b * c * H * W);
  const s = crops.data;
  for (let i = 0; i < nh; i++) {
    for (let j = 0; j < nw; j++) {
      for (let n = 0; n < b; n++) {
        const crop = (i * nw + j) * b + n;
        for (let k = 0; k < c; k++) {
          const srcPlane = (crop * c + k) * h * w;
          const dstPlane = (n * c + k) * H * W;
          for (let y = 0; y < h; y++) {
            const from = srcPlane + y * w;
            const to = dstPlane + (i * h + y) * W + j * w;
            // Feature rows are short (a few to a few dozen values): a loop beats creating a subarray per row.
            for (let x = 0; x < w; x++) out[to + x] = s[from + x];
          }
        }
      }
    }
  }
  return { dims: [b, c, H, W], data: out };
}
