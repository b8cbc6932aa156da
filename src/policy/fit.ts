// Fits a linear policy head by ridge regression on S² features (the paper's linear-probe protocol, applied to
// behaviour cloning): standardise, choose λ on held-out episodes, solve in closed form, write ONNX + statistics.
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { buildLinearPolicy } from '../models/policy.js';
import type { Tensor } from '../s2/tensor.js';
import { choleskyInPlace, choleskySolveInPlace, gramRows, matmul, matmulTN, NotPositiveDefiniteError, transpose, type Matrix } from './linalg.js';

export type { Matrix } from './linalg.js';

/** primal: (XᵀX + λI)⁻¹XᵀY, a D×D system; dual: Xᵀ(XXᵀ + λI)⁻¹Y, an N×N system. Same W in exact arithmetic. */
export type RidgeForm = 'primal' | 'dual';

export interface RidgeFit {
  /** D×K, row-major. */
  W: Float64Array;
  /** K: the unpenalised intercept, ȳ − x̄ᵀW. */
  b: Float64Array;
  form: RidgeForm;
}

export interface LambdaScore {
  lambda: number;
  /** Mean squared error over every held-out row and output column. */
  mse: number;
}

export interface LambdaSelection {
  lambda: number;
  /** Held-out MSE of predicting each fold's training mean (what any λ must beat to be worth anything). */
  meanMse: number;
  /** One per λ, in ascending λ. */
  scores: LambdaScore[];
  /** 'episodes': whole episodes held out; 'blocks': one episode only, contiguous blocks of rows held out instead. */
  protocol: 'episodes' | 'blocks';
  folds: number;
  /** One line describing the protocol, for logs. */
  note: string;
}

export interface FoldPlan {
  /** Fold index of each row. */
  fold: Int32Array;
  folds: number;
  episodes: number;
  protocol: 'episodes' | 'blocks';
}

/** 1e-3 … 1e4, one per decade. */
export const DEFAULT_LAMBDAS: readonly number[] = [1e-3, 1e-2, 1e-1, 1, 10, 100, 1e3, 1e4];

/** Per-dimension standard deviations are floored here, so that constant inputs normalise to 0 instead of NaN. */
export const STD_FLOOR = 1e-6;
/** The ε PolicyHead adds to std (src/policy/stats.ts); training normalises with the same formula. */
const STATS_EPS = 1e-8;

// ---------------------------------------------------------------------------------------------------------------
// Validation

function shape(m: Matrix): string {
  return `${m.rows}×${m.cols}`;
}

function checkMatrix(where: string, name: string, m: Matrix): void {
  if (!Number.isInteger(m.rows) || !Number.isInteger(m.cols) || m.rows < 0 || m.cols < 1) {
    throw new UserError(`${where}: ${name} has an invalid shape ${m.rows}×${m.cols}`);
  }
  if (m.data.length !== m.rows * m.cols) throw new UserError(`${where}: ${name} has ${m.data.length} values, its shape ${shape(m)} needs ${m.rows * m.cols}`);
  if (m.rows === 0) throw new UserError(`${where}: ${name} has no rows (shape ${shape(m)})`);
  const d = m.data;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) throw new UserError(`${where}: ${name}[${Math.floor(i / m.cols)}, ${i % m.cols}] is ${d[i]}, expected a finite number`);
  }
}

function checkPair(where: string, X: Matrix, Y: Matrix): void {
  checkMatrix(where, 'X', X);
  checkMatrix(where, 'Y', Y);
  if (X.rows !== Y.rows) throw new UserError(`${where}: Y has ${Y.rows} rows (shape ${shape(Y)}), X has ${X.rows} (shape ${shape(X)})`);
}

function checkLambda(where: string, lambda: number): void {
  if (!Number.isFinite(lambda) || lambda < 0) throw new UserError(`${where}: lambda must be a finite number ≥ 0, got ${lambda}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Ridge regression

/** X and Y centred on their column means, in float64, with the Gram matrices computed at most once each. */
class CentredProblem {
  private readonly grams: Partial<Record<RidgeForm, Float64Array>> = {};
  private xtyCache: Float64Array | undefined;

  private constructor(
    readonly x: Float64Array,
    readonly y: Float64Array,
    readonly n: number,
    readonly d: number,
    readonly k: number,
    readonly xMean: Float64Array,
    readonly yMean: Float64Array,
  ) {}

  static of(X: Matrix, Y: Matrix): CentredProblem {
    const [x, xMean] = centred(X);
    const [y, yMean] = centred(Y);
    return new CentredProblem(x, y, X.rows, X.cols, Y.cols, xMean, yMean);
  }

  /** primal: XcᵀXc (D×D); dual: XcXcᵀ (N×N). */
  gram(form: RidgeForm): Float64Array {
    return (this.grams[form] ??= form === 'primal' ? gramRows(transpose(this.x, this.n, this.d), this.d, this.n) : gramRows(this.x, this.n, this.d));
  }

  /** XcᵀYc (D×K). */
  xty(): Float64Array {
    return (this.xtyCache ??= matmulTN(this.x, this.n, this.d, this.y, this.k));
  }

  hasGram(form: RidgeForm): boolean {
    return this.grams[form] !== undefined;
  }

  solve(form: RidgeForm, lambda: number, where: string): RidgeFit {
    const { n, d, k } = this;
    const m = form === 'primal' ? d : n;
    const l = factor(this.gram(form), m, lambda, form, where);
    let W: Float64Array;
    if (form === 'primal') {
      W = choleskySolveInPlace(l, d, this.xty().slice(), k);
    } else {
      const alpha = choleskySolveInPlace(l, n, this.y.slice(), k);
      W = matmulTN(this.x, n, d, alpha, k);
    }
    return { W, b: intercept(this.yMean, this.xMean, W, d, k), form };
  }
}

function centred(A: Matrix): [Float64Array, Float64Array] {
  const { rows, cols } = A;
  const out = Float64Array.from(A.data);
  const mean = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mean[j] += out[i * cols + j];
  for (let j = 0; j < cols; j++) mean[j] /= rows;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[i * cols + j] -= mean[j];
  return [out, mean];
}

/** Cholesky factor of gram + λI (gram is left untouched); a user-readable error when it is not positive definite. */
function factor(gram: Float64Array, m: number, lambda: number, form: RidgeForm, where: string): Float64Array {
  const a = gram.slice();
  for (let i = 0; i < m; i++) a[i * m + i] += lambda;
  try {
    return choleskyInPlace(a, m);
  } catch (e) {
    if (!(e instanceof NotPositiveDefiniteError)) throw e;
    throw new UserError(
      `${where}: the ${form} ridge system (${m}×${m}) with lambda=${lambda} is not positive definite (pivot ${e.pivot} is ${e.value.toPrecision(3)}); use a larger lambda`,
    );
  }
}

/** b = ȳ − x̄ᵀW. */
function intercept(yMean: Float64Array, xMean: Float64Array, W: Float64Array, d: number, k: number): Float64Array {
  const b = Float64Array.from(yMean);
  for (let j = 0; j < d; j++) {
    const f = xMean[j];
    if (f === 0) continue;
    for (let t = 0; t < k; t++) b[t] -= f * W[j * k + t];
  }
  return b;
}

/**
 * Ridge regression Y ≈ X·W + b in closed form, float64 throughout. X and Y are centred first, so the intercept is
 * not penalised; X is expected to be standardised already (fitPolicy does it). `form` defaults to the smaller
 * system: primal when D ≤ N, dual when features outnumber samples.
 */
export function fitRidge(X: Matrix, Y: Matrix, lambda: number, options: { form?: RidgeForm } = {}): RidgeFit {
  checkPair('fitRidge', X, Y);
  checkLambda('fitRidge', lambda);
  const form = options.form ?? (X.cols <= X.rows ? 'primal' : 'dual');
  return CentredProblem.of(X, Y).solve(form, lambda, 'fitRidge');
}

/** X·W + b for every row of X. */
export function predictRidge(X: Matrix, fit: RidgeFit): Float64Array {
  const k = fit.b.length;
  if (fit.W.length !== X.cols * k) throw new UserError(`predictRidge: X has ${X.cols} columns (shape ${shape(X)}), W has ${fit.W.length / k} rows`);
  const out = matmul(X.data instanceof Float64Array ? X.data : Float64Array.from(X.data), X.rows, X.cols, fit.W, k);
  for (let i = 0; i < X.rows; i++) for (let t = 0; t < k; t++) out[i * k + t] += fit.b[t];
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Choosing λ on held-out episodes

/**
 * Which rows each fold holds out. With two or more episodes: min(maxFolds, #episodes) folds of whole episodes,
 * assigned largest episode first to the fold with the fewest rows (scikit-learn's GroupKFold), so no episode is
 * ever split between training and held-out rows. With a single episode: min(maxFolds, N) contiguous blocks.
 */
export function episodeFolds(groups: Int32Array, maxFolds = 5): FoldPlan {
  const n = groups.length;
  if (!Number.isInteger(maxFolds) || maxFolds < 2) throw new UserError(`selectLambda: folds must be an integer ≥ 2, got ${maxFolds}`);
  const sizes = new Map<number, number>();
  for (const g of groups) sizes.set(g, (sizes.get(g) ?? 0) + 1);
  const fold = new Int32Array(n);
  if (sizes.size >= 2) {
    const folds = Math.min(maxFolds, sizes.size);
    // Map iteration order is first appearance; the sort is stable, so equal sizes keep that order.
    const order = [...sizes.entries()].sort((a, b) => b[1] - a[1]);
    const load = new Array<number>(folds).fill(0);
    const foldOf = new Map<number, number>();
    for (const [id, size] of order) {
      let best = 0;
      for (let f = 1; f < folds; f++) if (load[f] < load[best]) best = f;
      foldOf.set(id, best);
      load[best] += size;
    }
    for (let i = 0; i < n; i++) fold[i] = foldOf.get(groups[i])!;
    return { fold, folds, episodes: sizes.size, protocol: 'episodes' };
  }
  if (n < 2) throw new UserError(`selectLambda: ${n} row${n === 1 ? '' : 's'}; at least 2 are needed to hold any out`);
  const folds = Math.min(maxFolds, n);
  for (let i = 0; i < n; i++) fold[i] = Math.floor((i * folds) / n);
  return { fold, folds, episodes: sizes.size, protocol: 'blocks' };
}

function describe(plan: FoldPlan): string {
  return plan.protocol === 'episodes'
    ? `${plan.folds}-fold cross-validation over ${plan.episodes} episodes (whole episodes held out)`
    : `one episode only: ${plan.folds} contiguous blocks of rows held out instead of episodes (neighbouring rows are correlated, so the scores are optimistic)`;
}

function checkLambdas(where: string, lambdas: readonly number[]): number[] {
  if (lambdas.length === 0) throw new UserError(`${where}: lambdas is empty`);
  for (const l of lambdas) checkLambda(where, l);
  return [...new Set(lambdas)].sort((a, b) => a - b);
}

/**
 * Held-out mean squared error of ridge fits for each λ (see episodeFolds for the protocol); the best λ is the one
 * with the lowest error, the larger λ on a tie. Each fold reuses one Gram matrix of the whole data set: the primal
 * form subtracts the held-out rows' XᵀX, the dual form takes the training block of XXᵀ; both re-centre on the
 * training rows, so every fold is the exact ridge fit on its training rows alone.
 */
export function selectLambda(X: Matrix, Y: Matrix, groups: Int32Array, lambdas: readonly number[], options: { folds?: number } = {}): LambdaSelection {
  checkPair('selectLambda', X, Y);
  if (groups.length !== X.rows) throw new UserError(`selectLambda: groups has ${groups.length} values, X has ${X.rows} rows (shape ${shape(X)})`);
  return selectOn(CentredProblem.of(X, Y), groups, checkLambdas('selectLambda', lambdas), options.folds ?? 5, 'selectLambda');
}

function selectOn(p: CentredProblem, groups: Int32Array, lambdas: number[], maxFolds: number, where: string): LambdaSelection {
  const plan = episodeFolds(groups, maxFolds);
  const { n, d } = p;
  const counts = new Int32Array(plan.folds);
  for (const f of plan.fold) counts[f]++;
  const minTrain = n - Math.max(...counts);
  // The smaller system per fold. (λ = 0 can only work in the primal form: a centred kernel matrix is singular.)
  const form: RidgeForm = d <= minTrain ? 'primal' : 'dual';
  const se = new Float64Array(lambdas.length);
  let meanSe = 0;
  for (let f = 0; f < plan.folds; f++) {
    const train: number[] = [];
    const held: number[] = [];
    for (let i = 0; i < n; i++) (plan.fold[i] === f ? held : train).push(i);
    meanSe += meanPredictionError(p.y, p.k, train, held);
    const fold = form === 'primal' ? primalFold(p, train, held) : dualFold(p, train, held);
    lambdas.forEach((lambda, li) => {
      se[li] += fold(lambda, where);
    });
  }
  const scores = lambdas.map((lambda, i) => ({ lambda, mse: se[i] / (n * p.k) }));
  let best = scores[0];
  for (const s of scores) if (s.mse <= best.mse) best = s;
  return { lambda: best.lambda, meanMse: meanSe / (n * p.k), scores, protocol: plan.protocol, folds: plan.folds, note: describe(plan) };
}

/** Squared error on the held-out rows of predicting the training rows' mean. */
function meanPredictionError(y: Float64Array, k: number, train: number[], held: number[]): number {
  const m = new Float64Array(k);
  for (const i of train) for (let t = 0; t < k; t++) m[t] += y[i * k + t];
  for (let t = 0; t < k; t++) m[t] /= train.length;
  let s = 0;
  for (const i of held) for (let t = 0; t < k; t++) s += (y[i * k + t] - m[t]) ** 2;
  return s;
}

/**
 * Warnings about a λ selection a user should act on: the chosen λ at an end of a grid of several (the best may lie
 * beyond it), or no λ beating the mean prediction on held-out rows (the features carry nothing usable).
 */
export function selectionWarnings(sel: Pick<LambdaSelection, 'lambda' | 'scores' | 'meanMse'>): string[] {
  const out: string[] = [];
  const grid = sel.scores.map((s) => s.lambda);
  const best = sel.scores.find((s) => s.lambda === sel.lambda)!;
  if (grid.length > 1 && sel.lambda === grid[grid.length - 1]) {
    out.push(`λ = ${sel.lambda} is the largest of the grid (${grid.join(', ')}): the held-out error may still fall beyond it; widen --lambdas`);
  } else if (grid.length > 1 && sel.lambda === grid[0] && sel.lambda > 0) {
    out.push(`λ = ${sel.lambda} is the smallest of the grid (${grid.join(', ')}): the held-out error may still fall below it; widen --lambdas`);
  }
  if (!(best.mse < sel.meanMse)) {
    out.push(
      `no λ beats predicting the mean action on held-out episodes (best held-out MSE ${best.mse.toPrecision(4)} ≥ ${sel.meanMse.toPrecision(4)} for the mean): the features carry no usable signal for these actions`,
    );
  }
  return out;
}

function rowsOf(a: Float64Array, cols: number, rows: readonly number[]): Float64Array {
  const out = new Float64Array(rows.length * cols);
  rows.forEach((r, i) => out.set(a.subarray(r * cols, (r + 1) * cols), i * cols));
  return out;
}

function columnSums(a: Float64Array, rows: number, cols: number): Float64Array {
  const s = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) s[j] += a[i * cols + j];
  return s;
}

function squaredError(pred: Float64Array, truth: Float64Array): number {
  let s = 0;
  for (let i = 0; i < pred.length; i++) s += (pred[i] - truth[i]) ** 2;
  return s;
}

type FoldScorer = (lambda: number, where: string) => number;

/** Training Gram = (whole-data Gram) − (held-out rows' Gram), re-centred on the training mean: D×D systems. */
function primalFold(p: CentredProblem, train: number[], held: number[]): FoldScorer {
  const { d, k } = p;
  const nt = train.length;
  const nv = held.length;
  const xv = rowsOf(p.x, d, held);
  const yv = rowsOf(p.y, k, held);
  const gv = gramRows(transpose(xv, nv, d), d, nv);
  const gram = p.gram('primal');
  const xtyAll = p.xty();
  const xtyHeld = matmulTN(xv, nv, d, yv, k);
  const mx = columnSums(p.x, p.n, d);
  const mxv = columnSums(xv, nv, d);
  const my = columnSums(p.y, p.n, k);
  const myv = columnSums(yv, nv, k);
  for (let j = 0; j < d; j++) mx[j] = (mx[j] - mxv[j]) / nt;
  for (let t = 0; t < k; t++) my[t] = (my[t] - myv[t]) / nt;
  const g = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) g[i * d + j] = gram[i * d + j] - gv[i * d + j] - nt * mx[i] * mx[j];
  const rhs = new Float64Array(d * k);
  for (let j = 0; j < d; j++) for (let t = 0; t < k; t++) rhs[j * k + t] = xtyAll[j * k + t] - xtyHeld[j * k + t] - nt * mx[j] * my[t];
  return (lambda, where) => {
    const l = factor(g, d, lambda, 'primal', where);
    const W = choleskySolveInPlace(l, d, rhs.slice(), k);
    const pred = predictRidge({ rows: nv, cols: d, data: xv }, { W, b: intercept(my, mx, W, d, k), form: 'primal' });
    return squaredError(pred, yv);
  };
}

/** The training block of the whole-data kernel XXᵀ, re-centred on the training mean: N_train×N_train systems. */
function dualFold(p: CentredProblem, train: number[], held: number[]): FoldScorer {
  const { n, k } = p;
  const K = p.gram('dual');
  const nt = train.length;
  const nv = held.length;
  // With m the training mean: (xᵢ−m)·(xⱼ−m) = Kᵢⱼ − rᵢ − rⱼ + μ, where rᵢ = xᵢ·m and μ = m·m.
  const rowMean = (i: number) => {
    let s = 0;
    for (const j of train) s += K[i * n + j];
    return s / nt;
  };
  const r = Float64Array.from(train, rowMean);
  let mu = 0;
  for (const v of r) mu += v;
  mu /= nt;
  const kt = new Float64Array(nt * nt);
  for (let a = 0; a < nt; a++) for (let b = 0; b < nt; b++) kt[a * nt + b] = K[train[a] * n + train[b]] - r[a] - r[b] + mu;
  const kv = new Float64Array(nv * nt);
  held.forEach((v, a) => {
    const av = rowMean(v);
    for (let b = 0; b < nt; b++) kv[a * nt + b] = K[v * n + train[b]] - av - r[b] + mu;
  });
  const yt = rowsOf(p.y, k, train);
  const yv = rowsOf(p.y, k, held);
  const my = columnSums(yt, nt, k);
  for (let t = 0; t < k; t++) my[t] /= nt;
  for (let a = 0; a < nt; a++) for (let t = 0; t < k; t++) yt[a * k + t] -= my[t];
  return (lambda, where) => {
    const l = factor(kt, nt, lambda, 'dual', where);
    const alpha = choleskySolveInPlace(l, nt, yt.slice(), k);
    const pred = matmul(kv, nv, nt, alpha, k);
    for (let a = 0; a < nv; a++) for (let t = 0; t < k; t++) pred[a * k + t] += my[t];
    return squaredError(pred, yv);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Policies

export interface MeanStdJson {
  mean: number[];
  std: number[];
}

/** The statistics file PolicyHead reads (src/policy/stats.ts). */
export interface PolicyStatsJson {
  'observation.features': MeanStdJson;
  'observation.state'?: MeanStdJson;
  action: MeanStdJson;
}

export interface PolicyData {
  /** [N, featureDim] */
  features: Tensor;
  /** [N, stateDim], for a policy that also takes the joint state. */
  state?: Tensor;
  /**
   * [N, actionDim]: one action per row, stacked into chunks of the next `chunk` actions of the same episode; or
   * [N, chunk, actionDim]: the chunk targets themselves.
   */
  actions: Tensor;
  /** Episode id of each row; an episode's rows are contiguous and in time order. */
  episodes: Int32Array;
}

export interface FitPolicyOptions {
  chunk: number;
  /** Candidate λ, chosen by held-out episodes; default DEFAULT_LAMBDAS. */
  lambdas?: readonly number[];
  /** At most this many cross-validation folds (default 5). */
  folds?: number;
}

export interface PolicyFit {
  /** (featureDim + stateDim) × (chunk·actionDim), row-major, in normalised units: buildLinearPolicy's weight. */
  weight: Float32Array;
  /** chunk·actionDim */
  bias: Float32Array;
  stats: PolicyStatsJson;
  lambda: number;
  scores: LambdaScore[];
  selection: { protocol: 'episodes' | 'blocks'; folds: number; note: string; meanMse: number };
  /** What the user should know about the selection (selectionWarnings); empty when all is well. */
  warnings: string[];
  /** Mean squared error of the final fit on its training rows, in normalised action units (as the scores). */
  trainMse: number;
  featureDim: number;
  stateDim: number;
  actionDim: number;
  chunk: number;
}

function rows2(t: Tensor, name: string): Matrix {
  if (t.dims.length !== 2) throw new UserError(`fitPolicy: ${name} must be 2-D [N, D], got shape [${t.dims.join(', ')}]`);
  const m = { rows: t.dims[0], cols: t.dims[1], data: t.data };
  checkMatrix('fitPolicy', `${name} [${t.dims.join(', ')}]`, m);
  return m;
}

/**
 * Chunk targets [N, chunk, A] from one action per row [N, A]: row i's chunk is actions i … i+chunk−1 of its episode,
 * padded with the episode's last action. Episodes must occupy contiguous runs of rows.
 */
export function stackChunks(actions: Tensor, episodes: Int32Array, chunk: number): Tensor {
  if (!Number.isInteger(chunk) || chunk < 1) throw new UserError(`stackChunks: chunk must be an integer ≥ 1, got ${chunk}`);
  if (actions.dims.length !== 2) throw new UserError(`stackChunks: actions must be [N, actionDim], got shape [${actions.dims.join(', ')}]`);
  const [n, a] = actions.dims;
  if (episodes.length !== n) throw new UserError(`stackChunks: episodes has ${episodes.length} values, actions has ${n} rows (shape [${n}, ${a}])`);
  // end[i]: one past the last row of row i's episode.
  const end = new Int32Array(n);
  const seen = new Set<number>();
  for (let start = 0; start < n;) {
    let stop = start + 1;
    while (stop < n && episodes[stop] === episodes[start]) stop++;
    if (seen.has(episodes[start])) {
      throw new UserError(
        `stackChunks: episode ${episodes[start]} appears again at row ${start} after other episodes; an episode's rows must be contiguous and in time order`,
      );
    }
    seen.add(episodes[start]);
    end.fill(stop, start, stop);
    start = stop;
  }
  const out = new Float32Array(n * chunk * a);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < chunk; t++) {
      const src = Math.min(i + t, end[i] - 1);
      out.set(actions.data.subarray(src * a, (src + 1) * a), (i * chunk + t) * a);
    }
  }
  return { dims: [n, chunk, a], data: out };
}

/** The episode with the fewest rows (an episode is a contiguous run of one id). */
export function shortestEpisode(episodes: Int32Array): { id: number; rows: number } {
  let best = { id: episodes[0], rows: Infinity };
  for (let start = 0; start < episodes.length;) {
    let stop = start + 1;
    while (stop < episodes.length && episodes[stop] === episodes[start]) stop++;
    if (stop - start < best.rows) best = { id: episodes[start], rows: stop - start };
    start = stop;
  }
  return best;
}

/**
 * The shortest chunk that keeps the controller supplied: a chunk must last from the features that made it until
 * the next features are processed, i.e. the slowest camera's period plus the processing time, in control ticks.
 */
export function coveringChunk(framePeriodMs: number, processingMs: number, rateHz: number): number {
  for (const [name, v] of [
    ['frame period', framePeriodMs],
    ['processing time', processingMs],
    ['control rate', rateHz],
  ] as const) {
    if (!Number.isFinite(v) || v < 0 || (name === 'control rate' && v <= 0)) throw new UserError(`fit: ${name} must be a finite number ≥ 0, got ${v}`);
  }
  return Math.max(1, Math.ceil(((framePeriodMs + processingMs) * rateHz) / 1000 - 1e-9));
}

/** Per-column mean and floored std, rounded to float32 as the statistics file and PolicyHead will hold them. */
function meanStd(data: Float32Array, rows: number, cols: number): MeanStdJson {
  const mean = new Float64Array(cols);
  const sq = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mean[j] += data[i * cols + j];
  for (let j = 0; j < cols; j++) mean[j] /= rows;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) sq[j] += (data[i * cols + j] - mean[j]) ** 2;
  return {
    mean: Array.from(mean, (m) => Math.fround(m)),
    std: Array.from(sq, (s) => Math.fround(Math.max(STD_FLOOR, Math.sqrt(s / rows)))),
  };
}

/** Writes (x − mean)/(std + ε) for columns [0, s.mean.length) of `data` into `out` at column offset `at`. */
function normaliseInto(out: Float64Array, outCols: number, at: number, data: Float32Array, rows: number, s: MeanStdJson): void {
  const cols = s.mean.length;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[i * outCols + at + j] = (data[i * cols + j] - s.mean[j]) / (s.std[j] + STATS_EPS);
}

/**
 * Fits a linear policy head: inputs [features ‖ state] and chunk targets standardised per dimension (these become
 * the statistics file, so the ONNX head sees exactly the training inputs), λ chosen by selectLambda on the
 * episodes, then ridge on all rows. PolicyHead's normalise → model → unnormalise reproduces the fit's predictions.
 */
export function fitPolicy(data: PolicyData, options: FitPolicyOptions): PolicyFit {
  const { chunk } = options;
  if (!Number.isInteger(chunk) || chunk < 1) throw new UserError(`fitPolicy: chunk must be an integer ≥ 1, got ${chunk}`);
  const features = rows2(data.features, 'features');
  const n = features.rows;
  const state = data.state !== undefined ? rows2(data.state, 'state') : undefined;
  if (state && state.rows !== n) throw new UserError(`fitPolicy: state has ${state.rows} rows (shape [${data.state!.dims.join(', ')}]), features has ${n}`);
  if (data.episodes.length !== n) throw new UserError(`fitPolicy: episodes has ${data.episodes.length} values, features has ${n} rows`);

  const ad = data.actions.dims;
  let targets: Tensor;
  if (ad.length === 2) {
    rows2(data.actions, 'actions');
    if (ad[0] !== n) throw new UserError(`fitPolicy: actions has ${ad[0]} rows (shape [${ad.join(', ')}]), features has ${n}`);
    const shortest = shortestEpisode(data.episodes);
    if (chunk > shortest.rows) {
      throw new UserError(
        `fitPolicy: chunk ${chunk} is longer than the shortest episode (episode ${shortest.id}, ${shortest.rows} row${shortest.rows === 1 ? '' : 's'}); its chunks would repeat the last action`,
      );
    }
    targets = stackChunks(data.actions, data.episodes, chunk);
  } else if (ad.length === 3) {
    if (ad[0] !== n || ad[1] !== chunk)
      throw new UserError(`fitPolicy: actions has shape [${ad.join(', ')}], expected [${n}, ${chunk}, actionDim] (N rows, chunk ${chunk})`);
    checkMatrix('fitPolicy', `actions [${ad.join(', ')}]`, { rows: n * chunk, cols: ad[2], data: data.actions.data });
    targets = data.actions;
  } else {
    throw new UserError(`fitPolicy: actions must be [N, actionDim] or [N, chunk, actionDim], got shape [${ad.join(', ')}]`);
  }
  const actionDim = targets.dims[2];
  const featureDim = features.cols;
  const stateDim = state?.cols ?? 0;

  // Statistics of the inputs, and of the actions themselves (per action dimension, as the head unnormalises).
  const actionStats = ad.length === 2 ? meanStd(data.actions.data, n, actionDim) : meanStd(targets.data, n * chunk, actionDim);
  const stats: PolicyStatsJson = { 'observation.features': meanStd(data.features.data, n, featureDim), action: actionStats };
  if (state) stats['observation.state'] = meanStd(data.state!.data, n, stateDim);

  const inDim = featureDim + stateDim;
  const outDim = chunk * actionDim;
  const x = new Float64Array(n * inDim);
  normaliseInto(x, inDim, 0, data.features.data, n, stats['observation.features']);
  if (state) normaliseInto(x, inDim, featureDim, data.state!.data, n, stats['observation.state']!);
  const y = new Float64Array(n * outDim);
  for (let i = 0; i < n * chunk; i++) {
    for (let j = 0; j < actionDim; j++) y[i * actionDim + j] = (targets.data[i * actionDim + j] - actionStats.mean[j]) / (actionStats.std[j] + STATS_EPS);
  }

  const X = { rows: n, cols: inDim, data: x };
  const Y = { rows: n, cols: outDim, data: y };
  const lambdas = checkLambdas('fitPolicy', options.lambdas ?? DEFAULT_LAMBDAS);
  const problem = CentredProblem.of(X, Y);
  const selection = selectOn(problem, data.episodes, lambdas, options.folds ?? 5, 'fitPolicy');
  // Reuse the Gram matrix selection already built when its form can solve this λ.
  const form: RidgeForm = problem.hasGram('dual') && selection.lambda > 0 ? 'dual' : inDim <= n ? 'primal' : 'dual';
  const fit = problem.solve(form, selection.lambda, 'fitPolicy');
  const trainMse = squaredError(predictRidge(X, fit), y) / (n * outDim);

  return {
    weight: Float32Array.from(fit.W),
    bias: Float32Array.from(fit.b),
    stats,
    lambda: selection.lambda,
    scores: selection.scores,
    selection: { protocol: selection.protocol, folds: selection.folds, note: selection.note, meanMse: selection.meanMse },
    warnings: selectionWarnings(selection),
    trainMse,
    featureDim,
    stateDim,
    actionDim,
    chunk,
  };
}

/**
 * The fitted head's unnormalised actions [rows × chunk·actionDim] for raw features (and state) of one or more rows,
 * computed in float64 from the float32 weights and statistics the ONNX head and PolicyHead use.
 */
export function predictPolicy(fit: PolicyFit, features: Float32Array, state?: Float32Array): Float64Array {
  const { featureDim, stateDim, actionDim } = fit;
  const rows = features.length / featureDim;
  if (!Number.isInteger(rows)) throw new UserError(`predictPolicy: features has ${features.length} values, not a multiple of featureDim ${featureDim}`);
  if (stateDim > 0 && state?.length !== rows * stateDim)
    throw new UserError(`predictPolicy: state has ${state?.length ?? 'no'} values, expected ${rows}×${stateDim}`);
  const inDim = featureDim + stateDim;
  const x = new Float64Array(rows * inDim);
  normaliseInto(x, inDim, 0, features, rows, fit.stats['observation.features']);
  if (stateDim > 0) normaliseInto(x, inDim, featureDim, state!, rows, fit.stats['observation.state']!);
  const out = predictRidge({ rows, cols: inDim, data: x }, { W: Float64Array.from(fit.weight), b: Float64Array.from(fit.bias), form: 'primal' });
  const { mean, std } = fit.stats.action;
  for (let i = 0; i < out.length; i++) {
    const j = i % actionDim;
    out[i] = out[i] * (std[j] + STATS_EPS) + mean[j];
  }
  return out;
}

/**
 * Writes the head as ONNX (buildLinearPolicy: inputs 'features' and, with a state, 'state'; output 'actions'
 * [B, chunk, actionDim]) and its statistics JSON. `out` is a folder (policy.onnx + policy.stats.json inside), a
 * .onnx path (statistics beside it as <name>.stats.json, the name the configuration looks for), or explicit paths.
 * Existing files are replaced (each written under a temporary name, then renamed).
 */
export function writePolicy(out: string | { model: string; stats?: string }, fit: PolicyFit): { model: string; stats: string } {
  const { model, stats } = policyPaths(out);
  const { featureDim, stateDim, chunk, actionDim, weight, bias } = fit;
  if (weight.length !== (featureDim + stateDim) * chunk * actionDim || bias.length !== chunk * actionDim) {
    throw new UserError(
      `writePolicy: weight has ${weight.length} values and bias ${bias.length}, expected ${featureDim + stateDim}×${chunk * actionDim} and ${chunk * actionDim}`,
    );
  }
  const bytes = buildLinearPolicy({ featureDim, stateDim, chunk, actionDim, weight, bias }).serialize();
  writeBoth(model, bytes, stats, JSON.stringify(fit.stats, null, 1) + '\n');
  return { model, stats };
}

/** Writes a model and its statistics, each under a temporary name renamed when complete. */
export function writeBoth(model: string, bytes: Uint8Array, stats: string, text: string): void {
  mkdirSync(dirname(model), { recursive: true });
  mkdirSync(dirname(stats), { recursive: true });
  writeFileAtomic(model, bytes);
  writeFileAtomic(stats, text);
}

/** The model and statistics paths writePolicy uses for `out`. */
export function policyPaths(out: string | { model: string; stats?: string }): { model: string; stats: string } {
  const model = typeof out !== 'string' ? out.model : /\.onnx$/i.test(out) ? out : join(out, 'policy.onnx');
  const stats = (typeof out !== 'string' ? out.stats : undefined) ?? model.replace(/\.onnx$/i, '') + '.stats.json';
  return { model, stats };
}
