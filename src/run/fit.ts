// Fitting a policy head from a folder of demonstrations (written by `sim collect` or `extract`): the linear ridge
// probe, the keypoint head, the detector head or the behaviour-cloning head, written as ONNX with its statistics beside it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { readNpy, readNpyArray } from '../io/npy.js';
import { fitController, fitDetector, writeDetectorPolicy } from '../policy/detector.js';
import { coveringChunk, fitPolicy, policyPaths, shortestEpisode, stackChunks, writePolicy, type LambdaScore } from '../policy/fit.js';
import { fitKeypointHead, writeKeypointPolicy } from '../policy/keypoint.js';
import { fitBc, writeBcPolicy } from '../policy/bc.js';
import { fitHindsight, type ArmCalibration } from '../policy/hindsight.js';
import { readBcFolder } from './fit-bc.js';
import type { Tensor } from '../s2/tensor.js';
import { DEMO_RECIPE } from '../sim/closed-loop.js';

export type HeadKind = 'linear' | 'keypoint' | 'detector' | 'bc';
export const HEAD_KINDS: readonly HeadKind[] = ['linear', 'keypoint', 'detector', 'bc'];

/** Processing time assumed when the data does not say (extract does not time the backbone on the target machine). */
export const DEFAULT_PROCESSING_MS = 50;
/** Control rate assumed for the default chunk when none is given. */
export const DEFAULT_RATE_HZ = 20;

export interface FitOptions {
  /** Folder of .npy files and index.json. */
  data: string;
  /** The model file; its statistics go beside it (policyPaths). */
  out: string;
  head?: HeadKind;
  /** Chunk length; by default the shortest that covers a frame period plus processing at the control rate. */
  chunk?: number;
  lambdas?: number[];
  epochs?: number;
  rateHz?: number;
  framePeriodMs?: number;
  processingMs?: number;
  /** Told the chosen default chunk before the (possibly long) fit starts. */
  onChunk?: (c: ChunkChoice) => void;
  /** bc head: the seed of its initialisation and shuffling (default 17). */
  seed?: number;
  /** bc head: 'hindsight' (self-calibrated keypoint labels and the detector head's training; the default) or 'end-to-end'. */
  recipe?: BcRecipe;
  /** bc head: one line per epoch. */
  log?: (line: string) => void;
}

/** How the default chunk length was chosen. */
export interface ChunkChoice {
  chunk: number;
  periodMs: number;
  processingMs: number;
  rateHz: number;
}

interface FitCommon {
  files: { model: string; stats: string };
  featureDim: number;
  stateDim: number;
  chunk: number;
  actionDim: number;
}

export interface LinearFitResult extends FitCommon {
  head: 'linear';
  lambda: number;
  scores: LambdaScore[];
  selection: { note: string; meanMse: number };
  warnings: string[];
}

export interface KeypointFitResult extends FitCommon {
  head: 'keypoint';
  trainMse: number;
  seconds: number;
}

export interface DetectorFitResult extends FitCommon {
  head: 'detector';
  frames: number;
  detector: { medianCells: number; withinOne: number; temperature: number; seconds: number };
  controller: { rows: number; trainMse: number; seconds: number };
}

export type BcRecipe = 'hindsight' | 'end-to-end';
export const BC_RECIPES: readonly BcRecipe[] = ['hindsight', 'end-to-end'];

export interface BcFitResult extends FitCommon {
  head: 'bc';
  recipe: 'end-to-end';
  rows: number;
  frames: number;
  episodes: number;
  /** Standardised action-chunk MSE at the kept epoch: training, held-out, and the held-out mean chunk's. */
  trainMse: number;
  heldOutMse: number;
  heldOutMeanMse: number;
  heldOutEpisodes: number;
  heldOutRows: number;
  bestEpoch: number;
  epochsRun: number;
  seconds: number;
}

/** The bc head's hindsight recipe (src/policy/hindsight.ts): a detector head fitted on self-supervised labels. */
export interface BcHindsightFitResult extends FitCommon {
  head: 'bc';
  recipe: 'hindsight';
  rows: number;
  frames: number;
  episodes: number;
  calibration: ArmCalibration;
  /** Frames the detector was fitted on, its held-out error against the labels (cells), its temperature. */
  detector: { frames: number; medianCells: number; withinOne: number; temperature: number };
  controller: { rows: number; trainMse: number };
  seconds: number;
}

export type FitResult = LinearFitResult | KeypointFitResult | DetectorFitResult | BcFitResult | BcHindsightFitResult;

interface DataIndex {
  /** Slowest camera's frame period, ms (sim collect writes it; extract's stamps give it otherwise). */
  frame_period_ms?: number;
  /** Measured S² processing time per frame, ms. */
  processing_ms?: number;
  pool?: string;
  grid_height?: number;
  grid_width?: number;
  chunk?: number;
  features?: { pooling?: string };
  channels?: number;
  s2?: { channels?: number; scale_sizes?: unknown[]; output_shape?: string };
}

function readIndex(dir: string): DataIndex {
  const file = join(dir, 'index.json');
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as DataIndex;
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
}

/**
 * Median spacing of the recording's group stamps, ms, when extract wrote them. extract writes int64 nanoseconds;
 * float32 stamps (in ns) are read too. Differences are taken before converting, so that int64 stamps of 1.7e18 ns
 * keep their nanoseconds (a double holds them only to 256 ns).
 */
export function stampPeriodMs(dir: string): number | undefined {
  const file = join(dir, 'stamps_ns.npy');
  if (!existsSync(file)) return undefined;
  const { data } = readNpyArray(file);
  const d: number[] = [];
  for (let i = 1; i < data.length; i++) {
    const ns = data instanceof BigInt64Array ? Number(data[i] - data[i - 1]) : data[i] - data[i - 1];
    if (ns > 0) d.push(ns / 1e6);
  }
  d.sort((a, b) => a - b);
  return d.length > 0 ? d[Math.floor(d.length / 2)] : undefined;
}

/** Fits the head named by `o.head` (linear by default) on the folder `o.data` and writes it to `o.out`. */
export async function fitHead(o: FitOptions): Promise<FitResult> {
  const head = o.head ?? 'linear';
  if (!HEAD_KINDS.includes(head)) throw new UserError(`fit: head must be ${HEAD_KINDS.join(', ')}, got '${String(head)}'`);
  const paths = policyPaths(o.out);
  const index = readIndex(o.data);
  if (head === 'detector') return fitDetectorHead(o.data, index, o.epochs, paths);
  const dir = o.data;
  if (head === 'bc') return fitBcHead(o, index, paths);
  if (existsSync(join(dir, 'frame_of.npy')))
    throw new UserError(
      `${join(dir, 'frame_of.npy')}: rows share camera frames (extract --rows actions), which only --head bc reads; extract with --rows frames for --head ${head}`,
    );
  const features = readNpy(join(dir, 'features.npy'));
  const actions = readNpy(join(dir, 'actions.npy'));
  const state = existsSync(join(dir, 'state.npy')) ? readNpy(join(dir, 'state.npy')) : undefined;
  const episodes = existsSync(join(dir, 'episodes.npy')) ? Int32Array.from(readNpy(join(dir, 'episodes.npy')).data) : new Int32Array(features.dims[0]);
  const chunk = chooseChunk(o, index, episodes);
  if (head === 'keypoint') return fitKeypoint(index, { features, state, actions, episodes }, chunk, o.epochs, paths);
  const fit = fitPolicy({ features, state, actions, episodes }, { chunk, lambdas: o.lambdas });
  const files = writePolicy(paths, fit);
  return {
    head: 'linear',
    files,
    featureDim: fit.featureDim,
    stateDim: fit.stateDim,
    chunk: fit.chunk,
    actionDim: fit.actionDim,
    lambda: fit.lambda,
    scores: fit.scores,
    selection: { note: fit.selection.note, meanMse: fit.selection.meanMse },
    warnings: fit.warnings,
  };
}

/** `o.chunk`, or the shortest chunk covering a frame period plus processing (told to o.onChunk), checked against the shortest episode. */
function chooseChunk(o: FitOptions, index: DataIndex, episodes: Int32Array): number {
  if (o.chunk !== undefined) return o.chunk;
  const rateHz = o.rateHz ?? DEFAULT_RATE_HZ;
  const periodMs = o.framePeriodMs ?? index.frame_period_ms ?? stampPeriodMs(o.data) ?? 1000 / rateHz;
  const processingMs = o.processingMs ?? index.processing_ms ?? DEFAULT_PROCESSING_MS;
  const chunk = coveringChunk(periodMs, processingMs, rateHz);
  o.onChunk?.({ chunk, periodMs, processingMs, rateHz });
  const shortest = shortestEpisode(episodes);
  if (chunk > shortest.rows)
    throw new UserError(
      `fit: the covering chunk ${chunk} is longer than the shortest episode (episode ${shortest.id}, ${shortest.rows} rows); pass a shorter --chunk`,
    );
  return chunk;
}

/**
 * The behaviour-cloning head (src/policy/bc.ts) on a folder of S² maps pooled as `tokens` from a bchw backbone:
 * `sim collect --head bc`, or `extract` with `features.pool: tokens`.
 */
async function fitBcHead(o: FitOptions, index: DataIndex, paths: { model: string; stats: string }): Promise<BcFitResult | BcHindsightFitResult> {
  const recipe = o.recipe ?? 'hindsight';
  if (!BC_RECIPES.includes(recipe)) throw new UserError(`fit: --recipe must be ${BC_RECIPES.join(' or ')}, got '${String(recipe)}'`);
  const d = readBcFolder(o.data);
  const chunk = chooseChunk(o, index, d.episodes);
  const shortest = shortestEpisode(d.episodes);
  if (chunk > shortest.rows) throw new UserError(`fit: --chunk ${chunk} is longer than the shortest episode (episode ${shortest.id}, ${shortest.rows} rows)`);
  const common = { files: paths, featureDim: d.channels * d.height * d.width, stateDim: d.stateDim, chunk, actionDim: d.actionDim };
  const counts = { rows: d.rows, frames: d.frames, episodes: new Set(d.episodes).size };
  if (recipe === 'hindsight') {
    const h = await fitHindsight(d, { chunk, epochs: o.epochs, seed: o.seed, log: o.log });
    const files = writeDetectorPolicy(paths, h.detector, h.controller);
    return {
      head: 'bc',
      recipe,
      ...common,
      files,
      ...counts,
      calibration: h.calibration,
      detector: { frames: h.frames, medianCells: h.heldOut.median, withinOne: h.heldOut.withinOne, temperature: h.detector.temperature },
      controller: { rows: h.controllerRows, trainMse: h.controllerMse },
      seconds: h.seconds,
    };
  }
  const fit = fitBc(d, { chunk, epochs: o.epochs, seed: o.seed, log: o.log });
  const files = writeBcPolicy(paths, fit.params);
  return {
    head: 'bc',
    recipe,
    files,
    featureDim: d.channels * d.height * d.width,
    stateDim: d.stateDim,
    chunk,
    actionDim: d.actionDim,
    rows: d.rows,
    frames: d.frames,
    episodes: new Set(d.episodes).size,
    trainMse: fit.trainMse,
    heldOutMse: fit.heldOutMse,
    heldOutMeanMse: fit.heldOutMeanMse,
    heldOutEpisodes: fit.heldOutEpisodes,
    heldOutRows: fit.heldOutRows,
    bestEpoch: fit.bestEpoch,
    epochsRun: fit.epochsRun,
    seconds: fit.seconds,
  };
}

function fitKeypoint(
  index: DataIndex,
  data: { features: Tensor; state?: Tensor; actions: Tensor; episodes: Int32Array },
  chunk: number,
  epochs: number | undefined,
  paths: { model: string; stats: string },
): KeypointFitResult {
  const pool = index.pool ?? index.features?.pooling;
  const m = pool ? /^grid:(\d+)$/.exec(pool) : null;
  if (!m) throw new UserError(`fit: --head keypoint needs features pooled as grid:K (index.json says ${pool === undefined ? 'nothing' : `'${pool}'`})`);
  if (index.s2?.output_shape !== undefined && index.s2.output_shape !== 'bchw')
    throw new UserError(`fit: --head keypoint needs a bchw (ConvNet) backbone's grid, index.json says ${index.s2.output_shape}`);
  if (!data.state) throw new UserError('fit: --head keypoint needs state.npy');
  const grid = Number(m[1]);
  const [rows, dim] = data.features.dims;
  if (dim % (grid * grid) !== 0) throw new UserError(`fit: features have ${dim} values per row, not a multiple of the ${grid}×${grid} grid`);
  const shortest = shortestEpisode(data.episodes);
  if (chunk > shortest.rows) throw new UserError(`fit: chunk ${chunk} is longer than the shortest episode (episode ${shortest.id}, ${shortest.rows} rows)`);
  const targets = stackChunks(data.actions, data.episodes, chunk);
  const fit = fitKeypointHead(
    {
      features: data.features.data,
      state: data.state.data,
      targets: targets.data,
      rows,
      channels: dim / (grid * grid),
      grid,
      stateDim: data.state.dims[1],
      chunk,
      actionDim: data.actions.dims[1],
    },
    { epochs: epochs ?? 30 },
  );
  const files = writeKeypointPolicy(paths, fit);
  return {
    head: 'keypoint',
    files,
    featureDim: dim,
    stateDim: data.state.dims[1],
    chunk,
    actionDim: data.actions.dims[1],
    trainMse: fit.trainMse,
    seconds: fit.seconds,
  };
}

/** The detector on features.npy + keypoints.npy, the controller on controller/*.npy ('sim collect --head detector'). */
async function fitDetectorHead(dir: string, index: DataIndex, epochs: number | undefined, paths: { model: string; stats: string }): Promise<DetectorFitResult> {
  const h = index.grid_height;
  const w = index.grid_width;
  if (index.pool !== 'tokens' || h === undefined || w === undefined)
    throw new UserError(
      `fit: --head detector needs features pooled as tokens with grid_height and grid_width in ${join(dir, 'index.json')} (from 'sim collect --head detector')`,
    );
  const features = readNpy(join(dir, 'features.npy'));
  const keypoints = readNpy(join(dir, 'keypoints.npy'));
  const episodes = readNpy(join(dir, 'episodes.npy'));
  const [rows, per] = features.dims;
  if (per % (h * w) !== 0) throw new UserError(`fit: features.npy has ${per} values per row, not a multiple of the ${h}×${w} grid`);
  if (keypoints.dims[0] !== rows || keypoints.dims[1] !== 2) throw new UserError(`fit: keypoints.npy must be [${rows}, 2], got [${keypoints.dims.join(', ')}]`);
  if (episodes.dims[0] !== rows) throw new UserError(`fit: episodes.npy must have ${rows} rows, got ${episodes.dims[0]}`);
  const ck = readNpy(join(dir, 'controller', 'keypoints.npy'));
  const cs = readNpy(join(dir, 'controller', 'state.npy'));
  const ca = readNpy(join(dir, 'controller', 'actions.npy'));
  const m = ck.dims[0];
  if (cs.dims[0] !== m || ca.dims[0] !== m)
    throw new UserError(`fit: controller/keypoints.npy, state.npy and actions.npy must have the same rows (${m}, ${cs.dims[0]}, ${ca.dims[0]})`);
  const chunk = index.chunk ?? 1;
  const actionDim = ca.dims[1] / chunk;
  if (!Number.isInteger(actionDim)) throw new UserError(`fit: controller/actions.npy has ${ca.dims[1]} values per row, not a multiple of the chunk ${chunk}`);
  const labels = Float32Array.from(keypoints.data, (v, i) => ((v + 1) / 2) * (i % 2 === 0 ? w : h));
  const det = await fitDetector(
    { features: Float32Array.from(features.data), rows, channels: per / (h * w), height: h, width: w, labels, groups: Int32Array.from(episodes.data) },
    { epochs: epochs ?? DEMO_RECIPE.epochs },
  );
  const ctrl = fitController(
    { keypoints: ck.data, state: cs.data, targets: ca.data, rows: m, stateDim: cs.dims[1], chunk, actionDim },
    { epochs: DEMO_RECIPE.controllerEpochs, seed: 13 },
  );
  const files = writeDetectorPolicy(paths, det.params, ctrl.params);
  return {
    head: 'detector',
    files,
    featureDim: per,
    stateDim: cs.dims[1],
    chunk,
    actionDim,
    frames: rows,
    detector: { medianCells: det.heldOut.median, withinOne: det.heldOut.withinOne, temperature: det.params.temperature, seconds: det.seconds },
    controller: { rows: m, trainMse: ctrl.trainMse, seconds: ctrl.seconds },
  };
}
