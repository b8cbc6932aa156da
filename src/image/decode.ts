// Decodes a raw sensor_msgs/Image into tightly packed RGB (or grey) samples, validating every field first.
import type { ImageMsg } from '../msgs/types.js';
import { RAW_ENCODINGS, encodingInfo, type BayerPattern, type PackedLayout, type YuvLayout } from './encodings.js';
import type { BufferPool } from './pool.js';
import { firstLine, reject, type Rejection } from './reject.js';

interface DecodedBase {
  width: number;
  height: number;
  /** 3: interleaved R, G, B. 1: grey (mono encodings, grey JPEG/PNG), kept single-channel to save work downstream. */
  channels: 1 | 3;
}

/** Decoded pixels, row-major, no row padding. 8-bit samples are 0..255, 16-bit samples 0..65535. */
export type DecodedImage = (DecodedBase & { depth: 8; data: Uint8Array }) | (DecodedBase & { depth: 16; data: Uint16Array });

export type DecodeResult = { ok: true; image: DecodedImage } | Rejection;

/**
 * Raw Image → pixels. Never throws. `data` of the result may be a view on `msg.data` (rgb8 and mono8 without row
 * padding), so do not modify the message while the image is in use. With a pool, new buffers come from it.
 */
export function decodeImage(msg: ImageMsg, maxPixels: number, pool?: BufferPool): DecodeResult {
  try {
    return decodeChecked(msg, maxPixels, pool);
  } catch (e) {
    return reject('internal', `decodeImage: ${firstLine(e)}`);
  }
}

/** A value for a one-line detail: short, and strings quoted. */
export function show(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? `array(${v.length})` : typeof v === 'object' && v !== null ? `an object` : String(v);
  } catch {
    s = `a ${typeof v}`;
  }
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function uintField(v: unknown, field: string): Rejection | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return undefined;
  return reject('bad_field', `${field} must be a non-negative integer, got ${show(v)}`);
}

/** Checks maxPixels, which every decode entry point takes from the caller's configuration. */
export function checkMaxPixels(maxPixels: unknown): Rejection | undefined {
  if (typeof maxPixels === 'number' && (Number.isSafeInteger(maxPixels) || maxPixels === Infinity) && maxPixels > 0) return undefined;
  return reject('bad_config', `maxPixels must be a positive integer, got ${show(maxPixels)}`);
}

/** The message's bytes as a Uint8Array (a copy only for a plain array), or why they are unusable. */
export function messageBytes(data: unknown, needed: number, field = 'data'): Uint8Array | Rejection {
  if (data instanceof Uint8Array) return data;
  if (!Array.isArray(data)) return reject('bad_field', `${field} must be a Uint8Array or an array of bytes, got ${data === null ? 'null' : typeof data}`);
  const n = Math.min(needed, data.length);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v: unknown = data[i];
    if (typeof v !== 'number' || (v & 255) !== v) return reject('bad_data', `${field}[${i}] must be a byte 0..255, got ${show(v)}`);
    out[i] = v;
  }
  return out;
}

function decodeChecked(msg: ImageMsg, maxPixels: number, pool: BufferPool | undefined): DecodeResult {
  const bad = checkMaxPixels(maxPixels);
  if (bad) return bad;
  if (typeof msg !== 'object' || msg === null) return reject('bad_field', `image message must be an object, got ${show(msg)}`);
  const { width, height, step, encoding } = msg;
  if (typeof encoding !== 'string') return reject('bad_field', `encoding must be a string, got ${show(encoding)}`);
  const fieldFault = uintField(width, 'width') ?? uintField(height, 'height') ?? uintField(step, 'step');
  if (fieldFault) return fieldFault;
  if (!(msg.data instanceof Uint8Array) && !Array.isArray(msg.data))
    return reject('bad_field', `data must be a Uint8Array or an array of bytes, got ${typeof msg.data}`);
  if (width === 0 || height === 0) return reject('zero_size', `width × height is ${width}×${height}; both must be positive`);
  const info = encodingInfo(encoding);
  if (!info) return reject('unknown_encoding', `encoding ${show(encoding)} is not supported (supported: ${RAW_ENCODINGS.join(', ')})`);
  if (width * height > maxPixels) return reject('too_large', `width × height = ${width}×${height} exceeds maxPixels ${maxPixels}`);
  const layout = info.layout;
  if (layout.kind === 'yuv422' && width % 2 !== 0) return reject('odd_width', `width ${width} is odd; ${encoding} packs two pixels per macropixel`);
  if (layout.kind === 'bayer' && (width < 2 || height < 2))
    return reject('too_small', `width × height = ${width}×${height}; ${encoding} needs at least one 2×2 cell`);
  const rowBytes = width * info.bytesPerPixel;
  if (step < rowBytes) return reject('bad_step', `step ${step} is less than width × ${info.bytesPerPixel} bytes = ${rowBytes} for ${encoding}`);
  const needed = step * height;
  if (msg.data.length < needed) return reject('short_data', `data has ${msg.data.length} bytes, step × height = ${step}×${height} needs ${needed}`);
  const src = messageBytes(msg.data, needed);
  if (!(src instanceof Uint8Array)) return src;

  switch (layout.kind) {
    case 'packed':
      return { ok: true, image: decodePacked(src, width, height, step, layout, Boolean(msg.is_bigendian), pool) };
    case 'yuv422':
      return { ok: true, image: decodeYuv422(src, width, height, step, layout, pool) };
    case 'bayer':
      return { ok: true, image: demosaicBilinear(src, width, height, step, layout.pattern, pool) };
  }
}

function decodePacked(src: Uint8Array, w: number, h: number, step: number, l: PackedLayout, bigEndian: boolean, pool?: BufferPool): DecodedImage {
  const sc = l.srcChannels;
  const oc = l.outChannels;
  const [ri, gi, bi] = l.order;
  if (l.bytesPerSample === 1) {
    const identity = sc === oc && ri === 0 && gi === (oc === 3 ? 1 : 0);
    // Without padding rgb8 and mono8 are already what we want: no copy.
    if (identity && step === w * sc) return { width: w, height: h, channels: oc, depth: 8, data: src.subarray(0, w * h * sc) };
    const out = pool ? pool.bytes(w * h * oc) : new Uint8Array(w * h * oc);
    if (identity) {
      for (let y = 0; y < h; y++) out.set(src.subarray(y * step, y * step + w * sc), y * w * sc);
    } else {
      let d = 0;
      for (let y = 0; y < h; y++) {
        for (let s = y * step, end = s + w * sc; s < end; s += sc) {
          out[d] = src[s + ri];
          out[d + 1] = src[s + gi];
          out[d + 2] = src[s + bi];
          d += 3;
        }
      }
    }
    return { width: w, height: h, channels: oc, depth: 8, data: out };
  }
  // 16-bit samples, read byte by byte so alignment and host byte order do not matter.
  const out = pool ? pool.words(w * h * oc) : new Uint16Array(w * h * oc);
  const hi = bigEndian ? 0 : 1;
  const lo = 1 - hi;
  const stride = sc * 2;
  let d = 0;
  if (oc === 1) {
    for (let y = 0; y < h; y++) {
      for (let s = y * step, end = s + w * 2; s < end; s += 2) out[d++] = (src[s + hi] << 8) | src[s + lo];
    }
  } else {
    const r = ri * 2;
    const g = gi * 2;
    const b = bi * 2;
    for (let y = 0; y < h; y++) {
      for (let s = y * step, end = s + w * stride; s < end; s += stride) {
        out[d] = (src[s + r + hi] << 8) | src[s + r + lo];
        out[d + 1] = (src[s + g + hi] << 8) | src[s + g + lo];
        out[d + 2] = (src[s + b + hi] << 8) | src[s + b + lo];
        d += 3;
      }
    }
  }
  return { width: w, height: h, channels: oc, depth: 16, data: out };
}

// OpenCV's COLOR_YUV2RGB_UYVY / _YUY2, which cv_bridge uses for 'yuv422' / 'yuv422_yuy2': ITU-R BT.601 with
// limited ("video") range, Y in 16..235 and U, V in 16..240 around 128, in 20-bit fixed point:
//   R = 1.164(Y−16) + 1.596(V−128),  G = 1.164(Y−16) − 0.813(V−128) − 0.391(U−128),  B = 1.164(Y−16) + 2.018(U−128)
// with Y−16 clamped at 0, rounding half up and saturating to 0..255, so results match cv_bridge bit for bit.
const YUV_SHIFT = 20;
const YUV_HALF = 1 << (YUV_SHIFT - 1);
const CY = 1220542;
const CVR = 1673527;
const CVG = -852492;
const CUG = -409993;
const CUB = 2116026;

function decodeYuv422(src: Uint8Array, w: number, h: number, step: number, l: YuvLayout, pool?: BufferPool): DecodedImage {
  const out = pool ? pool.bytes(w * h * 3) : new Uint8Array(w * h * 3);
  // Writes through a clamped view saturate to 0..255 as OpenCV's saturate_cast does (the values are integers).
  const o = new Uint8ClampedArray(out.buffer, out.byteOffset, out.length);
  const { y0: iy, u: iu, v: iv } = l;
  let d = 0;
  for (let y = 0; y < h; y++) {
    for (let s = y * step, end = s + w * 2; s < end; s += 4) {
      const u = src[s + iu] - 128;
      const v = src[s + iv] - 128;
      const ruv = YUV_HALF + CVR * v;
      const guv = YUV_HALF + CVG * v + CUG * u;
      const buv = YUV_HALF + CUB * u;
      let l0 = src[s + iy] - 16;
      l0 = (l0 > 0 ? l0 : 0) * CY;
      o[d] = (l0 + ruv) >> YUV_SHIFT;
      o[d + 1] = (l0 + guv) >> YUV_SHIFT;
      o[d + 2] = (l0 + buv) >> YUV_SHIFT;
      let l1 = src[s + iy + 2] - 16;
      l1 = (l1 > 0 ? l1 : 0) * CY;
      o[d + 3] = (l1 + ruv) >> YUV_SHIFT;
      o[d + 4] = (l1 + guv) >> YUV_SHIFT;
      o[d + 5] = (l1 + buv) >> YUV_SHIFT;
      d += 6;
    }
  }
  return { width: w, height: h, channels: 3, depth: 8, data: out };
}

// Site kinds of a Bayer cell: red, green on a red row, green on a blue row, blue.
const R_SITE = 0;
const G_ON_R_ROW = 1;
const G_ON_B_ROW = 2;
const B_SITE = 3;

function siteKinds(pattern: BayerPattern): [[number, number], [number, number]] {
  const rowKinds = (a: string, b: string): [number, number] => {
    const redRow = a === 'r' || b === 'r';
    const kind = (c: string) => (c === 'r' ? R_SITE : c === 'b' ? B_SITE : redRow ? G_ON_R_ROW : G_ON_B_ROW);
    return [kind(a), kind(b)];
  };
  return [rowKinds(pattern[0], pattern[1]), rowKinds(pattern[2], pattern[3])];
}

/**
 * Bilinear demosaic: each missing colour is the rounded mean of its nearest samples of that colour (the 2 or 4
 * neighbours along the row/column, or the 4 diagonals). Borders are mirrored without repeating the edge pixel
 * (reflect-101), which keeps the colour pattern intact. Sampled sites keep their exact value. OpenCV's
 * COLOR_Bayer*2RGB, which cv_bridge uses, is also bilinear, but this is not verified to match it bit for bit.
 */
function demosaicBilinear(src: Uint8Array, w: number, h: number, step: number, pattern: BayerPattern, pool?: BufferPool): DecodedImage {
  // Copy into a frame with a one-pixel mirrored border so the inner loop needs no bounds checks.
  const pw = w + 2;
  const padded = pool ? pool.bytes(pw * (h + 2)) : new Uint8Array(pw * (h + 2));
  for (let py = 0; py < h + 2; py++) {
    const sy = py === 0 ? 1 : py === h + 1 ? h - 2 : py - 1;
    const row = py * pw;
    padded.set(src.subarray(sy * step, sy * step + w), row + 1);
    padded[row] = padded[row + 2];
    padded[row + w + 1] = padded[row + w - 1];
  }
  const out = pool ? pool.bytes(w * h * 3) : new Uint8Array(w * h * 3);
  const kinds = siteKinds(pattern);
  let d = 0;
  for (let y = 0; y < h; y++) {
    const [k0, k1] = kinds[y & 1];
    let p = (y + 1) * pw + 1;
    for (let x = 0; x < w; x++, p++, d += 3) {
      const c = padded[p];
      const kind = x & 1 ? k1 : k0;
      if (kind === R_SITE || kind === B_SITE) {
        const cross = (padded[p - 1] + padded[p + 1] + padded[p - pw] + padded[p + pw] + 2) >> 2;
        const diag = (padded[p - pw - 1] + padded[p - pw + 1] + padded[p + pw - 1] + padded[p + pw + 1] + 2) >> 2;
        out[d + 1] = cross;
        if (kind === R_SITE) {
          out[d] = c;
          out[d + 2] = diag;
        } else {
          out[d] = diag;
          out[d + 2] = c;
        }
      } else {
        const horiz = (padded[p - 1] + padded[p + 1] + 1) >> 1;
        const vert = (padded[p - pw] + padded[p + pw] + 1) >> 1;
        out[d + 1] = c;
        if (kind === G_ON_R_ROW) {
          out[d] = horiz;
          out[d + 2] = vert;
        } else {
          out[d] = vert;
          out[d + 2] = horiz;
        }
      }
    }
  }
  pool?.give(padded);
  return { width: w, height: h, channels: 3, depth: 8, data: out };
}
