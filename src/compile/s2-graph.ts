// The S² steps around the backbone as ONNX operators: per scale the resize and chessboard split in one banded
// form (two batched products of short tap windows, which also fold in the second resize or zero padding of
// any-shape splitting, and write the crops in the backbone's batch order), one backbone call per crop size (a
// placeholder node the compiler replaces by the inlined backbone), merge, area pooling (constant matrix products
// that also crop padded features), prefix averaging, concatenation.
import type { Layout } from '../backbone/layout.js';
import { OnnxGraph, type Dim } from '../onnx/builder.js';
import type { S2Plan, ScalePlan } from '../s2/plan.js';
import { areaMatrix, bicubicMatrix, isIdentity, multiply, padRows, tileRows, tileSizeFor, toFloat32, type Matrix } from './matrices.js';

/** The op type of the node standing for one inlined backbone call. */
export const BACKBONE_PLACEHOLDER = 'S2BackbonePlaceholder';

export const COMPILED_INPUT = 'image';
export const COMPILED_OUTPUT = 'features';

/**
 * Where a compiled model's scales come from, named as the config's image.resize: 'reference' resizes every scale
 * from the base image `image`; 'native' takes each scale's image at its size (`image_scale0`, …), as the ingester
 * makes them from the camera frame.
 */
export type CompiledResize = 'reference' | 'native';

/** The input holding scale i's images with resize 'native'. */
export const scaleInputName = (i: number): string => `${COMPILED_INPUT}_scale${i}`;

export interface BackboneCall {
  /** Crop size 'h×w'. */
  key: string;
  cropsName: string;
  outputName: string;
}

export interface S2Graph {
  graph: OnnxGraph;
  calls: BackboneCall[];
  outputDims: Dim[];
}

/** The matrix taking one axis of the input to a scale's split size: bicubic resize, then resize again or pad. */
export function scaleAxisMatrix(inSize: number, size: number, splitSize: number, splitMode: S2Plan['splitMode']): Matrix {
  const first = bicubicMatrix(inSize, size);
  if (splitSize === size) return first;
  return splitMode === 'pad' ? padRows(first, splitSize) : multiply(bicubicMatrix(size, splitSize), first);
}

/** The image a scale's crops are cut from: [B, C, H, W], and (made once, on demand) its transpose [W, B, C, H]. */
export interface CropSource {
  x: string;
  C: number;
  H: number;
  W: number;
  transposed: () => string;
}

/**
 * One scale's crops [nh·nw·B, C, ch, cw], crop (i, j) of image b at batch index (i·nw + j)·B + b as chessboard.ts
 * orders them, from the axis matrices `mh` (sh×H) and `mw` (sw×W) that take the source to the split size.
 *
 * A dense product costs one multiply-add per input column for every output (448 per output for 224 → 448), where
 * bicubic needs 4 taps; so each matrix is cut into tiles of output rows that read only a short window of inputs
 * (tileRows), and the crops come out of the products in the backbone's layout:
 *   width:  gather the windows of the transposed source [W, B, C, H] on its leading axis, one batched product
 *           [Qw, tw, Lw]·[Qw, Lw, B·C·H] → [nw, cw, B, C, H], move cw last;
 *   height: gather the row windows (whole cw-long rows), move the crop row i first, one batched product
 *           [nh, 1, qh, th, Lh]·[nh, nw·B·C, qh, Lh, cw] → [nh, nw, B, C, ch, cw].
 * Every transpose moves one axis of a tensor smaller than the crops, which onnxruntime copies in blocks; transposes
 * that reorder the innermost axis otherwise, and gathers along the last axis, measured several times slower. (The
 * dense form also copied the whole resized image once more to split it.)
 */
export function emitCrops(g: OnnxGraph, src: CropSource, mh: Matrix, mw: Matrix, s: ScalePlan, prefix: string): string {
  const { C } = src;
  const [nh, nw] = s.numSplit;
  const [ch, cw] = s.cropSize;
  if (isIdentity(mh) && isIdentity(mw)) {
    // No resampling: the split alone, which keeps each cw-long row whole.
    if (nh * nw === 1) return src.x;
    const six = g.op('Reshape', [src.x, g.ints([-1, C, nh, ch, nw, cw])]);
    return g.op('Reshape', [g.op('Transpose', [six], { perm: [2, 4, 0, 1, 3, 5] }), g.ints([-1, C, ch, cw])]);
  }
  const rw = tileRows(mw, tileSizeFor(cw));
  const rh = tileRows(mh, tileSizeFor(ch));
  const qh = ch / rh.tile;
  const windows = (t: { tiles: number; length: number; starts: number[] }): number[] =>
    Array.from({ length: t.tiles * t.length }, (_, k) => t.starts[Math.floor(k / t.length)] + (k % t.length));
  const gather = (y: string, t: typeof rw, size: number, axis: number): string => {
    const idx = windows(t);
    // Windows that are the axis itself, in order, need no copy.
    return idx.length === size && idx.every((v, k) => v === k) ? y : g.op('Gather', [y, g.ints(idx)], { axis });
  };

  let y = gather(src.transposed(), rw, src.W, 0); // [Qw·Lw, B, C, H]
  y = g.op('Reshape', [y, g.ints([rw.tiles, rw.length, -1])]);
  y = g.op('MatMul', [g.weight(`${prefix}_resize_w`, [rw.tiles, rw.tile, rw.length], rw.weights), y]); // [Qw, tw, B·C·H]
  y = g.op('Reshape', [y, g.ints([nw, cw, -1, C, src.H])]);
  y = g.op('Transpose', [y], { perm: [0, 2, 3, 4, 1] }); // [nw, B, C, H, cw]
  y = gather(y, rh, src.H, 3); // [nw, B, C, Qh·Lh, cw]
  if (nh > 1) {
    y = g.op('Reshape', [y, g.ints([nw, -1, C, nh, qh * rh.length * cw])]);
    y = g.op('Transpose', [y], { perm: [3, 0, 1, 2, 4] }); // [nh, nw, B, C, qh·Lh·cw]
  }
  y = g.op('Reshape', [y, g.ints([nh, -1, qh, rh.length, cw])]);
  y = g.op('MatMul', [g.weight(`${prefix}_resize_h`, [nh, 1, qh, rh.tile, rh.length], rh.weights), y]); // [nh, nw·B·C, qh, th, cw]
  return g.op('Reshape', [y, g.ints([-1, C, ch, cw])]);
}

/** The part of a merged feature grid that covers the unpadded image, with the same float expression as multiscale.ts. */
function validExtent(plan: S2Plan, s: ScalePlan, fh: number, fw: number): [number, number] {
  if (plan.splitMode !== 'pad') return [fh, fw];
  return [Math.ceil((s.size[0] / s.splitSize[0]) * fh), Math.ceil((s.size[1] / s.splitSize[1]) * fw)];
}

export function buildS2Graph(plan: S2Plan, layouts: Map<string, Layout>, resize: CompiledResize = 'reference'): S2Graph {
  const g = new OnnxGraph('s2');
  const [H, W] = plan.inputSize;
  const C = plan.channels;
  const x = resize === 'reference' ? g.input(COMPILED_INPUT, ['batch', C, H, W]) : '';

  // Resize and split every scale; crops of one size are stacked on the batch axis for a single backbone call.
  interface Member {
    scale: number;
    crops: string;
    n: number;
  }
  const groups = new Map<string, Member[]>();
  let transposed: string | undefined;
  const source: CropSource = { x, C, H, W, transposed: () => (transposed ??= g.op('Transpose', [x], { perm: [3, 0, 1, 2] })) };
  plan.scales.forEach((s, i) => {
    // resize 'native': the image comes at the scale's size, so only the step to the split size is left (a bicubic
    // matrix at equal sizes is the identity, as multiscale.ts copies a given image that is already split-sized).
    let src = source;
    if (resize === 'native') {
      const [h, w] = s.size;
      const xi = g.input(scaleInputName(i), ['batch', C, h, w]);
      let t: string | undefined;
      src = { x: xi, C, H: h, W: w, transposed: () => (t ??= g.op('Transpose', [xi], { perm: [3, 0, 1, 2] })) };
    }
    const mh = scaleAxisMatrix(src.H, s.size[0], s.splitSize[0], plan.splitMode);
    const mw = scaleAxisMatrix(src.W, s.size[1], s.splitSize[1], plan.splitMode);
    const y = emitCrops(g, src, mh, mw, s, `s2_scale${i}`);
    const [ch, cw] = s.cropSize;
    const key = `${ch}×${cw}`;
    const list = groups.get(key) ?? [];
    list.push({ scale: i, crops: y, n: s.numSplit[0] * s.numSplit[1] });
    groups.set(key, list);
  });

  const calls: BackboneCall[] = [];
  const perScale = new Array<{ out: string; offset: number; total: number }>(plan.scales.length);
  let k = 0;
  for (const [key, members] of groups) {
    const crops =
      members.length === 1
        ? members[0].crops
        : g.op(
            'Concat',
            members.map((m) => m.crops),
            { axis: 0 },
          );
    const outputName = `backbone_out_${k}`;
    g.op(BACKBONE_PLACEHOLDER, [crops], {}, outputName);
    calls.push({ key, cropsName: crops, outputName });
    const total = members.reduce((a, m) => a + m.n, 0);
    let offset = 0;
    for (const m of members) {
      perScale[m.scale] = { out: outputName, offset, total };
      offset += m.n;
    }
    k++;
  }

  const layoutOf = (s: ScalePlan): Layout => {
    const l = layouts.get(`${s.cropSize[0]}×${s.cropSize[1]}`);
    if (!l) throw new Error(`no layout for crop size ${s.cropSize[0]}×${s.cropSize[1]}`);
    return l;
  };
  // Feature-grid sizes per scale, and the pooled size every scale goes to.
  const grids = plan.scales.map((s) => {
    const l = layoutOf(s);
    const fh = l.grid[0] * s.numSplit[0];
    const fw = l.grid[1] * s.numSplit[1];
    return { l, fh, fw, valid: validExtent(plan, s, fh, fw) };
  });
  const [oH, oW] = grids[plan.resizeOutputToIdx].valid;

  /** This scale's rows of its backbone call's output, reshaped to [n, B, …per-crop dims]. */
  const scaleRows = (i: number, perCrop: number[]): string => {
    const { out, offset, total } = perScale[i];
    const n = plan.scales[i].numSplit[0] * plan.scales[i].numSplit[1];
    const r = g.op('Reshape', [out, g.ints([total, -1, ...perCrop])]);
    return n === total ? r : g.op('Slice', [r, g.ints([offset]), g.ints([offset + n]), g.ints([0])]);
  };

  const bnc = plan.outputShape === 'bnc';
  const P = plan.numPrefixToken;
  const spatial: string[] = [];
  const prefixes: string[] = [];
  let channels = 0;
  plan.scales.forEach((s, i) => {
    const { l, fh, fw, valid } = grids[i];
    const [nh, nw] = s.numSplit;
    const n = nh * nw;
    const D = l.channels;
    channels += D;
    const [gh, gw] = l.grid;
    const ph = areaMatrix(fh, valid[0], oH);
    const pw = areaMatrix(fw, valid[1], oW);
    if (bnc) {
      const T = P + gh * gw;
      const rowsT = scaleRows(i, [T, D]); // [n, B, T, D]
      if (P > 0) {
        const pre = g.op('Slice', [rowsT, g.ints([0]), g.ints([P]), g.ints([2])]);
        const sum = g.op('ReduceSum', [pre, g.ints([0])], { keepdims: 0 }); // [B, P, D]
        prefixes.push(n === 1 ? sum : g.op('Div', [sum, g.scalar(n)]));
      }
      const sp = P > 0 ? g.op('Slice', [rowsT, g.ints([P]), g.ints([T]), g.ints([2])]) : rowsT;
      // Channels-last grid [B, fh, fw, D].
      let grid: string;
      if (n === 1) grid = g.op('Reshape', [sp, g.ints([-1, gh, gw, D])]);
      else {
        const six = g.op('Reshape', [sp, g.ints([nh, nw, -1, gh, gw, D])]);
        grid = g.op('Reshape', [g.op('Transpose', [six], { perm: [2, 0, 3, 1, 4, 5] }), g.ints([-1, fh, fw, D])]);
      }
      if (!isIdentity(pw)) grid = g.op('MatMul', [g.weight(`s2_scale${i}_pool_w`, [oW, fw], toFloat32(pw)), grid]); // [B, fh, oW, D]
      let flat = g.op('Reshape', [grid, g.ints([-1, fh, oW * D])]);
      if (!isIdentity(ph)) flat = g.op('MatMul', [g.weight(`s2_scale${i}_pool_h`, [oH, fh], toFloat32(ph)), flat]); // [B, oH, oW·D]
      spatial.push(g.op('Reshape', [flat, g.ints([-1, oH * oW, D])]));
    } else {
      const rowsM = scaleRows(i, [D, gh, gw]); // [n, B, D, gh, gw]
      let map: string;
      if (n === 1) map = g.op('Reshape', [rowsM, g.ints([-1, D, gh, gw])]);
      else {
        const six = g.op('Reshape', [rowsM, g.ints([nh, nw, -1, D, gh, gw])]);
        map = g.op('Reshape', [g.op('Transpose', [six], { perm: [2, 3, 0, 4, 1, 5] }), g.ints([-1, D, fh, fw])]);
      }
      if (!isIdentity(pw)) map = g.op('MatMul', [map, g.weight(`s2_scale${i}_pool_w`, [fw, oW], toFloat32(pw, true))]);
      if (!isIdentity(ph)) map = g.op('MatMul', [g.weight(`s2_scale${i}_pool_h`, [oH, fh], toFloat32(ph)), map]);
      spatial.push(map);
    }
  });

  const cat = (xs: string[], axis: number, name?: string): string =>
    xs.length === 1 && name === undefined ? xs[0] : g.op(xs.length === 1 ? 'Identity' : 'Concat', xs, xs.length === 1 ? {} : { axis }, name);
  let outputDims: Dim[];
  if (bnc) {
    const sp = cat(spatial, 2);
    if (P > 0) cat([cat(prefixes, 2), sp], 1, COMPILED_OUTPUT);
    else cat([sp], 2, COMPILED_OUTPUT);
    outputDims = ['batch', P + oH * oW, channels];
  } else {
    cat(spatial, 1, COMPILED_OUTPUT);
    outputDims = ['batch', channels, oH, oW];
  }
  g.output(COMPILED_OUTPUT, outputDims);
  return { graph: g, calls, outputDims };
}
