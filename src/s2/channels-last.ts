// The token ('bnc') output path in channels-last layout: crops' tokens are merged into one B×H×W×C grid and
// area-pooled straight into the final B×(P + h·w)×(C·S) tensor, without transposing to maps and back.
// Numerically the same as tokensToMap → mergeChessboard → areaResize → assembleTokens.
import { areaBounds } from './pool.js';
import type { Tensor } from './tensor.js';

/**
 * Merges the spatial tokens of nh×nw·B crops (rows ordered as the chessboard split, each P + g·g tokens of C) into
 * a B×(nh·g)×(nw·g)×C grid.
 */
export function mergeTokens(tokens: Tensor, numPrefix: number, nh: number, nw: number): Tensor {
  const [rows, n, c] = tokens.dims;
  const spatial = n - numPrefix;
  const g = Math.round(Math.sqrt(spatial));
  if (spatial <= 0 || g * g !== spatial) {
    throw new Error(`backbone returned ${n} tokens; with ${numPrefix} prefix tokens the remaining ${spatial} do not form a square grid`);
  }
  const b = rows / (nh * nw);
  const H = nh * g;
  const W = nw * g;
  const out = new Float32Array(b * H * W * c);
  const s = tokens.data;
  for (let i = 0; i < nh; i++) {
    for (let j = 0; j < nw; j++) {
      for (let n0 = 0; n0 < b; n0++) {
        const crop = (i * nw + j) * b + n0;
        for (let gy = 0; gy < g; gy++) {
          // One grid row of this crop is g consecutive tokens, i.e. g·C consecutive floats in both layouts.
          const from = (crop * n + numPrefix + gy * g) * c;
          const to = ((n0 * H + i * g + gy) * W + j * g) * c;
          out.set(s.subarray(from, from + g * c), to);
        }
      }
    }
  }
  return { dims: [b, H, W, c], data: out };
}

/**
 * Area-pools the top-left validH×validW part of a B×H×W×C grid to outH×outW and writes each cell's C values into
 * tokens [tokenOffset + cell] at channels [channelOffset, +C) of `dst`, a B×dstTokens×dstChannels tensor.
 */
export function areaPoolTokensInto(
  grid: Tensor,
  validH: number,
  validW: number,
  outH: number,
  outW: number,
  dst: Float32Array,
  dstTokens: number,
  dstChannels: number,
  tokenOffset: number,
  channelOffset: number,
): void {
  const [b, H, W, c] = grid.dims;
  const by = areaBounds(validH, outH);
  const bx = areaBounds(validW, outW);
  const s = grid.data;
  const acc = new Float64Array(c);
  for (let n = 0; n < b; n++) {
    for (let oy = 0; oy < outH; oy++) {
      const y0 = by[2 * oy];
      const y1 = by[2 * oy + 1];
      for (let ox = 0; ox < outW; ox++) {
        const x0 = bx[2 * ox];
        const x1 = bx[2 * ox + 1];
        const to = (n * dstTokens + tokenOffset + oy * outW + ox) * dstChannels + channelOffset;
        if (y1 - y0 === 1 && x1 - x0 === 1) {
          const from = ((n * H + y0) * W + x0) * c;
          dst.set(s.subarray(from, from + c), to);
          continue;
        }
        acc.fill(0);
        for (let y = y0; y < y1; y++) {
          for (let x = x0; x < x1; x++) {
            const from = ((n * H + y) * W + x) * c;
            for (let k = 0; k < c; k++) acc[k] += s[from + k];
          }
        }
        const inv = 1 / ((y1 - y0) * (x1 - x0));
        for (let k = 0; k < c; k++) dst[to + k] = acc[k] * inv;
      }
    }
  }
}

/** Averages one scale's prefix tokens over its crops into dst tokens [0, P) at channels [channelOffset, +C). */
export function averagePrefixInto(
  tokens: Tensor,
  numPrefix: number,
  batch: number,
  dst: Float32Array,
  dstTokens: number,
  dstChannels: number,
  channelOffset: number,
): void {
  const [rows, n, c] = tokens.dims;
  const crops = rows / batch;
  const s = tokens.data;
  for (let b = 0; b < batch; b++) {
    for (let p = 0; p < numPrefix; p++) {
      const to = (b * dstTokens + p) * dstChannels + channelOffset;
      for (let k = 0; k < c; k++) {
        let sum = 0;
        for (let crop = 0; crop < crops; crop++) sum += s[((crop * batch + b) * n + p) * c + k];
        dst[to + k] = sum / crops;
      }
    }
  }
}
