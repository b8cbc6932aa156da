// A behaviour-cloning head trained from demonstrations alone (frames' S² maps, joint states, the commands sent):
// standardised S² map → 1×1 convolutions to K keypoint maps → spatial softmax → K expected (x, y) positions
// (Levine et al. 2016; the encoder of LeRobot's diffusion policy), concatenated with the standardised joint state,
// then an MLP to a chunk of actions. Everything is trained end to end by the mean squared error of the
// standardised action chunks (no keypoint labels), with Adam and a cosine rate, whole episodes held out for early
// stopping; seeded and deterministic. Exported as one ONNX model (feature standardisation inside) plus the
// statistics file of state and action (LeRobot's mean/std convention) that PolicyHead applies.
import { UserError } from '../errors.js';
import { OnnxGraph } from '../onnx/builder.js';
import { seededRandom } from '../models/zoo.js';
import { policyPaths, stackChunks, writeBoth, type MeanStdJson } from './fit.js';
import { mlpGraph, normalisedMaps, spatialSoftmaxGraph } from './onnx-parts.js';
import {
  adamStep,
  channelStats,
  columnStats,
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

export interface BcData {
  /** `frames` camera frames of C × H × W raw S² features, channel-major (the `tokens` layout of a bchw backbone). Not modified. */
  features: Float32Array;
  frames: number;
  channels: number;
  height: number;
  width: number;
  /** rows × stateDim joint states. */
  state: Float32Array;
  /** rows × actionDim commands, one per row; chunk targets stack the next ones of the same episode. */
  actions: Float32Array;
  /** Episode of each row; an episode's rows are contiguous and in time order. */
  episodes: Int32Array;
  /**
   * The frame each row sees (default: row i sees frame i). With a camera slower than the control rate several rows
   * share a frame, as they do in the pipeline (the latest frame with the latest joint state).
   */
  frameOf?: Int32Array;
  rows: number;
  stateDim: number;
  actionDim: number;
}

export interface BcOptions {
  /** Actions per predicted chunk (default 1). */
  chunk?: number;
  /** Keypoint maps K (default 2: in the simulation 2 generalised to new scenes better than 8). */
  keypoints?: number;
  /** Channels of a hidden 1×1 convolution (ReLU) before the keypoint maps; 0 = the maps are one 1×1 convolution of the features (default 0). */
  scoreHidden?: number;
  /** Width of the MLP's two hidden layers (default 128). */
  hidden?: number;
  /** At most this many epochs (the cosine rate decays over them; default 30). */
  epochs?: number;
  /** Stop after this many epochs without a better held-out error (default 5). */
  patience?: number;
  /** Frames per Adam step (default 16). */
  batch?: number;
  /** Adam's initial rate (default 1e-2). */
  learningRate?: number;
  weightDecay?: number;
  /** Fraction of episodes held out for early stopping (default 0.1: every 10th episode; 0: none, the epoch with the lowest training error is kept). */
  holdout?: number;
  seed?: number;
  /**
   * Weight of an auxiliary loss (default 0: none): the MLP also predicts the joint state its demonstration ended in,
   * from the same keypoints. That end state is recorded data (the last joint state of the episode), a hindsight
   * goal; for a reaching task it is where the target is, so it gives every frame a clean signal for the keypoint
   * maps where the action's is mostly a saturated direction. Early stopping and the exported model use the actions only.
   */
  goalWeight?: number;
  log?: (line: string) => void;
}

export interface BcParams extends MlpWeights {
  channels: number;
  height: number;
  width: number;
  keypoints: number;
  scoreHidden: number;
  hidden: number;
  stateDim: number;
  chunk: number;
  actionDim: number;
  /** Extra MLP outputs after the action chunk (the auxiliary end-state prediction; 0 or stateDim), not exported. */
  goalDim: number;
  /** Per-channel statistics of the features (inside the ONNX model). */
  featureMean: Float32Array;
  featureStd: Float32Array;
  /** scoreHidden = 0: K × C keypoint-map weights; otherwise F × C hidden weights (F = scoreHidden). */
  conv1: Float32Array;
  /** F hidden biases (empty when scoreHidden = 0: a constant per map does not move a softmax). */
  conv1b: Float32Array;
  /** K × F keypoint-map weights (empty when scoreHidden = 0). */
  conv2: Float32Array;
  stateMean: Float32Array;
  stateStd: Float32Array;
  actionMean: Float32Array;
  actionStd: Float32Array;
}

export interface BcEpoch {
  epoch: number;
  trainMse: number;
  heldOutMse: number;
}

export interface BcFit {
  params: BcParams;
  /** Mean squared error of the standardised action chunks, over training rows and held-out rows, at the kept epoch. */
  trainMse: number;
  heldOutMse: number;
  /** Held-out error of predicting the mean chunk (0 in standardised units is the training mean): what the head must beat. */
  heldOutMeanMse: number;
  /** The epoch whose parameters were kept (1-based), and how many ran. */
  bestEpoch: number;
  epochsRun: number;
  history: BcEpoch[];
  trainRows: number;
  heldOutRows: number;
  heldOutEpisodes: number;
  seconds: number;
}

const EPS = 1e-8;
const KEYS = ['conv1', 'conv1b', 'conv2', 'w1', 'b1', 'w2', 'b2', 'w3', 'b3'] as const;
type Key = (typeof KEYS)[number];
type Tensors = Record<Key, Float32Array>;

/** Activations and gradient scratch for one frame's keypoints and the MLP of one row. */
class BcNet {
  readonly L: number;
  readonly pos: Float32Array;
  /** Effective first-layer weights and biases on raw features (standardisation folded in), refreshed by prepare(). */
  readonly w1eff: Float32Array;
  readonly b1eff: Float32Array;
  readonly inv: Float32Array;
  readonly hmap: Float32Array;
  readonly scores: Float32Array;
  readonly z: Float32Array;
  readonly dkp: Float32Array;
  readonly ds: Float32Array;
  readonly dh: Float32Array;
  readonly graw: Float32Array;
  readonly mlp: MlpPass;
  readonly dy: Float32Array;

  constructor(readonly p: BcParams) {
    const { channels: C, keypoints: K, scoreHidden: F } = p;
    this.L = p.height * p.width;
    this.pos = gridPositions(p.height, p.width);
    const first = F > 0 ? F : K;
    this.w1eff = new Float32Array(first * C);
    this.b1eff = new Float32Array(first);
    this.inv = Float32Array.from(p.featureStd, (s) => 1 / (s + EPS));
    this.hmap = new Float32Array(F * this.L);
    this.scores = new Float32Array(K * this.L);
    this.z = new Float32Array(2 * K + p.stateDim);
    this.dkp = new Float32Array(2 * K);
    this.ds = new Float32Array(K * this.L);
    this.dh = new Float32Array(F * this.L);
    this.graw = new Float32Array(first * C);
    this.mlp = new MlpPass(2 * K + p.stateDim, p.hidden, p.chunk * p.actionDim + p.goalDim);
    this.dy = new Float32Array(p.chunk * p.actionDim + p.goalDim);
  }

  /** Folds the feature standardisation into the first layer: w' = w/σ, b' = b − Σ w'μ. Call after every weight update. */
  prepare(): void {
    const { p, inv, w1eff, b1eff } = this;
    const C = p.channels;
    const first = p.scoreHidden > 0 ? p.scoreHidden : p.keypoints;
    for (let f = 0; f < first; f++) {
      let b = p.scoreHidden > 0 ? p.conv1b[f] : 0;
      for (let c = 0; c < C; c++) {
        const w = p.conv1[f * C + c] * inv[c];
        w1eff[f * C + c] = w;
        b -= w * p.featureMean[c];
      }
      b1eff[f] = b;
    }
  }

  /** The K keypoints (x, y in [-1, 1]) of raw frame x at offset xo, into z[0 … 2K); probabilities kept for backward. */
  keypoints(x: Float32Array, xo: number): void {
    const { p, L, scores, hmap } = this;
    const C = p.channels;
    const K = p.keypoints;
    const F = p.scoreHidden;
    if (F === 0) {
      // The bias b' is the same in every cell, so it does not move the softmax.
      pointwiseConv(x, xo, this.w1eff, scores, C, K, L);
    } else {
      pointwiseConv(x, xo, this.w1eff, hmap, C, F, L);
      for (let f = 0; f < F; f++) {
        const b = this.b1eff[f];
        for (let l = f * L; l < (f + 1) * L; l++) {
          const v = hmap[l] + b;
          hmap[l] = v > 0 ? v : 0;
        }
      }
      pointwiseConv(hmap, 0, p.conv2, scores, F, K, L);
    }
    spatialSoftmax(scores, K, L, this.pos, this.z);
  }

  /** The standardised chunk for standardised state q (at qo) and the keypoints last computed. */
  forwardRow(q: Float32Array, qo: number): Float32Array {
    const K2 = 2 * this.p.keypoints;
    for (let i = 0; i < this.p.stateDim; i++) this.z[K2 + i] = q[qo + i];
    return this.mlp.forward(this.p, this.z);
  }

  /**
   * After forwardRow: accumulates the MLP's gradients for target chunk t (at to), and `goalWeight` times those for
   * the end state goal (at go) when the head predicts one, and dL/dkeypoints into dkp; returns the chunk's squared error.
   */
  backwardRow(t: Float32Array, to: number, g: Tensors, goal?: Float32Array, go = 0, goalWeight = 0): number {
    const { dy, dkp } = this;
    const y = this.mlp.y;
    const out = this.p.chunk * this.p.actionDim;
    let loss = 0;
    for (let k = 0; k < out; k++) {
      dy[k] = y[k] - t[to + k];
      loss += dy[k] * dy[k];
    }
    for (let k = 0; k < this.p.goalDim; k++) dy[out + k] = goal ? goalWeight * (y[out + k] - goal[go + k]) : 0;
    this.mlp.backward(this.p, g, this.z, dy);
    const dz = this.mlp.dz;
    for (let k = 0; k < dkp.length; k++) dkp[k] += dz[k];
    return loss;
  }

  /** Accumulates the keypoint layers' gradients for the frame last passed to keypoints(), from dkp; then clears dkp. */
  backwardFrame(x: Float32Array, xo: number, g: Tensors): void {
    const { p, L, ds, dh, hmap, graw, inv } = this;
    const C = p.channels;
    const K = p.keypoints;
    const F = p.scoreHidden;
    spatialSoftmaxBack(this.scores, this.z, this.dkp, this.pos, K, L, ds);
    this.dkp.fill(0);
    const first = F > 0 ? F : K;
    let dfirst = ds;
    if (F > 0) {
      pointwiseConvBack(hmap, 0, ds, g.conv2, F, K, L);
      // dh[f, l] = Σ_k conv2[k, f]·ds[k, l], through the ReLU.
      dh.fill(0);
      for (let k = 0; k < K; k++) {
        for (let f = 0; f < F; f++) {
          const w = p.conv2[k * F + f];
          const ho = f * L;
          const so = k * L;
          for (let l = 0; l < L; l++) dh[ho + l] += w * ds[so + l];
        }
      }
      for (let l = 0; l < F * L; l++) if (hmap[l] <= 0) dh[l] = 0;
      dfirst = dh;
    }
    // d/dw of w·(x − μ)/σ = (Σ_l d·x − μ·Σ_l d)/σ.
    graw.fill(0);
    pointwiseConvBack(x, xo, dfirst, graw, C, first, L);
    for (let f = 0; f < first; f++) {
      let sum = 0;
      for (let l = f * L; l < (f + 1) * L; l++) sum += dfirst[l];
      if (F > 0) g.conv1b[f] += sum;
      for (let c = 0; c < C; c++) g.conv1[f * C + c] += (graw[f * C + c] - p.featureMean[c] * sum) * inv[c];
    }
  }
}

function checkData(d: BcData): void {
  const L = d.height * d.width;
  const where = 'bc head';
  for (const [name, v] of [
    ['frames', d.frames],
    ['channels', d.channels],
    ['height', d.height],
    ['width', d.width],
    ['rows', d.rows],
    ['stateDim', d.stateDim],
    ['actionDim', d.actionDim],
  ] as const) {
    if (!Number.isInteger(v) || v < (name === 'stateDim' ? 0 : 1)) throw new UserError(`${where}: ${name} must be a positive integer, got ${v}`);
  }
  if (d.features.length !== d.frames * d.channels * L)
    throw new UserError(`${where}: features hold ${d.features.length} values, expected ${d.frames}×${d.channels}×${d.height}×${d.width}`);
  if (d.state.length !== d.rows * d.stateDim) throw new UserError(`${where}: state holds ${d.state.length} values, expected ${d.rows}×${d.stateDim}`);
  if (d.actions.length !== d.rows * d.actionDim) throw new UserError(`${where}: actions hold ${d.actions.length} values, expected ${d.rows}×${d.actionDim}`);
  if (d.episodes.length !== d.rows) throw new UserError(`${where}: episodes hold ${d.episodes.length} values, expected one per row (${d.rows})`);
  if (d.frameOf) {
    if (d.frameOf.length !== d.rows) throw new UserError(`${where}: frameOf holds ${d.frameOf.length} values, expected one per row (${d.rows})`);
    for (let r = 0; r < d.rows; r++)
      if (!(d.frameOf[r] >= 0 && d.frameOf[r] < d.frames))
        throw new UserError(`${where}: frameOf[${r}] is ${d.frameOf[r]}, expected a frame in 0…${d.frames - 1}`);
  } else if (d.frames !== d.rows) throw new UserError(`${where}: ${d.frames} frames for ${d.rows} rows; give frameOf when rows share frames`);
  for (const [name, v] of [
    ['state', d.state],
    ['actions', d.actions],
  ] as const) {
    const i = v.findIndex((x) => !Number.isFinite(x));
    if (i >= 0)
      throw new UserError(`${where}: ${name}[${Math.floor(i / (name === 'state' ? d.stateDim : d.actionDim))}] holds ${v[i]}, expected finite numbers`);
  }
}

/**
 * Which rows are held out for early stopping: every k-th episode (k = round(1/holdout)); with a single episode, its
 * last `holdout` share of rows (one contiguous block, so held-out frames are never training frames' neighbours in
 * the middle of the recording).
 */
function heldOutRows(episodes: Int32Array, holdout: number): { held: Uint8Array; episodes: number } {
  const n = episodes.length;
  const held = new Uint8Array(n);
  const ids: number[] = [];
  for (let r = 0; r < n; r++) if (r === 0 || episodes[r] !== episodes[r - 1]) ids.push(episodes[r]);
  if (holdout <= 0) return { held, episodes: 0 };
  if (ids.length < 2) {
    held.fill(1, Math.max(1, Math.floor(n * (1 - holdout))));
    return { held, episodes: 0 };
  }
  const every = Math.max(2, Math.round(1 / holdout));
  const out = new Set(ids.filter((_, i) => i % every === every - 1));
  for (let r = 0; r < n; r++) if (out.has(episodes[r])) held[r] = 1;
  return { held, episodes: out.size };
}

function copyParams(p: BcParams): BcParams {
  const c = { ...p };
  for (const k of KEYS) c[k] = p[k].slice();
  return c;
}

/**
 * Fits the head by behaviour cloning on every training row, keeping the parameters of the epoch with the lowest
 * held-out error. Inputs are not modified.
 */
export function fitBc(d: BcData, o: BcOptions = {}): BcFit {
  const t0 = performance.now();
  checkData(d);
  const chunk = o.chunk ?? 1;
  const K = o.keypoints ?? 2;
  const F = o.scoreHidden ?? 0;
  const H = o.hidden ?? 128;
  const goalWeight = o.goalWeight ?? 0;
  if (!(goalWeight >= 0 && Number.isFinite(goalWeight))) throw new UserError(`bc head: goalWeight must be a number ≥ 0, got ${goalWeight}`);
  for (const [name, v] of [
    ['chunk', chunk],
    ['keypoints', K],
    ['hidden', H],
  ] as const)
    if (!Number.isInteger(v) || v < 1) throw new UserError(`bc head: ${name} must be an integer ≥ 1, got ${v}`);
  if (!Number.isInteger(F) || F < 0) throw new UserError(`bc head: scoreHidden must be an integer ≥ 0, got ${F}`);
  const C = d.channels;
  const L = d.height * d.width;
  const S = d.stateDim;
  const A = d.actionDim;
  const out = chunk * A;
  const per = C * L;
  const frameOf = d.frameOf ?? Int32Array.from({ length: d.rows }, (_, i) => i);
  const { held, episodes: heldEpisodes } = heldOutRows(d.episodes, o.holdout ?? 0.1);
  const trainIdx: number[] = [];
  const heldIdx: number[] = [];
  for (let r = 0; r < d.rows; r++) (held[r] ? heldIdx : trainIdx).push(r);
  if (trainIdx.length === 0) throw new UserError('bc head: every row is held out; lower the holdout');

  // Statistics from the training rows only (and the frames they see), as the exported model will use them.
  const trainFrames = [...new Set(trainIdx.map((r) => frameOf[r]))].sort((a, b) => a - b);
  const fs = frameStats(d.features, trainFrames, C, L);
  const trainState = Float32Array.from({ length: trainIdx.length * S }, (_, i) => d.state[trainIdx[Math.floor(i / S)] * S + (i % S)]);
  const ss = columnStats(trainState, trainIdx.length, S);
  const targets = stackChunks({ dims: [d.rows, A], data: d.actions }, d.episodes, chunk).data;
  const trainTargets = Float32Array.from({ length: trainIdx.length * out }, (_, i) => targets[trainIdx[Math.floor(i / out)] * out + (i % out)]);
  const as = columnStats(trainTargets, trainIdx.length * chunk, A);
  const q = Float32Array.from(d.state, (v, i) => (v - ss.mean[i % S]) / (ss.std[i % S] + EPS));
  const t = Float32Array.from(targets, (v, i) => (v - as.mean[i % A]) / (as.std[i % A] + EPS));
  const goalDim = goalWeight > 0 ? S : 0;
  // Each row's goal: the standardised last joint state of its episode.
  const goal = new Float32Array(goalDim > 0 ? d.rows * S : 0);
  if (goalDim > 0) {
    for (let end = d.rows; end > 0;) {
      let start = end - 1;
      while (start > 0 && d.episodes[start - 1] === d.episodes[end - 1]) start--;
      for (let r = start; r < end; r++) goal.set(q.subarray((end - 1) * S, end * S), r * S);
      end = start;
    }
  }

  const rand = seededRandom(o.seed ?? 17);
  const init = (n: number, scale: number) => Float32Array.from({ length: n }, () => gaussian(rand) * scale);
  const inDim = 2 * K + S;
  const first = F > 0 ? F : K;
  let p: BcParams = {
    channels: C,
    height: d.height,
    width: d.width,
    keypoints: K,
    scoreHidden: F,
    hidden: H,
    stateDim: S,
    chunk,
    actionDim: A,
    goalDim,
    featureMean: fs.mean,
    featureStd: fs.std,
    conv1: init(first * C, Math.sqrt((F > 0 ? 2 : 1) / C)),
    conv1b: new Float32Array(F),
    conv2: F > 0 ? init(K * F, Math.sqrt(1 / F)) : new Float32Array(0),
    w1: init(inDim * H, Math.sqrt(2 / inDim)),
    b1: new Float32Array(H),
    w2: init(H * H, Math.sqrt(2 / H)),
    b2: new Float32Array(H),
    w3: init(H * (out + goalDim), Math.sqrt(1 / H)),
    b3: new Float32Array(out + goalDim),
    stateMean: ss.mean,
    stateStd: ss.std,
    actionMean: as.mean,
    actionStd: as.std,
  };
  const zeros = (): Tensors => Object.fromEntries(KEYS.map((k) => [k, new Float32Array(p[k].length)])) as Tensors;
  const g = zeros();
  const m1 = zeros();
  const m2 = zeros();

  // Rows grouped by the frame they see: a frame's keypoints are computed once per step for all its rows.
  const rowsOf = new Map<number, number[]>();
  for (const r of trainIdx) {
    const f = frameOf[r];
    let list = rowsOf.get(f);
    if (!list) rowsOf.set(f, (list = []));
    list.push(r);
  }
  const heldOf = new Map<number, number[]>();
  for (const r of heldIdx) {
    const f = frameOf[r];
    let list = heldOf.get(f);
    if (!list) heldOf.set(f, (list = []));
    list.push(r);
  }
  const order = Int32Array.from(rowsOf.keys());
  const net = new BcNet(p);
  const epochs = o.epochs ?? 30;
  const patience = o.patience ?? 5;
  const batch = o.batch ?? 16;
  const lr0 = o.learningRate ?? 1e-2;
  const wd = o.weightDecay ?? 1e-4;
  const steps = Math.ceil(order.length / batch) * epochs;
  let step = 0;
  const history: BcEpoch[] = [];
  let best = { mse: Infinity, epoch: 0, params: copyParams(p), trainMse: NaN };
  const evalMse = (groups: Map<number, number[]>): number => {
    let se = 0;
    let n = 0;
    net.prepare();
    for (const [f, rows] of groups) {
      net.keypoints(d.features, f * per);
      for (const r of rows) {
        const y = net.forwardRow(q, r * S);
        for (let k = 0; k < out; k++) se += (y[k] - t[r * out + k]) ** 2;
        n++;
      }
    }
    return n > 0 ? se / (n * out) : NaN;
  };
  let heldMeanSe = 0;
  for (const r of heldIdx) for (let k = 0; k < out; k++) heldMeanSe += t[r * out + k] ** 2;
  const heldOutMeanMse = heldIdx.length > 0 ? heldMeanSe / (heldIdx.length * out) : NaN;
  let epochsRun = 0;
  for (let e = 0; e < epochs; e++) {
    shuffle(order, rand);
    let loss = 0;
    let seen = 0;
    for (let b0 = 0; b0 < order.length; b0 += batch) {
      const b1 = Math.min(order.length, b0 + batch);
      for (const k of KEYS) g[k].fill(0);
      net.prepare();
      let n = 0;
      for (let bi = b0; bi < b1; bi++) {
        const f = order[bi];
        net.keypoints(d.features, f * per);
        for (const r of rowsOf.get(f)!) {
          net.forwardRow(q, r * S);
          loss += net.backwardRow(t, r * out, g, goal, r * S, goalWeight);
          n++;
        }
        net.backwardFrame(d.features, f * per, g);
      }
      seen += n;
      step++;
      adamStep(p, g, m1, m2, KEYS, step, cosineRate(lr0, step, steps, 0.05), 1 / n, (k) => (k.startsWith('b') || k === 'conv1b' ? 0 : wd));
    }
    epochsRun = e + 1;
    const trainMse = loss / (seen * out);
    const heldMse = heldIdx.length > 0 ? evalMse(heldOf) : trainMse;
    history.push({ epoch: e + 1, trainMse, heldOutMse: heldMse });
    const better = heldMse < best.mse;
    if (better) best = { mse: heldMse, epoch: e + 1, params: copyParams(p), trainMse };
    o.log?.(
      `bc epoch ${e + 1}/${epochs}: training MSE ${trainMse.toFixed(4)}, held-out ${heldMse.toFixed(4)}${better ? ' (best)' : ''} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
    if (e + 1 - best.epoch >= patience) break;
  }
  p = best.params;
  return {
    params: p,
    trainMse: best.trainMse,
    heldOutMse: best.mse,
    heldOutMeanMse,
    bestEpoch: best.epoch,
    epochsRun,
    history,
    trainRows: trainIdx.length,
    heldOutRows: heldIdx.length,
    heldOutEpisodes: heldEpisodes,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Per-channel statistics over the listed frames. */
function frameStats(x: Float32Array, frames: number[], C: number, L: number): { mean: Float32Array; std: Float32Array } {
  const per = C * L;
  const sum = new Float64Array(C);
  const sq = new Float64Array(C);
  for (const f of frames) {
    const s = channelStats(x.subarray(f * per, (f + 1) * per), 1, C, L);
    for (let c = 0; c < C; c++) {
      sum[c] += s.mean[c];
      sq[c] += s.std[c] ** 2 + s.mean[c] ** 2;
    }
  }
  const n = frames.length;
  const mean = Float32Array.from(sum, (v) => v / n);
  const std = Float32Array.from(sq, (v, c) => Math.max(1e-6, Math.sqrt(Math.max(0, v / n - (sum[c] / n) ** 2))));
  return { mean, std };
}

/** The head's unnormalised action chunk (chunk × actionDim) and keypoints (K × 2, in [-1, 1]) for one raw frame and state, in TypeScript. */
export function predictBc(p: BcParams, features: Float32Array, state: ArrayLike<number>): { actions: Float32Array; keypoints: Float32Array } {
  const L = p.height * p.width;
  if (features.length !== p.channels * L) throw new UserError(`bc head: ${features.length} features, expected ${p.channels}×${p.height}×${p.width}`);
  if (state.length !== p.stateDim) throw new UserError(`bc head: a state of ${state.length} values, expected ${p.stateDim}`);
  const net = new BcNet(p);
  net.prepare();
  net.keypoints(features, 0);
  const keypoints = net.z.slice(0, 2 * p.keypoints);
  const q = Float32Array.from(state, (v, i) => (v - p.stateMean[i]) / (p.stateStd[i] + EPS));
  const y = net.forwardRow(q, 0).subarray(0, p.chunk * p.actionDim);
  const actions = Float32Array.from(y, (v, i) => v * (p.actionStd[i % p.actionDim] + EPS) + p.actionMean[i % p.actionDim]);
  return { actions, keypoints };
}

/**
 * The head as ONNX: 'features' [B, C·H·W] raw and 'state' [B, S] standardised (by the statistics file) → 'actions'
 * [B, T, A] standardised, plus 'keypoints' [B, K, 2] in [-1, 1] for inspection.
 */
export function buildBcPolicy(p: BcParams): OnnxGraph {
  const { channels: C, keypoints: K, scoreHidden: F } = p;
  const g = new OnnxGraph('s2_bc_policy');
  g.metadata['s2.policy'] = `behaviour cloning: 1x1 conv${F > 0 ? ` (${F}, ReLU) → 1x1 conv` : ''} to ${K} keypoint maps, spatial softmax, MLP`;
  const features = g.input('features', ['batch', C * p.height * p.width]);
  const state = p.stateDim > 0 ? g.input('state', ['batch', p.stateDim]) : undefined;
  const norm = normalisedMaps(g, features, { channels: C, height: p.height, width: p.width, mean: p.featureMean, std: p.featureStd }, 'bc.features');
  let scores: string;
  if (F === 0) {
    scores = g.op('Conv', [norm, g.weight('bc.keypoint_maps.weight', [K, C, 1, 1], p.conv1)], { kernel_shape: [1, 1] });
  } else {
    const h = g.op('Relu', [
      g.op('Conv', [norm, g.weight('bc.hidden.weight', [F, C, 1, 1], p.conv1), g.weight('bc.hidden.bias', [F], p.conv1b)], { kernel_shape: [1, 1] }),
    ]);
    scores = g.op('Conv', [h, g.weight('bc.keypoint_maps.weight', [K, F, 1, 1], p.conv2)], { kernel_shape: [1, 1] });
  }
  const kp = spatialSoftmaxGraph(g, scores, K, p.height, p.width, 'bc', 'keypoints');
  const flat = g.op('Reshape', [kp, g.ints([-1, 2 * K])]);
  const z = state !== undefined ? g.op('Concat', [flat, state], { axis: 1 }) : flat;
  const out = p.chunk * p.actionDim;
  const all = mlpGraph(g, z, p, 2 * K + p.stateDim, p.hidden, out + p.goalDim, 'bc.mlp');
  // The auxiliary end-state outputs are for training only.
  const y = p.goalDim > 0 ? g.op('Slice', [all, g.ints([0]), g.ints([out]), g.ints([1])]) : all;
  g.op('Reshape', [y, g.ints([-1, p.chunk, p.actionDim])], {}, 'actions');
  g.output('actions', ['batch', p.chunk, p.actionDim]);
  g.output('keypoints', ['batch', K, 2]);
  return g;
}

/** The statistics file of the head: state and action (the features' are inside the model). */
export function bcStats(p: BcParams): { 'observation.state'?: MeanStdJson; action: MeanStdJson } {
  const json = (v: Float32Array) => Array.from(v);
  const out: { 'observation.state'?: MeanStdJson; action: MeanStdJson } = { action: { mean: json(p.actionMean), std: json(p.actionStd) } };
  if (p.stateDim > 0) out['observation.state'] = { mean: json(p.stateMean), std: json(p.stateStd) };
  return out;
}

/** Writes the head (ONNX; outputs 'actions' and 'keypoints', so the configuration sets policy.output: actions) and its statistics. */
export function writeBcPolicy(out: string | { model: string; stats?: string }, p: BcParams): { model: string; stats: string } {
  const paths = policyPaths(out);
  writeBoth(paths.model, buildBcPolicy(p).serialize(), paths.stats, JSON.stringify(bcStats(p)) + '\n');
  return paths;
}
