// A spatial-softmax keypoint head (Levine et al. 2016, "End-to-end training of deep visuomotor policies") fitted by
// behaviour cloning: a 1×1 linear score per grid cell for each of M keypoint maps, a softmax over the cells, the
// expected cell coordinates as M image keypoints, then an MLP on [keypoints ‖ state] to an action chunk. Trained
// with Adam on the mean squared error to the demonstrated actions, in TypeScript, float32, deterministic per seed;
// exported as ONNX with the same statistics file as the linear head.
import { UserError } from '../errors.js';
import { OnnxGraph } from '../onnx/builder.js';
import { seededRandom } from '../models/zoo.js';
import { policyPaths, writeBoth, type PolicyStatsJson } from './fit.js';
import { mlpGraph, spatialSoftmaxGraph } from './onnx-parts.js';
import {
  adamStep,
  cosineRate,
  gaussian,
  gridPositions,
  MlpPass,
  pointwiseConv,
  pointwiseConvBack,
  shuffle,
  spatialSoftmax,
  spatialSoftmaxBack,
  type MlpWeights,
} from './train.js';

export interface KeypointData {
  /** N rows of channels × grid × grid features, channel-major (the pipeline's grid:K layout for a bchw backbone). */
  features: Float32Array;
  /** N × stateDim */
  state: Float32Array;
  /** N × chunk × actionDim chunk targets. */
  targets: Float32Array;
  rows: number;
  channels: number;
  grid: number;
  stateDim: number;
  chunk: number;
  actionDim: number;
}

export interface KeypointOptions {
  keypoints?: number;
  hidden?: number;
  epochs?: number;
  batch?: number;
  learningRate?: number;
  weightDecay?: number;
  seed?: number;
  /** Continue from these parameters (same shapes), e.g. after adding DAgger rows. */
  init?: KeypointParams;
  /** Called after every epoch with the training loss (normalised units). */
  onEpoch?: (epoch: number, loss: number) => void;
}

export interface KeypointParams extends MlpWeights {
  keypoints: number;
  hidden: number;
  channels: number;
  grid: number;
  stateDim: number;
  chunk: number;
  actionDim: number;
  /** M × C score weights; the MLP's w1 is (2M + S) × H, w2 H × H, w3 H × (T·A). */
  score: Float32Array;
}

export interface KeypointFit {
  params: KeypointParams;
  stats: PolicyStatsJson;
  trainMse: number;
  seconds: number;
}

function init(n: number, scale: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => gaussian(rand) * scale);
}

function meanStd(values: Float32Array, rows: number, cols: number): { mean: number[]; std: number[] } {
  const mean = new Float64Array(cols);
  const sq = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mean[j] += values[i * cols + j];
  for (let j = 0; j < cols; j++) mean[j] /= rows;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) sq[j] += (values[i * cols + j] - mean[j]) ** 2;
  return { mean: Array.from(mean, (m) => Math.fround(m)), std: Array.from(sq, (s) => Math.fround(Math.max(1e-6, Math.sqrt(s / rows)))) };
}

/** Per-channel statistics (shared by every cell of a channel), written out per feature dimension. */
function featureStats(d: KeypointData): { mean: number[]; std: number[] } {
  const L = d.grid * d.grid;
  const C = d.channels;
  const mean = new Float64Array(C);
  const sq = new Float64Array(C);
  const f = d.features;
  for (let r = 0; r < d.rows; r++) for (let c = 0; c < C; c++) for (let l = 0; l < L; l++) mean[c] += f[(r * C + c) * L + l];
  for (let c = 0; c < C; c++) mean[c] /= d.rows * L;
  for (let r = 0; r < d.rows; r++) {
    for (let c = 0; c < C; c++) for (let l = 0; l < L; l++) sq[c] += (f[(r * C + c) * L + l] - mean[c]) ** 2;
  }
  const m: number[] = [];
  const s: number[] = [];
  for (let c = 0; c < C; c++) {
    const mc = Math.fround(mean[c]);
    const sc = Math.fround(Math.max(1e-6, Math.sqrt(sq[c] / (d.rows * L))));
    for (let l = 0; l < L; l++) {
      m.push(mc);
      s.push(sc);
    }
  }
  return { mean: m, std: s };
}

const EPS = 1e-8;

/** Workspace and forward/backward pass for one row. */
class Net {
  readonly L: number;
  readonly inDim: number;
  readonly outDim: number;
  readonly pos: Float32Array;
  // activations
  readonly s: Float32Array;
  readonly z: Float32Array;
  /** The MLP on [keypoints ‖ state]. */
  readonly mlp: MlpPass;
  // backward scratch
  readonly dy: Float32Array;
  readonly ds: Float32Array;

  constructor(readonly p: KeypointParams) {
    this.L = p.grid * p.grid;
    this.inDim = 2 * p.keypoints + p.stateDim;
    this.outDim = p.chunk * p.actionDim;
    this.pos = gridPositions(p.grid, p.grid);
    this.s = new Float32Array(p.keypoints * this.L);
    this.z = new Float32Array(this.inDim);
    this.mlp = new MlpPass(this.inDim, p.hidden, this.outDim);
    this.dy = new Float32Array(this.outDim);
    this.ds = new Float32Array(p.keypoints * this.L);
  }

  /** x: normalised features of one row (C × L), q: normalised state. Leaves activations for backward(). */
  forward(x: Float32Array, xo: number, q: Float32Array, qo: number): Float32Array {
    const { p, L, s, z, pos } = this;
    const M = p.keypoints;
    pointwiseConv(x, xo, p.score, s, p.channels, M, L);
    spatialSoftmax(s, M, L, pos, z);
    for (let i = 0; i < p.stateDim; i++) z[2 * M + i] = q[qo + i];
    return this.mlp.forward(p, z);
  }

  /** Accumulates gradients of ½‖y − t‖² into g for the row last passed to forward(). */
  backward(x: Float32Array, xo: number, t: Float32Array, to: number, g: KeypointParams): number {
    const { p, L, s, z, dy, ds, pos } = this;
    const { y, dz } = this.mlp;
    const M = p.keypoints;
    let loss = 0;
    for (let k = 0; k < this.outDim; k++) {
      dy[k] = y[k] - t[to + k];
      loss += dy[k] * dy[k];
    }
    this.mlp.backward(p, g, z, dy);
    // z starts with the keypoints (2M values) and dz with their gradients.
    spatialSoftmaxBack(s, z, dz, pos, M, L, ds);
    pointwiseConvBack(x, xo, ds, g.score, p.channels, M, L);
    return loss;
  }
}

const PARAM_KEYS = ['score', 'w1', 'b1', 'w2', 'b2', 'w3', 'b3'] as const;

function zerosLike(p: KeypointParams): KeypointParams {
  const z = { ...p };
  for (const k of PARAM_KEYS) z[k] = new Float32Array(p[k].length);
  return z;
}

function checkData(d: KeypointData): void {
  const L = d.grid * d.grid;
  if (d.features.length !== d.rows * d.channels * L)
    throw new UserError(`keypoint head: features hold ${d.features.length} values, expected ${d.rows}×${d.channels}×${d.grid}×${d.grid}`);
  if (d.state.length !== d.rows * d.stateDim) throw new UserError(`keypoint head: state holds ${d.state.length} values, expected ${d.rows}×${d.stateDim}`);
  if (d.targets.length !== d.rows * d.chunk * d.actionDim)
    throw new UserError(`keypoint head: targets hold ${d.targets.length} values, expected ${d.rows}×${d.chunk}×${d.actionDim}`);
  if (d.rows < 2) throw new UserError(`keypoint head: ${d.rows} rows; at least 2 are needed`);
}

/**
 * Fits the keypoint head by behaviour cloning. Features, state and actions are standardised (features per channel,
 * shared across cells) and the statistics returned for the head's stats file.
 */
export function fitKeypointHead(d: KeypointData, o: KeypointOptions = {}): KeypointFit {
  const t0 = performance.now();
  checkData(d);
  const L = d.grid * d.grid;
  const C = d.channels;
  const fs = featureStats(d);
  const ss = meanStd(d.state, d.rows, d.stateDim);
  const as = meanStd(d.targets, d.rows * d.chunk, d.actionDim);
  const stats: PolicyStatsJson = { 'observation.features': fs, 'observation.state': ss, action: as };
  const x = new Float32Array(d.features.length);
  for (let r = 0; r < d.rows; r++) {
    for (let c = 0; c < C; c++) {
      const m = fs.mean[c * L];
      const inv = 1 / (fs.std[c * L] + EPS);
      const o = (r * C + c) * L;
      for (let l = 0; l < L; l++) x[o + l] = (d.features[o + l] - m) * inv;
    }
  }
  const q = Float32Array.from(d.state, (v, i) => (v - ss.mean[i % d.stateDim]) / (ss.std[i % d.stateDim] + EPS));
  const t = Float32Array.from(d.targets, (v, i) => (v - as.mean[i % d.actionDim]) / (as.std[i % d.actionDim] + EPS));

  const M = o.keypoints ?? 3;
  const H = o.hidden ?? 64;
  const rand = seededRandom(o.seed ?? 7);
  const inDim = 2 * M + d.stateDim;
  const outDim = d.chunk * d.actionDim;
  const params: KeypointParams = o.init
    ? {
        ...o.init,
        score: o.init.score.slice(),
        w1: o.init.w1.slice(),
        b1: o.init.b1.slice(),
        w2: o.init.w2.slice(),
        b2: o.init.b2.slice(),
        w3: o.init.w3.slice(),
        b3: o.init.b3.slice(),
      }
    : {
        keypoints: M,
        hidden: H,
        channels: C,
        grid: d.grid,
        stateDim: d.stateDim,
        chunk: d.chunk,
        actionDim: d.actionDim,
        score: init(M * C, 1 / Math.sqrt(C), rand),
        w1: init(inDim * H, Math.sqrt(2 / inDim), rand),
        b1: new Float32Array(H),
        w2: init(H * H, Math.sqrt(2 / H), rand),
        b2: new Float32Array(H),
        w3: init(H * outDim, Math.sqrt(1 / H), rand),
        b3: new Float32Array(outDim),
      };
  if (o.init && (o.init.channels !== C || o.init.grid !== d.grid || o.init.chunk !== d.chunk))
    throw new UserError('keypoint head: init parameters do not match the data');
  const net = new Net(params);
  const grad = zerosLike(params);
  const m1 = zerosLike(params);
  const m2 = zerosLike(params);
  const epochs = o.epochs ?? 30;
  const batch = o.batch ?? 32;
  const lr0 = o.learningRate ?? 3e-3;
  const wd = o.weightDecay ?? 1e-4;
  const order = Int32Array.from({ length: d.rows }, (_, i) => i);
  const steps = Math.ceil(d.rows / batch) * epochs;
  let step = 0;
  for (let e = 0; e < epochs; e++) {
    shuffle(order, rand);
    let epochLoss = 0;
    for (let b0 = 0; b0 < d.rows; b0 += batch) {
      const b1 = Math.min(d.rows, b0 + batch);
      for (const k of PARAM_KEYS) grad[k].fill(0);
      for (let bi = b0; bi < b1; bi++) {
        const r = order[bi];
        net.forward(x, r * C * L, q, r * d.stateDim);
        epochLoss += net.backward(x, r * C * L, t, r * outDim, grad);
      }
      step++;
      // Cosine decay to 5% of the initial rate.
      adamStep(params, grad, m1, m2, PARAM_KEYS, step, cosineRate(lr0, step, steps, 0.05), 1 / (b1 - b0), (k) => (k.startsWith('w') || k === 'score' ? wd : 0));
    }
    o.onEpoch?.(e, epochLoss / (d.rows * outDim));
  }
  let se = 0;
  for (let r = 0; r < d.rows; r++) {
    const y = net.forward(x, r * C * L, q, r * d.stateDim);
    for (let k = 0; k < outDim; k++) se += (y[k] - t[r * outDim + k]) ** 2;
  }
  return { params, stats, trainMse: se / (d.rows * outDim), seconds: (performance.now() - t0) / 1000 };
}

/** The head's unnormalised action chunk (chunk × actionDim) for one row of raw features and state, in TypeScript. */
export function predictKeypoint(fit: KeypointFit, features: Float32Array, state: Float32Array): Float32Array {
  const p = fit.params;
  const L = p.grid * p.grid;
  const fsM = fit.stats['observation.features'];
  const x = Float32Array.from(features, (v, i) => (v - fsM.mean[i]) / (fsM.std[i] + EPS));
  const ss = fit.stats['observation.state']!;
  const q = Float32Array.from(state, (v, i) => (v - ss.mean[i]) / (ss.std[i] + EPS));
  if (x.length !== p.channels * L) throw new UserError(`keypoint head: ${x.length} features, expected ${p.channels * L}`);
  const y = new Net(p).forward(x, 0, q, 0);
  const as = fit.stats.action;
  return Float32Array.from(y, (v, i) => v * (as.std[i % p.actionDim] + EPS) + as.mean[i % p.actionDim]);
}

/** The head as ONNX: inputs 'features' [B, C·G²] and 'state' [B, S] (both normalised), output 'actions' [B, T, A]. */
export function buildKeypointPolicy(p: KeypointParams): OnnxGraph {
  const L = p.grid * p.grid;
  const M = p.keypoints;
  const g = new OnnxGraph('s2_keypoint_policy');
  g.metadata['s2.policy'] = 'spatial-softmax keypoints + MLP';
  const features = g.input('features', ['batch', p.channels * L]);
  const state = g.input('state', ['batch', p.stateDim]);
  const maps = g.op('Reshape', [features, g.ints([-1, p.channels, L])]);
  const scores = g.op('MatMul', [g.weight('keypoint.score', [M, p.channels], p.score), maps]);
  const kp = spatialSoftmaxGraph(g, scores, M, p.grid, p.grid, 'keypoint');
  const z = g.op('Concat', [g.op('Reshape', [kp, g.ints([-1, 2 * M])]), state], { axis: 1 });
  const y = mlpGraph(g, z, p, 2 * M + p.stateDim, p.hidden, p.chunk * p.actionDim, 'mlp');
  g.op('Reshape', [y, g.ints([-1, p.chunk, p.actionDim])], {}, 'actions');
  g.output('actions', ['batch', p.chunk, p.actionDim]);
  return g;
}

/** Writes the keypoint head and its statistics, as writePolicy does for the linear head. */
export function writeKeypointPolicy(out: string | { model: string; stats?: string }, fit: KeypointFit): { model: string; stats: string } {
  const paths = policyPaths(out);
  writeBoth(paths.model, buildKeypointPolicy(fit.params).serialize(), paths.stats, JSON.stringify(fit.stats) + '\n');
  return paths;
}
