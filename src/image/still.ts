// Loads a still image file (JPEG, PNG, …) with sharp into a normalised 1×3×H×W float tensor, the way a
// torchvision-style preprocessing does it (resize the shorter side, centre crop), for checks against Python.
import { existsSync } from 'node:fs';
import sharp from 'sharp';
import { UserError } from '../errors.js';
import type { Tensor } from '../s2/tensor.js';
import type { Normalization } from './normalize.js';

/** A side for a square (shorter side resized, centre crop) or an exact [height, width]. */
export type StillSize = number | [number, number] | undefined;

export async function loadStillImage(file: string, size: StillSize, norm: Normalization): Promise<Tensor> {
  if (!existsSync(file)) throw new UserError(`${file}: no such image file`);
  let img = sharp(file, { failOn: 'error' }).removeAlpha().toColorspace('srgb');
  if (typeof size === 'number') img = img.resize(size, size, { fit: 'cover', position: 'centre', kernel: 'cubic' });
  else if (size) img = img.resize(size[1], size[0], { fit: 'fill', kernel: 'cubic' });
  let raw: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    raw = await img.raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new UserError(`${file}: cannot decode image (${(e as Error).message.split('\n')[0]})`);
  }
  const { width: w, height: h, channels } = raw.info;
  if (channels !== 3) throw new UserError(`${file}: decoded to ${channels} channels, expected 3 (RGB)`);
  const plane = w * h;
  const out = new Float32Array(3 * plane);
  const d = raw.data;
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * norm.std[c]);
    const shift = norm.mean[c] / norm.std[c];
    for (let i = 0; i < plane; i++) out[c * plane + i] = d[i * 3 + c] * scale - shift;
  }
  return { dims: [1, 3, h, w], data: out };
}
