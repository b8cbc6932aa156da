// The S² options and the per-scale plan derived from them: sizes, crop grids and crop sizes, validated once.

export type OutputShape = 'bnc' | 'bchw';
export type SplitMode = 'resize' | 'pad';
export type Size = number | readonly [number, number];

export interface S2Options {
  /** Scale factors of the input size; a size is int(side × scale), as the reference computes it. */
  scales?: readonly number[];
  /** Explicit sizes per scale: a side length (square) or [height, width]. */
  imgSizes?: readonly Size[];
  /** Largest crop side fed to the backbone; defaults to the input side (square input only). */
  maxSplitSize?: number;
  /** Index of the scale whose feature-grid size all scales are pooled to. */
  resizeOutputToIdx?: number;
  /** Leading non-spatial tokens in a 'bnc' output (CLS, registers). */
  numPrefixToken?: number;
  /** 'bnc': the backbone returns tokens B×N×C; 'bchw': feature maps B×C×h×w. */
  outputShape?: OutputShape;
  /**
   * Any-shape splitting: each scale is resized to its size, then bicubic-resized again ('resize') or zero-padded at
   * the bottom and right ('pad') to whole m×m crops. Unset: the square algorithm, where a scale is cut into
   * ceil(size/m)² equal crops of size/ceil(size/m). Pair sizes or non-square input imply 'resize' when unset.
   */
  splitMode?: SplitMode;
  /** At most this many crops per backbone call (the reference's split_forward, generalised). */
  maxBatch?: number;
}

export interface ScalePlan {
  /** The size the input is bicubic-resized to: [h, w]. */
  size: [number, number];
  /** Crops along height and width. */
  numSplit: [number, number];
  /** The size that is cut into crops: `size`, or for any-shape splitting numSplit × maxSplitSize. */
  splitSize: [number, number];
  cropSize: [number, number];
}

export interface S2Plan {
  batch: number;
  channels: number;
  inputSize: [number, number];
  scales: ScalePlan[];
  anyShape: boolean;
  splitMode: SplitMode | undefined;
  maxSplitSize: number;
  resizeOutputToIdx: number;
  numPrefixToken: number;
  outputShape: OutputShape;
  maxBatch: number | undefined;
}

/** A user-correctable problem with S² options or input; the message is one line naming the option. */
/**
 * The largest side of a scale image, in pixels. A 3×4096×4096 float32 image is 201 MB; sizes above it are refused
 * before anything is allocated (a typo such as 100000 or a scale of 1e9 would otherwise fail deep in an allocation).
 */
export const S2_MAX_SIDE = 4096;

export class S2OptionError extends Error {
  override name = 'S2OptionError';
}

/**
 * An S² option message with the option names (maxSplitSize, …) written as the user wrote them: `name` maps the
 * snake_case name of each option (max_split_size) to its spelling, a config key or a command-line flag.
 */
export function renameS2Options(message: string, name: (snake: string) => string): string {
  return message.replace(/\b(scales|imgSizes|maxSplitSize|resizeOutputToIdx|numPrefixToken|outputShape|splitMode|maxBatch)\b/g, (k) =>
    name(k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)),
  );
}

function positiveInt(value: number, what: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new S2OptionError(`${what} must be a positive integer, got ${value}`);
  return value;
}

export function planScales(inputDims: readonly number[], o: S2Options): S2Plan {
  if (inputDims.length !== 4) throw new S2OptionError(`input must be B×C×H×W, got ${inputDims.length} dimensions [${inputDims.join(', ')}]`);
  const [batch, channels, inH, inW] = inputDims;
  if (o.scales !== undefined && o.imgSizes !== undefined) throw new S2OptionError('give either scales or imgSizes, not both');
  if (o.scales === undefined && o.imgSizes === undefined) throw new S2OptionError('one of scales or imgSizes is required');
  const outputShape = o.outputShape ?? 'bnc';
  if (outputShape !== 'bnc' && outputShape !== 'bchw') throw new S2OptionError(`outputShape must be 'bnc' or 'bchw', got '${String(outputShape)}'`);
  const numPrefixToken = o.numPrefixToken ?? 0;
  if (!Number.isInteger(numPrefixToken) || numPrefixToken < 0) throw new S2OptionError(`numPrefixToken must be a non-negative integer, got ${numPrefixToken}`);
  if (outputShape === 'bchw' && numPrefixToken > 0)
    throw new S2OptionError('numPrefixToken must be 0 with outputShape bchw (feature maps have no prefix tokens)');
  if (o.splitMode !== undefined && o.splitMode !== 'resize' && o.splitMode !== 'pad') {
    throw new S2OptionError(`splitMode must be 'resize' or 'pad', got '${String(o.splitMode)}'`);
  }
  const maxBatch = o.maxBatch === undefined ? undefined : positiveInt(o.maxBatch, 'maxBatch');

  const sizes: [number, number][] = o.imgSizes
    ? o.imgSizes.map((s) => (typeof s === 'number' ? [s, s] : [s[0], s[1]]))
    : (o.scales ?? []).map((s) => {
        if (!(s > 0)) throw new S2OptionError(`scales must be positive, got ${s}`);
        return [Math.trunc(inH * s), Math.trunc(inW * s)];
      });
  if (sizes.length === 0) throw new S2OptionError('at least one scale is required');
  sizes.forEach(([h, w], i) => {
    if (h > S2_MAX_SIDE || w > S2_MAX_SIDE) {
      const from = o.imgSizes ? 'imgSizes' : `scales (${o.scales?.[i]} × the ${inH}×${inW} input)`;
      throw new S2OptionError(`${from}: scale ${i} would be ${h}×${w} pixels, above the limit of ${S2_MAX_SIDE} a side`);
    }
    positiveInt(h, `size of scale ${i} (height)`);
    positiveInt(w, `size of scale ${i} (width)`);
  });
  const resizeOutputToIdx = o.resizeOutputToIdx ?? 0;
  if (!Number.isInteger(resizeOutputToIdx) || resizeOutputToIdx < 0 || resizeOutputToIdx >= sizes.length) {
    throw new S2OptionError(`resizeOutputToIdx ${resizeOutputToIdx} is out of range for ${sizes.length} scales`);
  }

  const pairGiven = (o.imgSizes ?? []).some((s) => typeof s !== 'number');
  const anyShape = o.splitMode !== undefined || pairGiven || inH !== inW;
  if (inH !== inW && o.maxSplitSize === undefined) {
    // The reference takes the crop side from the input's height; the shorter side is offered, and the reference's
    // choice named when it differs.
    const short = Math.min(inH, inW);
    const reference = inH === short ? '' : ` (the reference would take the height, ${inH})`;
    throw new S2OptionError(
      `input is ${inH}×${inW} (not square): maxSplitSize is required; use maxSplitSize ${short} (the shorter side)${reference} ` +
        `for crops of ${short}×${short}, with splitMode resize (the default) or pad to make each scale whole crops`,
    );
  }
  const maxSplitSize = positiveInt(o.maxSplitSize ?? inH, 'maxSplitSize');
  const splitMode = anyShape ? (o.splitMode ?? 'resize') : undefined;

  const scales = sizes.map(([h, w], i): ScalePlan => {
    const numSplit: [number, number] = [Math.ceil(h / maxSplitSize), Math.ceil(w / maxSplitSize)];
    if (anyShape) {
      const splitSize: [number, number] = [numSplit[0] * maxSplitSize, numSplit[1] * maxSplitSize];
      return { size: [h, w], numSplit, splitSize, cropSize: [maxSplitSize, maxSplitSize] };
    }
    if (h % numSplit[0] !== 0) {
      throw new S2OptionError(
        `scale ${i} size ${h} cannot be cut into ${numSplit[0]}×${numSplit[0]} equal crops (maxSplitSize ${maxSplitSize}); ` +
          `use a size divisible by ${numSplit[0]} or splitMode resize|pad`,
      );
    }
    const crop = h / numSplit[0];
    return { size: [h, w], numSplit, splitSize: [h, w], cropSize: [crop, crop] };
  });

  return { batch, channels, inputSize: [inH, inW], scales, anyShape, splitMode, maxSplitSize, resizeOutputToIdx, numPrefixToken, outputShape, maxBatch };
}

/** Backbone calls needed for a plan: crops sharing a size go together, split by maxBatch and by a fixed model batch. */
export function countCalls(plan: S2Plan, fixedBatch?: number): { crops: number; calls: number; groups: Map<string, number> } {
  const groups = cropGroups(plan);
  let calls = 0;
  let crops = 0;
  for (const n of groups.values()) {
    crops += n;
    const perCall = Math.min(plan.maxBatch ?? Infinity, fixedBatch ?? Infinity);
    calls += Number.isFinite(perCall) ? Math.ceil(n / perCall) : 1;
  }
  return { crops, calls, groups };
}

/** Crops per crop size ('h×w'), in first-seen scale order. */
export function cropGroups(plan: S2Plan): Map<string, number> {
  const groups = new Map<string, number>();
  for (const s of plan.scales) {
    const key = `${s.cropSize[0]}×${s.cropSize[1]}`;
    groups.set(key, (groups.get(key) ?? 0) + s.numSplit[0] * s.numSplit[1] * plan.batch);
  }
  return groups;
}
