// The PyTorch golden values (test/golden/data, made by test/golden/make_golden.py): their index, loading, the
// acceptance bound and the S² options of a case, shared by every suite that checks against them.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy } from '../../src/io/npy.js';
import type { PresetName } from '../../src/models/zoo.js';
import type { S2Options, Size } from '../../src/s2/plan.js';
import { GOLDEN, maxAbsDiff, rms } from './util.js';

export interface GoldenS2Case {
  name: string;
  preset: PresetName;
  input: string;
  output: string;
  options: {
    imgSizes?: (number | [number, number])[];
    scales?: number[];
    maxSplitSize: number | null;
    numPrefixToken: number;
    outputShape: 'bnc' | 'bchw';
    resizeOutputToIdx: number;
    splitMode: 'resize' | 'pad' | null;
  };
}

export interface GoldenIndex {
  interp: { name: string; mode: 'bicubic' | 'area'; input: string; output: string; size: [number, number] }[];
  models: { preset: PresetName; input: string; output: string }[];
  s2: GoldenS2Case[];
}

export const goldenIndex = JSON.parse(readFileSync(join(GOLDEN, 'index.json'), 'utf8')) as GoldenIndex;

/** A golden .npy by its file name. */
export const loadGolden = (f: string) => readNpy(join(GOLDEN, f));

/** The acceptance bound: max |error| ≤ 1e-4 × RMS of the expected output. */
export function assertClose(actual: Float32Array, expected: Float32Array, what: string, rel = 1e-4): void {
  const err = maxAbsDiff(actual, expected);
  const bound = rel * rms(expected);
  assert.ok(err <= bound, `${what}: max error ${err.toExponential(3)} > ${bound.toExponential(3)} (${rel} × RMS)`);
}

/** A case's S² options; `layout: false` leaves the prefix count and output shape to detection. */
export function goldenOptions(o: GoldenS2Case['options'], layout = true): S2Options {
  const out: S2Options = layout
    ? { numPrefixToken: o.numPrefixToken, outputShape: o.outputShape, resizeOutputToIdx: o.resizeOutputToIdx }
    : { resizeOutputToIdx: o.resizeOutputToIdx };
  if (o.imgSizes) out.imgSizes = o.imgSizes.map((s): Size => (typeof s === 'number' ? s : [s[0], s[1]]));
  if (o.scales) out.scales = o.scales;
  if (o.maxSplitSize !== null) out.maxSplitSize = o.maxSplitSize;
  if (o.splitMode !== null) out.splitMode = o.splitMode;
  return out;
}
