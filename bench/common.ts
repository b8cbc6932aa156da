// What the benchmarks share: the median they print, and the exact crops S² feeds a backbone (to time it alone).
import { splitChessboardInto } from '../src/s2/chessboard.js';
import { scaleInput } from '../src/s2/multiscale.js';
import type { S2Plan } from '../src/s2/plan.js';
import type { Tensor } from '../src/s2/tensor.js';

/** The median (the mean of the two middle values for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Every scale's crops of `input` in one batch, as multiscaleForward feeds them (one crop size assumed). */
export function planCrops(input: Tensor, plan: S2Plan): Tensor {
  const [ch, cw] = plan.scales[0].cropSize;
  const crops = plan.scales.reduce((n, s) => n + s.numSplit[0] * s.numSplit[1], 0);
  const batch = new Float32Array(crops * 3 * ch * cw);
  let offset = 0;
  for (const s of plan.scales) offset += splitChessboardInto(scaleInput(input, plan, s), s.numSplit[0], s.numSplit[1], batch, offset);
  return { dims: [crops, 3, ch, cw], data: batch };
}
