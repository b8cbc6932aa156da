// A keypoint-detector policy head: a small convolutional detector over the S² feature map (3×3 conv → ReLU → 1×1
// score), a softmax over every cell and its expected position as one image keypoint, then an MLP controller on
// [keypoint ‖ joint state] to an action chunk. The two parts are fitted separately, in TypeScript:
//   - the detector by cross-entropy to a keypoint label per frame (bilinear soft targets over the 4 nearest cells,
//     so the expected position is sub-cell), on sampled cells: the label's, the highest-scoring others (re-scored
//     on every frame by onnxruntime between epochs) and random ones; its softmax temperature is then chosen on
//     held-out scenes;
//   - the controller by behaviour cloning (mean squared error to the expert's action chunks) on keypoint/state rows.
// Exported as one ONNX model (features normalisation included) and a statistics file for state and action.
import { UserError } from '../errors.js';
import { OnnxGraph } from '../onnx/builder.js';
import { seededRandom } from '../models/zoo.js';
import { OrtSession } from '../backbone/ort-session.js';
import { policyPaths, writeBoth } from './fit.js';
import { mlpGraph, normalisedMaps, spatialSoftmaxGraph } from './onnx-parts.js';
import { adamStep, channelStats, columnStats, cosineRate, gaussian, MlpPass, shuffle, type MlpWeights } from './train.js';

export interface DetectorData {
  /** N frames of C × H × W raw features, channel-major (the pipeline's `tokens` layout for a bchw backbone). Normalised in place. */
  features: Float32Array;
  rows: number;
  channels: number;
  height: number;
  width: number;
  /** N × 2 keypoint labels in grid units: x across [0, W), y down [0, H). */
  labels: Float32Array;
  /** Scene of each frame: the temperature is chosen on held-out scenes. */
  groups: Int32Array;
}

export interface DetectorParams {
  channels: number;
  height: number;
  width: number;
  hidden: number;
  mean: Float32Array;
  std: Float32Array;
  /** hidden × C × 3 × 3 */
  w1: Float32Array;
  b1: Float32Array;
  /** hidden */
  w2: Float32Array;
  /** Softmax temperature multiplying the scores. */
  temperature: number;
}

export interface DetectorOptions {
  hidden?: number;
  epochs?: number;
  /** Frames per Adam step. */
  batch?: number;
  learningRate?: number;
  seed?: number;
  hardNegatives?: number;
  randomNegatives?: number;
  /** Fraction of scenes held out to choose the temperature. */
  holdout?: number;
  /** Re-score every frame for hard negatives after every `rescoreEvery` epochs (default 3). */
  rescoreEvery?: number;
  log?: (line: string) => void;
}

export interface DetectorFit {
  params: DetectorParams;
  /** Held-out keypoint error in grid cells with the chosen temperature: median, and fraction within ½ and 1 cell. */
  heldOut: { frames: number; median: number; withinHalf: number; withinOne: number };
  seconds: number;
}

const EPS = 1e-8;
const TEMPERATURES = [1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192];

/** The 4 cells nearest a continuous grid position and their bilinear weights (cells outside the grid are dropped, the rest renormalised). */
function softTarget(x: number, y: number, h: number, w: number): { cells: number[]; weights: number[] } {
  const gx = x - 0.5;
  const gy = y - 0.5;
  const j0 = Math.floor(gx);
  const i0 = Math.floor(gy);
  const fx = gx - j0;
  const fy = gy - i0;
  const cells: number[] = [];
  const weights: number[] = [];
  for (const [di, dj, wt] of [
    [0, 0, (1 - fy) * (1 - fx)],
    [0, 1, (1 - fy) * fx],
    [1, 0, fy * (1 - fx)],
    [1, 1, fy * fx],
  ] as const) {
    const i = i0 + di;
    const j = j0 + dj;
    if (i < 0 || i >= h || j < 0 || j >= w || wt <= 0) continue;
    cells.push(i * w + j);
    weights.push(wt);
  }
  if (cells.length === 0) {
    cells.push(Math.min(h - 1, Math.max(0, Math.floor(y))) * w + Math.min(w - 1, Math.max(0, Math.floor(x))));
    weights.push(1);
  }
  const s = weights.reduce((a, b) => a + b, 0);
  return { cells, weights: weights.map((v) => v / s) };
}

/** The detector's score map as ONNX: 'features' [B, C·H·W] raw → 'scores' [B, H·W] (temperature applied). */
function detectorGraph(g: OnnxGraph, p: DetectorParams, features: string): string {
  const C = p.channels;
  const norm = normalisedMaps(g, features, p, 'detector');
  const h = g.op('Relu', [
    g.op('Conv', [norm, g.weight('detector.conv.weight', [p.hidden, C, 3, 3], p.w1), g.weight('detector.conv.bias', [p.hidden], p.b1)], {
      kernel_shape: [3, 3],
      pads: [1, 1, 1, 1],
    }),
  ]);
  const score = g.op(
    'Conv',
    [
      h,
      g.weight(
        'detector.score.weight',
        [1, p.hidden, 1, 1],
        Float32Array.from(p.w2, (v) => v * p.temperature),
      ),
    ],
    {
      kernel_shape: [1, 1],
    },
  );
  return g.op('Reshape', [score, g.ints([-1, p.height * p.width])]);
}

/** Scores every cell of every frame with onnxruntime (raw features in, as the exported model takes them). */
async function scoreAll(p: DetectorParams, features: Float32Array, rows: number, normalised: boolean): Promise<Float32Array> {
  const g = new OnnxGraph('s2_detector_scores');
  const input = g.input('features', ['batch', p.channels * p.height * p.width]);
  // Training normalises the features in place; score them as they are then (mean 0, std 1).
  const q = normalised ? { ...p, mean: new Float32Array(p.channels), std: new Float32Array(p.channels).fill(1) } : p;
  g.op('Identity', [detectorGraph(g, q, input)], {}, 'scores');
  g.output('scores', ['batch', p.height * p.width]);
  const session = await OrtSession.create(g.serialize(), { executionProviders: ['cpu'], logSeverityLevel: 3 });
  const L = p.height * p.width;
  const per = p.channels * L;
  const out = new Float32Array(rows * L);
  try {
    const batch = 16;
    for (let r0 = 0; r0 < rows; r0 += batch) {
      const n = Math.min(batch, rows - r0);
      const data = features.slice(r0 * per, (r0 + n) * per);
      const res = await session.run({ features: { dims: [n, per], data } }, ['scores']);
      out.set(res.scores.data, r0 * L);
    }
  } finally {
    await session.release();
  }
  return out;
}

/** Expected position (grid units) of softmax(τ·scores) for each row. */
export function softArgmax(scores: Float32Array, rows: number, h: number, w: number, tau: number, out = new Float32Array(rows * 2)): Float32Array {
  const L = h * w;
  for (let r = 0; r < rows; r++) {
    const o = r * L;
    let mx = -Infinity;
    for (let l = 0; l < L; l++) if (scores[o + l] > mx) mx = scores[o + l];
    let s = 0;
    let sx = 0;
    let sy = 0;
    for (let l = 0; l < L; l++) {
      const e = Math.exp(tau * (scores[o + l] - mx));
      s += e;
      sx += e * ((l % w) + 0.5);
      sy += e * (Math.floor(l / w) + 0.5);
    }
    out[2 * r] = sx / s;
    out[2 * r + 1] = sy / s;
  }
  return out;
}

/**
 * Fits the detector. `d.features` is normalised in place (per channel); the returned parameters include the
 * statistics, so the exported model takes raw features.
 */
export async function fitDetector(d: DetectorData, o: DetectorOptions = {}): Promise<DetectorFit> {
  const t0 = performance.now();
  const { rows, channels: C, height: H, width: W } = d;
  const L = H * W;
  if (d.features.length !== rows * C * L) throw new UserError(`detector: features hold ${d.features.length} values, expected ${rows}×${C}×${H}×${W}`);
  if (d.labels.length !== rows * 2 || d.groups.length !== rows) throw new UserError(`detector: ${rows} frames need ${rows} labels and groups`);
  const hidden = o.hidden ?? 16;
  const rand = seededRandom(o.seed ?? 11);
  const { mean, std } = channelStats(d.features, rows, C, L);
  const x = d.features;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++) {
      const off = (r * C + c) * L;
      const m = mean[c];
      const inv = 1 / (std[c] + EPS);
      for (let l = 0; l < L; l++) x[off + l] = (x[off + l] - m) * inv;
    }
  }
  // Held-out scenes (for the temperature only): every k-th scene.
  const holdoutEvery = Math.max(2, Math.round(1 / (o.holdout ?? 0.2)));
  const held = Uint8Array.from(d.groups, (g) => (g % holdoutEvery === holdoutEvery - 1 ? 1 : 0));
  const trainRows = Int32Array.from(Array.from({ length: rows }, (_, i) => i).filter((i) => !held[i]));
  const K = C * 9;
  const p: DetectorParams = {
    channels: C,
    height: H,
    width: W,
    hidden,
    mean,
    std,
    w1: Float32Array.from({ length: hidden * K }, () => gaussian(rand) * Math.sqrt(2 / K)),
    b1: new Float32Array(hidden),
    w2: Float32Array.from({ length: hidden }, () => gaussian(rand) * Math.sqrt(1 / hidden)),
    temperature: 1,
  };
  const targets = Array.from({ length: rows }, (_, r) => softTarget(d.labels[2 * r], d.labels[2 * r + 1], H, W));
  const nHard = o.hardNegatives ?? 24;
  const nRand = o.randomNegatives ?? 16;
  const hard: Int32Array[] = Array.from({ length: rows }, () => new Int32Array(0));
  const epochs = o.epochs ?? 12;
  const batch = o.batch ?? 8;
  const lr0 = o.learningRate ?? 2e-3;
  const grads = { w1: new Float32Array(p.w1.length), b1: new Float32Array(hidden), w2: new Float32Array(hidden) };
  const m1 = { w1: new Float32Array(p.w1.length), b1: new Float32Array(hidden), w2: new Float32Array(hidden) };
  const m2 = { w1: new Float32Array(p.w1.length), b1: new Float32Array(hidden), w2: new Float32Array(hidden) };
  const maxCand = 4 + nHard + nRand;
  const patches = new Float32Array(maxCand * K);
  const acts = new Float32Array(maxCand * hidden);
  const logits = new Float64Array(maxCand);
  const dh = new Float32Array(hidden);
  const steps = Math.ceil(trainRows.length / batch) * epochs;
  let step = 0;
  const order = Int32Array.from(trainRows);
  const seen = new Uint8Array(L);
  const rescoreEvery = o.rescoreEvery ?? 3;
  let rescoreMs = 0;
  for (let e = 0; e < epochs; e++) {
    if (e > 0 && (e === 1 || e % rescoreEvery === 0)) {
      const tr = performance.now();
      // Re-score every training frame; its highest-scoring cells away from the label are the next hard negatives.
      const scores = await scoreAll(p, x, rows, true);
      for (const r of trainRows) {
        const o2 = r * L;
        const near = new Set<number>();
        const ty = d.labels[2 * r + 1];
        const tx = d.labels[2 * r];
        for (let di = -1; di <= 1; di++) for (let dj = -1; dj <= 1; dj++) near.add(Math.floor(ty + di) * W + Math.floor(tx + dj));
        const best: number[] = [];
        for (let l = 0; l < L; l++) {
          if (near.has(l)) continue;
          const s = scores[o2 + l];
          if (best.length < nHard) {
            best.push(l);
            if (best.length === nHard) best.sort((a, b) => scores[o2 + b] - scores[o2 + a]);
          } else if (s > scores[o2 + best[nHard - 1]]) {
            let k = nHard - 1;
            while (k > 0 && scores[o2 + best[k - 1]] < s) {
              best[k] = best[k - 1];
              k--;
            }
            best[k] = l;
          }
        }
        hard[r] = Int32Array.from(best);
      }
      rescoreMs += performance.now() - tr;
    }
    shuffle(order, rand);
    let epochLoss = 0;
    for (let b0 = 0; b0 < order.length; b0 += batch) {
      const b1 = Math.min(order.length, b0 + batch);
      grads.w1.fill(0);
      grads.b1.fill(0);
      grads.w2.fill(0);
      for (let bi = b0; bi < b1; bi++) {
        const r = order[bi];
        const t = targets[r];
        const cand: number[] = [];
        seen.fill(0);
        const add = (l: number) => {
          if (!seen[l]) {
            seen[l] = 1;
            cand.push(l);
          }
        };
        t.cells.forEach(add);
        hard[r].forEach(add);
        for (let k = 0; k < nRand; k++) add(Math.floor(rand() * L));
        const n = cand.length;
        const xo = r * C * L;
        // Gather each candidate's 3×3×C patch (zero outside the grid), then the two layers.
        let mx = -Infinity;
        for (let ci = 0; ci < n; ci++) {
          const l = cand[ci];
          const i = Math.floor(l / W);
          const j = l % W;
          const po = ci * K;
          for (let c = 0; c < C; c++) {
            const co = xo + c * L;
            for (let di = 0; di < 3; di++) {
              const ii = i + di - 1;
              for (let dj = 0; dj < 3; dj++) {
                const jj = j + dj - 1;
                patches[po + c * 9 + di * 3 + dj] = ii >= 0 && ii < H && jj >= 0 && jj < W ? x[co + ii * W + jj] : 0;
              }
            }
          }
          let s = 0;
          for (let k = 0; k < hidden; k++) {
            let a = p.b1[k];
            const wo = k * K;
            for (let q = 0; q < K; q++) a += p.w1[wo + q] * patches[po + q];
            a = a > 0 ? a : 0;
            acts[ci * hidden + k] = a;
            s += p.w2[k] * a;
          }
          logits[ci] = s;
          if (s > mx) mx = s;
        }
        let z = 0;
        for (let ci = 0; ci < n; ci++) z += logits[ci] = Math.exp(logits[ci] - mx);
        for (let ci = 0; ci < n; ci++) {
          const prob = logits[ci] / z;
          const y = ci < t.cells.length ? t.weights[ci] : 0;
          if (y > 0) epochLoss -= y * Math.log(Math.max(1e-12, prob));
          const g = prob - y;
          if (Math.abs(g) < 1e-7) continue;
          const ao = ci * hidden;
          const po = ci * K;
          for (let k = 0; k < hidden; k++) {
            grads.w2[k] += g * acts[ao + k];
            dh[k] = acts[ao + k] > 0 ? g * p.w2[k] : 0;
          }
          for (let k = 0; k < hidden; k++) {
            const gk = dh[k];
            if (gk === 0) continue;
            grads.b1[k] += gk;
            const wo = k * K;
            for (let q = 0; q < K; q++) grads.w1[wo + q] += gk * patches[po + q];
          }
        }
      }
      step++;
      adamStep(p, grads, m1, m2, ['w1', 'b1', 'w2'] as const, step, cosineRate(lr0, step, steps, 0.05), 1 / (b1 - b0), (k) => (k === 'b1' ? 0 : 1e-4));
    }
    o.log?.(
      `detector epoch ${e + 1}/${epochs}: loss ${(epochLoss / order.length).toFixed(3)} (${((performance.now() - t0) / 1000).toFixed(1)} s, re-scoring ${(rescoreMs / 1000).toFixed(1)} s)`,
    );
  }
  // The temperature: the one whose expected position is nearest the labels on held-out scenes (errors capped at 4 cells).
  const heldRows = Array.from({ length: rows }, (_, i) => i).filter((i) => held[i]);
  const evalRows = heldRows.length > 0 ? heldRows : Array.from(trainRows);
  const scores = await scoreAll(p, x, rows, true);
  const sub = new Float32Array(evalRows.length * L);
  evalRows.forEach((r, k) => sub.set(scores.subarray(r * L, (r + 1) * L), k * L));
  let bestTau = 1;
  let bestCost = Infinity;
  let bestErr: number[] = [];
  for (const tau of TEMPERATURES) {
    const kp = softArgmax(sub, evalRows.length, H, W, tau);
    const err = evalRows.map((r, k) => Math.hypot(kp[2 * k] - d.labels[2 * r], kp[2 * k + 1] - d.labels[2 * r + 1]));
    const cost = err.reduce((a, v) => a + Math.min(v, 4), 0);
    if (cost < bestCost) {
      bestCost = cost;
      bestTau = tau;
      bestErr = err;
    }
  }
  p.temperature = bestTau;
  const sorted = [...bestErr].sort((a, b) => a - b);
  const heldOut = {
    frames: evalRows.length,
    median: sorted[Math.floor(sorted.length / 2)] ?? NaN,
    withinHalf: bestErr.filter((v) => v <= 0.5).length / Math.max(1, bestErr.length),
    withinOne: bestErr.filter((v) => v <= 1).length / Math.max(1, bestErr.length),
  };
  return { params: p, heldOut, seconds: (performance.now() - t0) / 1000 };
}

/** Keypoints (grid units) of raw feature rows under a fitted detector, via onnxruntime. */
export async function detectKeypoints(p: DetectorParams, features: Float32Array, rows: number, normalised = false): Promise<Float32Array> {
  const scores = await scoreAll(p, features, rows, normalised);
  return softArgmax(scores, rows, p.height, p.width, 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Controller: MLP on [keypoint (x, y in [-1, 1]) ‖ normalised state] → normalised action chunk.

export interface ControllerData {
  /** N × 2 keypoints in [-1, 1] (x across, y down). */
  keypoints: Float32Array;
  /** N × stateDim */
  state: Float32Array;
  /** N × chunk × actionDim */
  targets: Float32Array;
  rows: number;
  stateDim: number;
  chunk: number;
  actionDim: number;
}

/** The controller's MLP weights, its sizes and its state/action statistics. */
export interface ControllerParams extends MlpWeights {
  hidden: number;
  stateDim: number;
  chunk: number;
  actionDim: number;
  stateMean: Float32Array;
  stateStd: Float32Array;
  actionMean: Float32Array;
  actionStd: Float32Array;
}

export interface ControllerOptions {
  hidden?: number;
  epochs?: number;
  batch?: number;
  learningRate?: number;
  seed?: number;
  log?: (line: string) => void;
}

/** Fits the controller by behaviour cloning: Adam on the mean squared error of normalised action chunks. */
export function fitController(d: ControllerData, o: ControllerOptions = {}): { params: ControllerParams; trainMse: number; seconds: number } {
  const t0 = performance.now();
  const S = d.stateDim;
  const out = d.chunk * d.actionDim;
  const inDim = 2 + S;
  const H = o.hidden ?? 64;
  const rand = seededRandom(o.seed ?? 13);
  const ss = columnStats(d.state, d.rows, S);
  const as = columnStats(d.targets, d.rows * d.chunk, d.actionDim);
  const z = new Float32Array(d.rows * inDim);
  for (let r = 0; r < d.rows; r++) {
    z[r * inDim] = d.keypoints[2 * r];
    z[r * inDim + 1] = d.keypoints[2 * r + 1];
    for (let i = 0; i < S; i++) z[r * inDim + 2 + i] = (d.state[r * S + i] - ss.mean[i]) / (ss.std[i] + EPS);
  }
  const t = Float32Array.from(d.targets, (v, i) => (v - as.mean[i % d.actionDim]) / (as.std[i % d.actionDim] + EPS));
  const init = (n: number, scale: number) => Float32Array.from({ length: n }, () => gaussian(rand) * scale);
  const p: ControllerParams = {
    hidden: H,
    stateDim: S,
    chunk: d.chunk,
    actionDim: d.actionDim,
    stateMean: ss.mean,
    stateStd: ss.std,
    actionMean: as.mean,
    actionStd: as.std,
    w1: init(inDim * H, Math.sqrt(2 / inDim)),
    b1: new Float32Array(H),
    w2: init(H * H, Math.sqrt(2 / H)),
    b2: new Float32Array(H),
    w3: init(H * out, Math.sqrt(1 / H)),
    b3: new Float32Array(out),
  };
  const keys = ['w1', 'b1', 'w2', 'b2', 'w3', 'b3'] as const;
  const zeros = () => Object.fromEntries(keys.map((k) => [k, new Float32Array(p[k].length)])) as Record<(typeof keys)[number], Float32Array>;
  const g = zeros();
  const m1 = zeros();
  const m2 = zeros();
  const mlp = new MlpPass(inDim, H, out);
  const dy = new Float32Array(out);
  const epochs = o.epochs ?? 30;
  const batch = o.batch ?? 64;
  const lr0 = o.learningRate ?? 2e-3;
  const order = Int32Array.from({ length: d.rows }, (_, i) => i);
  const steps = Math.ceil(d.rows / batch) * epochs;
  let step = 0;
  const row = (r: number) => z.subarray(r * inDim, (r + 1) * inDim);
  for (let e = 0; e < epochs; e++) {
    shuffle(order, rand);
    let loss = 0;
    for (let b0 = 0; b0 < d.rows; b0 += batch) {
      const b1 = Math.min(d.rows, b0 + batch);
      for (const k of keys) g[k].fill(0);
      for (let bi = b0; bi < b1; bi++) {
        const r = order[bi];
        const zr = row(r);
        const y = mlp.forward(p, zr);
        for (let k = 0; k < out; k++) {
          dy[k] = y[k] - t[r * out + k];
          loss += dy[k] * dy[k];
        }
        mlp.backward(p, g, zr, dy);
      }
      step++;
      adamStep(p, g, m1, m2, keys, step, cosineRate(lr0, step, steps, 0.02), 1 / (b1 - b0));
    }
    if (e === epochs - 1 || (e + 1) % 10 === 0) o.log?.(`controller epoch ${e + 1}/${epochs}: MSE ${(loss / (d.rows * out)).toFixed(4)}`);
  }
  let se = 0;
  for (let r = 0; r < d.rows; r++) {
    const y = mlp.forward(p, row(r));
    for (let k = 0; k < out; k++) se += (y[k] - t[r * out + k]) ** 2;
  }
  return { params: p, trainMse: se / (d.rows * out), seconds: (performance.now() - t0) / 1000 };
}

/** The controller's unnormalised action chunk for one keypoint ([-1, 1]) and raw state, in TypeScript. */
export function predictController(p: ControllerParams, keypoint: ArrayLike<number>, state: ArrayLike<number>): Float32Array {
  const S = p.stateDim;
  const z = new Float32Array(2 + S);
  z[0] = keypoint[0];
  z[1] = keypoint[1];
  for (let i = 0; i < S; i++) z[2 + i] = (state[i] - p.stateMean[i]) / (p.stateStd[i] + EPS);
  const y = new MlpPass(2 + S, p.hidden, p.chunk * p.actionDim).forward(p, z);
  return Float32Array.from(y, (v, i) => v * (p.actionStd[i % p.actionDim] + EPS) + p.actionMean[i % p.actionDim]);
}

/**
 * The whole head as ONNX: 'features' [B, C·H·W] raw, 'state' [B, S] normalised (by the stats file) →
 * 'actions' [B, T, A] normalised, plus 'keypoint' [B, 2] in [-1, 1] for inspection.
 */
export function buildDetectorPolicy(det: DetectorParams, ctrl: ControllerParams): OnnxGraph {
  const L = det.height * det.width;
  const g = new OnnxGraph('s2_detector_policy');
  g.metadata['s2.policy'] = 'keypoint detector (3x3 conv, softmax) + MLP controller';
  const features = g.input('features', ['batch', det.channels * L]);
  const state = g.input('state', ['batch', ctrl.stateDim]);
  const kp = g.op('Reshape', [spatialSoftmaxGraph(g, detectorGraph(g, det, features), 1, det.height, det.width, 'detector'), g.ints([-1, 2])], {}, 'keypoint');
  const z = g.op('Concat', [kp, state], { axis: 1 });
  const y = mlpGraph(g, z, ctrl, 2 + ctrl.stateDim, ctrl.hidden, ctrl.chunk * ctrl.actionDim, 'controller');
  g.op('Reshape', [y, g.ints([-1, ctrl.chunk, ctrl.actionDim])], {}, 'actions');
  g.output('actions', ['batch', ctrl.chunk, ctrl.actionDim]);
  g.output('keypoint', ['batch', 2]);
  return g;
}

/** Writes the head (ONNX) and its statistics (state and action; the features' are inside the model). */
export function writeDetectorPolicy(
  out: string | { model: string; stats?: string },
  det: DetectorParams,
  ctrl: ControllerParams,
): { model: string; stats: string } {
  const paths = policyPaths(out);
  const stats = {
    'observation.state': { mean: Array.from(ctrl.stateMean), std: Array.from(ctrl.stateStd) },
    action: { mean: Array.from(ctrl.actionMean), std: Array.from(ctrl.actionStd) },
  };
  writeBoth(paths.model, buildDetectorPolicy(det, ctrl).serialize(), paths.stats, JSON.stringify(stats) + '\n');
  return paths;
}
