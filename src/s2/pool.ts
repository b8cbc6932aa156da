// Area resize of B×C×H×W maps, as PyTorch F.interpolate(mode='area'), i.e. adaptive average pooling.
import type { Tensor } from './tensor.js';

/** Output cell i averages input cells floor(i·in/out) … ceil((i+1)·in/out) − 1; works for up- and down-sizing. */
export function areaBounds(inSize: number, outSize: number): Int32Array {
  const b = new Int32Array(outSize * 2);
  for (let i = 0; i < outSize; i++) {
    b[2 * i] = Math.floor((i * inSize) / outSize);
    b[2 * i + 1] = Math.ceil(((i + 1) * inSize) / outSize);
  }
  return b;
}

/**
 * Area-resizes `src` to outH×outW and writes the result into `dst` as channels [channelOffset, channelOffset + C)
 * of a B×dstChannels×outH×outW buffer, so that several scales concatenate on channels without a copy.
 * `valid` limits the source to its top-left validH×validW part (cropping padded features without a copy).
 */
export function areaResizeInto(
  src: Tensor,
  outH: number,
  outW: number,
  dst: Float32Array,
  dstChannels: number,
  channelOffset: number,
  valid?: readonly [number, number],
): void {
  const [b, c, fullH, w] = src.dims;
  const [h, vw] = valid ?? [fullH, w];
  const by = areaBounds(h, outH);
  const bx = areaBounds(vw, outW);
  const s = src.data;
  const identity = h === outH && vw === outW && fullH === h && vw === w;
  for (let n = 0; n < b; n++) {
    for (let ch = 0; ch < c; ch++) {
      const inBase = (n * c + ch) * fullH * w;
      const outBase = (n * dstChannels + channelOffset + ch) * outH * outW;
      if (identity) {
        dst.set(s.subarray(inBase, inBase + h * w), outBase);
        continue;
      }
      for (let oy = 0; oy < outH; oy++) {
        const y0 = by[2 * oy];
        const y1 = by[2 * oy + 1];
        for (let ox = 0; ox < outW; ox++) {
          const x0 = bx[2 * ox];
          const x1 = bx[2 * ox + 1];
          let sum = 0;
          for (let y = y0; y < y1; y++) {
            const row = inBase + y * w;
            for (let x = x0; x < x1; x++) sum += s[row + x];
          }
          dst[outBase + oy * outW + ox] = sum / ((y1 - y0) * (x1 - x0));
        }
      }
    }
  }
}

export function areaResize(src: Tensor, outH: number, outW: number): Tensor {
  const [b, c] = src.dims;
  const data = new Float32Array(b * c * outH * outW);
  areaResizeInto(src, outH, outW, data, c, 0);
  return { dims: [b, c, outH, outW], data };
}
