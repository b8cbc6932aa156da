// Splitting images into a grid of crops stacked on the batch axis, and merging crop outputs back.
// Crop (i, j) of image b sits at batch index (i·nw + j)·B + b: row-major over the grid, images innermost.
import type { Tensor } from './tensor.js';

/**
 * Cuts each B×C×H×W image into nh×nw equal crops and writes them, batch-ordered as above, into `dst` starting at
 * element `dstOffset` (so several scales can share one backbone batch). Returns the number of elements written.
 */
export function splitChessboardInto(src: Tensor, nh: number, nw: number, dst: Float32Array, dstOffset: number): number {
  const [b, c, h, w] = src.dims;
  if (h % nh !== 0 || w % nw !== 0) throw new Error(`cannot split ${h}×${w} into ${nh}×${nw} equal crops`);
  const ch = h / nh;
  const cw = w / nw;
  const s = src.data;
  let o = dstOffset;
  for (let i = 0; i < nh; i++) {
    for (let j = 0; j < nw; j++) {
      for (let n = 0; n < b; n++) {
        for (let k = 0; k < c; k++) {
          const plane = (n * c + k) * h * w;
          for (let y = 0; y < ch; y++) {
            const row = plane + (i * ch + y) * w + j * cw;
            dst.set(s.subarray(row, row + cw), o);
            o += cw;
          }
        }
      }
    }
  }
  return o - dstOffset;
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
            out.set(s.subarray(from, from + w), dstPlane + (i * h + y) * W + j * w);
          }
        }
      }
    }
  }
  return { dims: [b, c, H, W], data: out };
}

/** Keeps the top-left outH×outW of every plane (undoes bottom/right padding on feature maps). */
export function cropTopLeft(src: Tensor, outH: number, outW: number): Tensor {
  const [b, c, h, w] = src.dims;
  if (outH === h && outW === w) return src;
  const out = new Float32Array(b * c * outH * outW);
  for (let p = 0; p < b * c; p++) {
    for (let y = 0; y < outH; y++) {
      const from = (p * h + y) * w;
      out.set(src.data.subarray(from, from + outW), (p * outH + y) * outW);
    }
  }
  return { dims: [b, c, outH, outW], data: out };
}
