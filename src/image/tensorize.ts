// Resizes decoded pixels with sharp to a planned geometry and writes the normalised 1×3×H×W float tensor.
import sharp from 'sharp';
import type { Tensor } from '../s2/tensor.js';
import type { DecodedImage } from './decode.js';
import type { GeometryPlan, Rect } from './geometry.js';
import type { Normalization } from './normalize.js';

/**
 * The resampling kernel for every resize: libvips' 'cubic', a Catmull-Rom spline (bicubic, a = −0.5). On
 * downscaling libvips widens the kernel by the scale factor (antialiased), like PIL's BICUBIC that torchvision's
 * default transforms use; it is not PyTorch's non-antialiased F.interpolate(mode='bicubic', a = −0.75).
 */
export const RESIZE_KERNEL = 'cubic' as const;

/** Pixels of `plan.content` size: the image itself when no crop or resize is needed, else sharp's output. */
export async function resizeToPlan(img: DecodedImage, plan: GeometryPlan): Promise<Uint8Array | Uint16Array> {
  const { source, content } = plan;
  const whole = source.left === 0 && source.top === 0 && source.width === img.width && source.height === img.height;
  if (whole && !plan.resized) return img.data;
  const input = img.depth === 8 ? Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength) : img.data;
  let p = sharp(input, { raw: { width: img.width, height: img.height, channels: img.channels } });
  if (!whole) p = p.extract(source);
  if (plan.resized) p = p.resize(content.width, content.height, { fit: 'fill', kernel: RESIZE_KERNEL });
  // Keep the channel count and depth: without this sharp would convert grey to sRGB and 16-bit to 8-bit.
  const space = img.channels === 1 ? (img.depth === 16 ? 'grey16' : 'b-w') : img.depth === 16 ? 'rgb16' : 'srgb';
  const { data, info } = await p
    .toColourspace(space)
    .raw({ depth: img.depth === 16 ? 'ushort' : 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.width !== content.width || info.height !== content.height || info.channels !== img.channels) {
    throw new Error(`sharp produced ${info.width}×${info.height}×${info.channels}, expected ${content.width}×${content.height}×${img.channels}`);
  }
  if (img.depth === 8) return data;
  const aligned = data.byteOffset % 2 === 0 ? data : Buffer.from(data);
  return new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
}

/**
 * Writes pixels (content.width × content.height × channels, row-major) into a new 1×3×H×W tensor at `content`,
 * value = (sample / max − mean[c]) / std[c] with max 255 or 65535; grey fills all three channels. Outside `content`
 * (crop 'pad') every value is that of a black pixel, (0 − mean[c]) / std[c]: zero only for normalisation 'none'.
 */
export function toTensor(
  px: Uint8Array | Uint16Array,
  channels: 1 | 3,
  depth: 8 | 16,
  content: Rect,
  out: readonly [number, number],
  norm: Normalization,
): Tensor {
  const [H, W] = out;
  const plane = H * W;
  const data = new Float32Array(3 * plane);
  const maxValue = depth === 16 ? 65535 : 255;
  const filled = content.left === 0 && content.top === 0 && content.width === W && content.height === H;
  const { left, top, width: cw, height: ch } = content;
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (maxValue * norm.std[c]);
    const shift = norm.mean[c] / norm.std[c];
    const base = c * plane;
    if (!filled) data.fill(-shift, base, base + plane);
    let i = channels === 3 ? c : 0;
    for (let y = 0; y < ch; y++) {
      let o = base + (top + y) * W + left;
      for (const end = o + cw; o < end; o++, i += channels) data[o] = px[i] * scale - shift;
    }
  }
  return { dims: [1, 3, H, W], data };
}
