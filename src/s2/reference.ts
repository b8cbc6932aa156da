// The readable S²: the reference wrapper's multiscale_forward step by step, one plain function per step and one
// backbone call per scale, as s2wrapper does it. multiscaleForward (multiscale.ts) is the fast path that fuses these
// steps (crops written straight from the resize, one call per crop size, tokens merged and pooled channels-last); a
// property test holds it equal to this one. See README.md in this folder for the mapping to the reference.
import { mergeChessboard, splitChessboard } from './chessboard.js';
import { scaleInput, type Backbone } from './multiscale.js';
import { planScales, S2OptionError, type S2Options, type S2Plan, type ScalePlan } from './plan.js';
import { areaResize } from './pool.js';
import type { Tensor } from './tensor.js';

/** Runs the backbone on at most `maxBatch` crops at a time (the reference's batched_forward) and stacks the outputs. */
export async function batchedForward(backbone: Backbone, crops: Tensor, maxBatch?: number): Promise<Tensor> {
  const n = crops.dims[0];
  const step = Math.min(maxBatch ?? n, n);
  const per = crops.data.length / n;
  const parts: Tensor[] = [];
  for (let s = 0; s < n; s += step) {
    const k = Math.min(step, n - s);
    parts.push(await backbone.forward({ dims: [k, ...crops.dims.slice(1)], data: crops.data.subarray(s * per, (s + k) * per) }));
  }
  if (parts.length === 1) return parts[0];
  const data = new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
  let o = 0;
  for (const p of parts) {
    data.set(p.data, o);
    o += p.data.length;
  }
  return { dims: [n, ...parts[0].dims.slice(1)], data };
}

/** out[:, :p] and out[:, p:] of an N×T×C token tensor. */
export function splitPrefix(tokens: Tensor, p: number): { prefix: Tensor; spatial: Tensor } {
  const [n, t, c] = tokens.dims;
  const prefix = new Float32Array(n * p * c);
  const spatial = new Float32Array(n * (t - p) * c);
  for (let i = 0; i < n; i++) {
    prefix.set(tokens.data.subarray(i * t * c, (i * t + p) * c), i * p * c);
    spatial.set(tokens.data.subarray((i * t + p) * c, (i + 1) * t * c), i * (t - p) * c);
  }
  return { prefix: { dims: [n, p, c], data: prefix }, spatial: { dims: [n, t - p, c], data: spatial } };
}

/** rearrange 'b (h w) c -> b c h w' with h = w = √T, as the reference does. */
export function tokensToMap(tokens: Tensor): Tensor {
  const [n, t, c] = tokens.dims;
  const g = Math.round(Math.sqrt(t));
  if (g * g !== t) throw new S2OptionError(`backbone returned ${t} spatial tokens, which do not form a square grid`);
  const out = new Float32Array(n * c * t);
  for (let i = 0; i < n; i++) for (let k = 0; k < t; k++) for (let ch = 0; ch < c; ch++) out[(i * c + ch) * t + k] = tokens.data[(i * t + k) * c + ch];
  return { dims: [n, c, g, g], data: out };
}

/** rearrange 'b c h w -> b (h w) c'. */
export function mapToTokens(map: Tensor): Tensor {
  const [n, c, h, w] = map.dims;
  const t = h * w;
  const out = new Float32Array(n * t * c);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let k = 0; k < t; k++) out[(i * t + k) * c + ch] = map.data[(i * c + ch) * t + k];
  return { dims: [n, t, c], data: out };
}

/** The top-left h×w part of a B×C×H×W map (the any-shape 'pad' variant cuts the padding off here). */
export function cropTopLeft(map: Tensor, h: number, w: number): Tensor {
  const [b, c, H, W] = map.dims;
  if (h === H && w === W) return map;
  const out = new Float32Array(b * c * h * w);
  for (let p = 0; p < b * c; p++) for (let y = 0; y < h; y++) out.set(map.data.subarray(p * H * W + y * W, p * H * W + y * W + w), (p * h + y) * w);
  return { dims: [b, c, h, w], data: out };
}

/** torch.cat(maps, dim=1) for B×Cᵢ×h×w maps, or dim=-1 for B×T×Cᵢ tokens. */
export function concatLastOrChannels(parts: Tensor[], axis: 'channels' | 'last'): Tensor {
  const b = parts[0].dims[0];
  const inner = axis === 'channels' ? parts[0].dims[2] * parts[0].dims[3] : 1;
  const rows = axis === 'channels' ? 1 : parts[0].dims[1];
  const widths = parts.map((p) => (axis === 'channels' ? p.dims[1] : p.dims[2]));
  const total = widths.reduce((a, x) => a + x, 0);
  const out = new Float32Array(b * rows * total * inner);
  for (let i = 0; i < b * rows; i++) {
    let o = 0;
    parts.forEach((p, k) => {
      const len = widths[k] * inner;
      out.set(p.data.subarray(i * len, (i + 1) * len), (i * total + o) * inner);
      o += widths[k];
    });
  }
  return { dims: axis === 'channels' ? [b, total, parts[0].dims[2], parts[0].dims[3]] : [b, rows, total], data: out };
}

/** torch.stack(prefix.split(b), 0).mean(0): the prefix tokens averaged over one scale's crops. */
export function meanOverCrops(prefix: Tensor, b: number): Tensor {
  const [n, p, c] = prefix.dims;
  const crops = n / b;
  const per = p * c;
  const acc = new Float64Array(b * per);
  for (let k = 0; k < crops; k++) for (let i = 0; i < b * per; i++) acc[i] += prefix.data[k * b * per + i];
  return { dims: [b, p, c], data: Float32Array.from(acc, (v) => v / crops) };
}

/** The part of a merged grid that covers the unpadded image, with the reference's own float expression. */
function validSize(plan: S2Plan, s: ScalePlan, h: number, w: number): [number, number] {
  if (plan.splitMode !== 'pad') return [h, w];
  return [Math.ceil((s.size[0] / s.splitSize[0]) * h), Math.ceil((s.size[1] / s.splitSize[1]) * w)];
}

/** S² of a B×C×H×W batch, the reference's steps one to one. */
export async function multiscaleForwardReference(backbone: Backbone, input: Tensor, options: S2Options): Promise<Tensor> {
  const plan = planScales(input.dims, options);
  const b = plan.batch;
  const p = plan.numPrefixToken;
  const maps: Tensor[] = [];
  const prefixes: Tensor[] = [];
  for (const s of plan.scales) {
    // 1. resize (and, any-shape, resize again or pad to whole crops); 2. split into a chessboard of crops
    const crops = splitChessboard(scaleInput(input, plan, s), s.numSplit[0], s.numSplit[1]);
    // 3. the backbone on this scale's crops
    let out = await batchedForward(backbone, crops, plan.maxBatch);
    // 4. prefix tokens apart; tokens to maps
    if (plan.outputShape === 'bnc') {
      if (out.dims.length !== 3) throw new S2OptionError(`outputShape is bnc but the backbone returned [${out.dims.join(', ')}]; use bchw`);
      if (p > 0) {
        const parts = splitPrefix(out, p);
        prefixes.push(meanOverCrops(parts.prefix, b));
        out = parts.spatial;
      }
      out = tokensToMap(out);
    } else if (out.dims.length !== 4) throw new S2OptionError(`outputShape is bchw but the backbone returned [${out.dims.join(', ')}]; use bnc`);
    // 5. merge the crops back into one map per image, without the padding
    const merged = mergeChessboard(out, s.numSplit[0], s.numSplit[1]);
    const [vh, vw] = validSize(plan, s, merged.dims[2], merged.dims[3]);
    maps.push(cropTopLeft(merged, vh, vw));
  }
  // 6. area-pool every scale to the grid of scale resize_output_to_idx, 7. concatenate on channels
  const [oh, ow] = maps[plan.resizeOutputToIdx].dims.slice(2);
  const pooled = concatLastOrChannels(
    maps.map((m) => areaResize(m, oh, ow)),
    'channels',
  );
  if (plan.outputShape === 'bchw') return pooled;
  // 8. back to tokens, with the averaged prefix tokens of every scale first
  const tokens = mapToTokens(pooled);
  if (p === 0) return tokens;
  const prefix = concatLastOrChannels(prefixes, 'last');
  const [, t, c] = tokens.dims;
  const out = new Float32Array(b * (p + t) * c);
  for (let i = 0; i < b; i++) {
    out.set(prefix.data.subarray(i * p * c, (i + 1) * p * c), i * (p + t) * c);
    out.set(tokens.data.subarray(i * t * c, (i + 1) * t * c), (i * (p + t) + p) * c);
  }
  return { dims: [b, p + t, c], data: out };
}
