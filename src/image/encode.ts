// Builds sensor_msgs/Image messages in any supported encoding from 8-bit RGB: synthetic frames for tests and the
// simulation transport. decodeImage(encodeImage(rgb)) returns rgb exactly for packed colour encodings and within
// quantisation for grey, YUV and Bayer.
import type { ImageMsg } from '../msgs/types.js';
import { ENCODINGS, type BayerPattern, type RawEncoding } from './encodings.js';

export interface EncodeOptions {
  /** Row stride in bytes; defaults to width × bytes per pixel. Padding bytes are set to `padByte`. */
  step?: number;
  /** Byte order of 16-bit samples. */
  bigEndian?: boolean;
  padByte?: number;
  frameId?: string;
}

/** RGB (width×height×3 bytes, row-major) → an Image message in `encoding`. Grey is BT.601 luma; 16-bit is v × 257. */
export function encodeImage(rgb: Uint8Array, width: number, height: number, encoding: RawEncoding, opts: EncodeOptions = {}): ImageMsg & { data: Uint8Array } {
  if (rgb.length !== width * height * 3) throw new Error(`rgb has ${rgb.length} bytes, ${width}×${height}×3 needs ${width * height * 3}`);
  const info = ENCODINGS[encoding];
  const rowBytes = width * info.bytesPerPixel;
  const step = opts.step ?? rowBytes;
  if (step < rowBytes) throw new Error(`step ${step} < ${rowBytes}`);
  const data = new Uint8Array(step * height).fill(opts.padByte ?? 0xab);
  const l = info.layout;
  for (let y = 0; y < height; y++) {
    const row = data.subarray(y * step, y * step + rowBytes);
    const px = rgb.subarray(y * width * 3, (y + 1) * width * 3);
    if (l.kind === 'packed') {
      for (let x = 0; x < width; x++) {
        const r = px[x * 3];
        const g = px[x * 3 + 1];
        const b = px[x * 3 + 2];
        for (let c = 0; c < l.srcChannels; c++) {
          const sample = l.srcChannels === 1 ? luma(r, g, b) : c === l.order[0] ? r : c === l.order[1] ? g : c === l.order[2] ? b : 255;
          const o = (x * l.srcChannels + c) * l.bytesPerSample;
          if (l.bytesPerSample === 1) row[o] = sample;
          else {
            const v = sample * 257;
            row[o + (opts.bigEndian ? 0 : 1)] = v >> 8;
            row[o + (opts.bigEndian ? 1 : 0)] = v & 255;
          }
        }
      }
    } else if (l.kind === 'yuv422') {
      if (width % 2 !== 0) throw new Error(`${encoding} needs an even width, got ${width}`);
      for (let x = 0; x < width; x += 2) {
        const [y0, y1, u, v] = rgbPairToYuv422(px[x * 3], px[x * 3 + 1], px[x * 3 + 2], px[x * 3 + 3], px[x * 3 + 4], px[x * 3 + 5]);
        const o = x * 2;
        row[o + l.y0] = y0;
        row[o + l.y0 + 2] = y1;
        row[o + l.u] = u;
        row[o + l.v] = v;
      }
    } else {
      for (let x = 0; x < width; x++) row[x] = px[x * 3 + bayerChannel(l.pattern, x, y)];
    }
  }
  return {
    header: { stamp: { sec: 0, nanosec: 0 }, frame_id: opts.frameId ?? '' },
    height,
    width,
    encoding,
    is_bigendian: opts.bigEndian ? 1 : 0,
    step,
    data,
  };
}

/** RGB channel index (0, 1, 2) sampled at (x, y) under a Bayer pattern. */
export function bayerChannel(pattern: BayerPattern, x: number, y: number): number {
  const c = pattern[(y & 1) * 2 + (x & 1)];
  return c === 'r' ? 0 : c === 'g' ? 1 : 2;
}

function luma(r: number, g: number, b: number): number {
  return Math.round(0.299 * r + 0.587 * g + 0.114 * b);
}

const clampByte = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/**
 * Two RGB pixels → [Y0, Y1, U, V] the way OpenCV's COLOR_RGB2YUV_UYVY does it: BT.601 limited range in 14-bit fixed
 * point: Y ≈ 16 + 0.257 R + 0.504 G + 0.098 B per pixel; U, V ≈ 128 + (−0.148, −0.291, 0.439)·RGB and
 * 128 + (0.439, −0.368, −0.071)·RGB of the pair's mean.
 */
export function rgbPairToYuv422(r0: number, g0: number, b0: number, r1: number, g1: number, b1: number): [number, number, number, number] {
  const half = 1 << 13;
  const y = (r: number, g: number, b: number) => clampByte((r * 4211 + g * 8258 + b * 1606 + (16 << 14) + half) >> 14);
  const sr = r0 + r1;
  const sg = g0 + g1;
  const sb = b0 + b1;
  const u = clampByte((sr * -1212 + sg * -2384 + sb * 3596 + (128 << 14) + half) >> 14);
  const v = clampByte((sr * 3596 + sg * -3015 + sb * -582 + (128 << 14) + half) >> 14);
  return [y(r0, g0, b0), y(r1, g1, b1), u, v];
}
