// multiscaleForward: the S² composition — resize per scale, split into crops, one backbone pass, merge, area-pool
// to one grid, concatenate on channels (prefix tokens averaged per scale and placed first).
import { averagePrefixInto, areaPoolTokensInto, mergeTokens } from './channels-last.js';
import { chessboardRowWriter, mergeChessboard, splitChessboardInto } from './chessboard.js';
import { planScales, S2OptionError, type S2Options, type S2Plan, type ScalePlan } from './plan.js';
import { areaResizeInto } from './pool.js';
import { padBottomRight, resizeBicubic, resizeBicubicRows } from './resize.js';
import { numel, type Tensor } from './tensor.js';

/** Anything that maps a batch of crops N×C×h×w to N×T×C' tokens ('bnc') or N×C'×h'×w' maps ('bchw'). */
export interface Backbone {
  forward(crops: Tensor): Promise<Tensor>;
}

/** Where the time of one multiscaleForward went, in milliseconds, plus the work it did. */
export interface S2Timings {
  resizeMs: number;
  inferenceMs: number;
  mergeMs: number;
  crops: number;
  calls: number;
}

interface CropGroup {
  cropSize: [number, number];
  crops: number;
  batch: Float32Array;
  output?: Tensor;
}

/** Resizes the input to one scale's split size (bicubic, then a second bicubic resize or zero padding if any-shape). */
export function scaleInput(input: Tensor, plan: S2Plan, s: ScalePlan): Tensor {
  const resized = resizeBicubic(input, s.size[0], s.size[1]);
  if (s.splitSize[0] === s.size[0] && s.splitSize[1] === s.size[1]) return resized;
  return plan.splitMode === 'pad' ? padBottomRight(resized, s.splitSize[0], s.splitSize[1]) : resizeBicubic(resized, s.splitSize[0], s.splitSize[1]);
}

/**
 * Resizes the input for one scale and writes its crops into `dst` at `offset`; the last resize feeds crops
 * directly. `given`, when present, is this scale's image already at its size (made from a larger original).
 */
function writeScaleCrops(input: Tensor, plan: S2Plan, s: ScalePlan, dst: Float32Array, offset: number, given?: Tensor): void {
  const [b, c] = input.dims;
  const dims = [b, c, s.splitSize[0], s.splitSize[1]];
  const write = chessboardRowWriter(dims, s.numSplit[0], s.numSplit[1], dst, offset);
  const exact = s.splitSize[0] === s.size[0] && s.splitSize[1] === s.size[1];
  if (given !== undefined) {
    const [gb, gc, gh, gw] = given.dims;
    if (gb !== b || gc !== c || gh !== s.size[0] || gw !== s.size[1]) {
      throw new S2OptionError(`scale image is [${given.dims.join(', ')}], scale ${s.size[0]}×${s.size[1]} needs [${b}, ${c}, ${s.size[0]}, ${s.size[1]}]`);
    }
  }
  const source = given ?? input;
  if (exact) return resizeBicubicRows(source, s.size[0], s.size[1], write);
  const resized = given ?? resizeBicubic(input, s.size[0], s.size[1]);
  if (plan.splitMode === 'resize') return resizeBicubicRows(resized, s.splitSize[0], s.splitSize[1], write);
  splitChessboardInto(padBottomRight(resized, s.splitSize[0], s.splitSize[1]), s.numSplit[0], s.numSplit[1], dst, offset);
}

/** Runs the backbone over a group's crops, at most `maxBatch` per call, and concatenates the outputs. */
async function runGroup(backbone: Backbone, g: CropGroup, channels: number, maxBatch: number | undefined): Promise<{ output: Tensor; calls: number }> {
  const perCrop = channels * g.cropSize[0] * g.cropSize[1];
  const step = Math.min(maxBatch ?? g.crops, g.crops);
  let out: Float32Array | undefined;
  let dims: number[] = [];
  let calls = 0;
  for (let start = 0; start < g.crops; start += step) {
    const n = Math.min(step, g.crops - start);
    const chunk: Tensor = { dims: [n, channels, g.cropSize[0], g.cropSize[1]], data: g.batch.subarray(start * perCrop, (start + n) * perCrop) };
    const res = await backbone.forward(chunk);
    calls++;
    if (res.dims[0] !== n) throw new Error(`backbone returned batch ${res.dims[0]} for ${n} crops`);
    if (n === g.crops) return { output: res, calls };
    const rowSize = numel(res.dims) / n;
    if (!out) {
      dims = [g.crops, ...res.dims.slice(1)];
      out = new Float32Array(g.crops * rowSize);
    } else if (rowSize * g.crops !== out.length) {
      throw new Error(`backbone output shape changed between calls: [${res.dims.join(', ')}]`);
    }
    out.set(res.data, start * rowSize);
  }
  return { output: { dims, data: out ?? new Float32Array(0) }, calls };
}

/** Rows [start, start+count) of a tensor along its first axis, without copying. */
function rows(t: Tensor, start: number, count: number): Tensor {
  const rowSize = numel(t.dims) / t.dims[0];
  return { dims: [count, ...t.dims.slice(1)], data: t.data.subarray(start * rowSize, (start + count) * rowSize) };
}

/** The top-left part of a merged feature grid that covers the unpadded image (all of it unless splitMode is 'pad'). */
function validExtent(plan: S2Plan, s: ScalePlan, fh: number, fw: number): [number, number] {
  if (plan.splitMode !== 'pad') return [fh, fw];
  // Same float expression as the reference, so that ceil lands on the same side.
  return [Math.ceil((s.size[0] / s.splitSize[0]) * fh), Math.ceil((s.size[1] / s.splitSize[1]) * fw)];
}

function assembleBnc(plan: S2Plan, outputs: Tensor[]): Tensor {
  const grids = outputs.map((out, i) => {
    if (out.dims.length !== 3) throw new S2OptionError(`outputShape is bnc but the backbone returned [${out.dims.join(', ')}]; use bchw`);
    const s = plan.scales[i];
    const grid = mergeTokens(out, plan.numPrefixToken, s.numSplit[0], s.numSplit[1]);
    return { grid, valid: validExtent(plan, s, grid.dims[1], grid.dims[2]) };
  });
  const [outH, outW] = grids[plan.resizeOutputToIdx].valid;
  const channels = outputs.reduce((n, o) => n + o.dims[2], 0);
  const p = plan.numPrefixToken;
  const tokens = p + outH * outW;
  const data = new Float32Array(plan.batch * tokens * channels);
  let chOffset = 0;
  grids.forEach(({ grid, valid }, i) => {
    if (p > 0) averagePrefixInto(outputs[i], p, plan.batch, data, tokens, channels, chOffset);
    areaPoolTokensInto(grid, valid[0], valid[1], outH, outW, data, tokens, channels, p, chOffset);
    chOffset += grid.dims[3];
  });
  return { dims: [plan.batch, tokens, channels], data };
}

function assembleBchw(plan: S2Plan, outputs: Tensor[]): Tensor {
  const maps = outputs.map((out, i) => {
    if (out.dims.length !== 4) throw new S2OptionError(`outputShape is bchw but the backbone returned [${out.dims.join(', ')}]; use bnc`);
    const s = plan.scales[i];
    const map = mergeChessboard(out, s.numSplit[0], s.numSplit[1]);
    return { map, valid: validExtent(plan, s, map.dims[2], map.dims[3]) };
  });
  const [outH, outW] = maps[plan.resizeOutputToIdx].valid;
  const channels = maps.reduce((n, m) => n + m.map.dims[1], 0);
  const data = new Float32Array(plan.batch * channels * outH * outW);
  let chOffset = 0;
  for (const { map, valid } of maps) {
    areaResizeInto(map, outH, outW, data, channels, chOffset, valid);
    chOffset += map.dims[1];
  }
  return { dims: [plan.batch, channels, outH, outW], data };
}

/**
 * S² multi-scale features of a B×C×H×W batch, numerically as the reference s2wrapper.forward with the same options.
 * Returns B×(P + h·w)×(C'·S) for 'bnc' and B×(C'·S)×h×w for 'bchw'.
 */
export async function multiscaleForward(
  backbone: Backbone,
  input: Tensor,
  options: S2Options,
  timings?: S2Timings,
  /** Optional per-scale images already at each scale's size; they replace the bicubic resize of `input`. */
  scaleImages?: readonly Tensor[],
): Promise<Tensor> {
  const plan = planScales(input.dims, options);
  if (scaleImages !== undefined && scaleImages.length !== plan.scales.length) {
    throw new S2OptionError(`${scaleImages.length} scale images given for ${plan.scales.length} scales`);
  }
  if (numel(input.dims) !== input.data.length)
    throw new S2OptionError(`input data has ${input.data.length} values, dims [${input.dims.join(', ')}] need ${numel(input.dims)}`);
  const t0 = performance.now();

  // 1. Resize every scale and cut it into crops; crops of one size share one batch buffer (scale order kept).
  const groups = new Map<string, CropGroup>();
  const place: { group: CropGroup; first: number; count: number }[] = [];
  for (const s of plan.scales) {
    const key = `${s.cropSize[0]}×${s.cropSize[1]}`;
    let g = groups.get(key);
    if (!g) {
      g = { cropSize: s.cropSize, crops: 0, batch: new Float32Array(0) };
      groups.set(key, g);
    }
    const count = s.numSplit[0] * s.numSplit[1] * plan.batch;
    place.push({ group: g, first: g.crops, count });
    g.crops += count;
  }
  for (const g of groups.values()) g.batch = new Float32Array(g.crops * plan.channels * g.cropSize[0] * g.cropSize[1]);
  plan.scales.forEach((s, i) => {
    const { group, first } = place[i];
    const offset = first * plan.channels * group.cropSize[0] * group.cropSize[1];
    writeScaleCrops(input, plan, s, group.batch, offset, scaleImages?.[i]);
  });
  const t1 = performance.now();

  // 2. One backbone pass per crop size (chunked by maxBatch).
  let calls = 0;
  for (const g of groups.values()) {
    const r = await runGroup(backbone, g, plan.channels, plan.maxBatch);
    g.output = r.output;
    calls += r.calls;
  }
  const t2 = performance.now();

  // 3. Per scale: merge the crops' outputs, cut any padding, area-pool to one grid, concatenate on channels
  //    (for tokens: prefix tokens averaged over the scale's crops and placed first).
  const outputs = place.map(({ group, first, count }) => rows(group.output as Tensor, first, count));
  const result = plan.outputShape === 'bnc' ? assembleBnc(plan, outputs) : assembleBchw(plan, outputs);
  const t3 = performance.now();

  if (timings) {
    timings.resizeMs = t1 - t0;
    timings.inferenceMs = t2 - t1;
    timings.mergeMs = t3 - t2;
    timings.crops = [...groups.values()].reduce((n, g) => n + g.crops, 0);
    timings.calls = calls;
  }
  return result;
}
