// The hindsight recipe of the behaviour-cloning head: from demonstrations alone (S² maps, joint states, commands),
// a per-demonstration keypoint label where the arm's tip comes to rest, then the detector head's own training
// (detector.ts) on those labels. The arm's image position is self-calibrated from the recording: within an episode
// the scene is static, so the cells where a frame differs from the episode's per-cell median are the arm, its tip is
// among the most-changed cells, and a map linear in the planar chain's basis (cos/sin of the cumulative joint angles)
// from the joint state to that tip is fitted robustly (RANSAC, then refits) over every frame. Nothing here reads the
// simulation's target, its camera model or its kinematics.
import { UserError } from '../errors.js';
import { seededRandom } from '../models/zoo.js';
import type { BcData } from './bc.js';
import { fitController, fitDetector, type ControllerParams, type DetectorFit, type DetectorParams } from './detector.js';
import { stackChunks } from './fit.js';
import { choleskyInPlace, choleskySolveInPlace } from './linalg.js';
import { channelStats, gaussian } from './train.js';

/** The joint state's basis for an arm whose joints turn in one plane seen from above: [cos Σq, sin Σq per link…, 1]. */
export function chainBasis(q: ArrayLike<number>, out = new Float64Array(2 * q.length + 1)): Float64Array {
  let a = 0;
  for (let i = 0; i < q.length; i++) {
    a += q[i];
    out[2 * i] = Math.cos(a);
    out[2 * i + 1] = Math.sin(a);
  }
  out[2 * q.length] = 1;
  return out;
}

/** A fitted joint-state → tip position map: position = weights (2 × basis) · chainBasis(q), in grid cells. */
export interface ArmCalibration {
  stateDim: number;
  /** Row-major 2 × (2·stateDim + 1). */
  weights: Float64Array;
  /** Frames that took part (episodes with at least 3 frames), and those whose tip was found near the map. */
  frames: number;
  inliers: number;
  /** Median distance (cells) from the map to the changed cell it was refitted on. */
  medianResidual: number;
}

export function armTip(cal: ArmCalibration, q: ArrayLike<number>): [number, number] {
  const f = chainBasis(q);
  const n = f.length;
  let x = 0;
  let y = 0;
  for (let i = 0; i < n; i++) {
    x += cal.weights[i] * f[i];
    y += cal.weights[n + i] * f[i];
  }
  return [x, y];
}

/**
 * For each frame of one episode, each cell's squared distance (over standardised channels) to that cell's median
 * over the episode's frames: the static scene scores 0, the arm where it is in this frame (and where it hides
 * something in the median) scores high. Needs at least 3 frames for the median to be the background.
 */
export function changeScores(features: Float32Array, frames: number[], C: number, L: number, std: Float32Array): Float32Array[] {
  const n = frames.length;
  const per = C * L;
  const out = frames.map(() => new Float32Array(L));
  const v = new Float32Array(n);
  const s = new Float32Array(n);
  for (let c = 0; c < C; c++) {
    const inv = 1 / (std[c] + 1e-8);
    for (let l = 0; l < L; l++) {
      for (let k = 0; k < n; k++) v[k] = features[frames[k] * per + c * L + l] * inv;
      // Insertion sort: n is a handful of frames.
      for (let k = 0; k < n; k++) {
        let j = k;
        while (j > 0 && s[j - 1] > v[k]) {
          s[j] = s[j - 1];
          j--;
        }
        s[j] = v[k];
      }
      const med = n % 2 === 1 ? s[(n - 1) >> 1] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
      for (let k = 0; k < n; k++) out[k][l] += (v[k] - med) ** 2;
    }
  }
  return out;
}

/** The `k` highest-scoring cells' centres (grid units, x across then y down), best first. */
export function topCells(score: Float32Array, width: number, k: number): [number, number][] {
  const best: number[] = [];
  for (let l = 0; l < score.length; l++) {
    if (best.length === k && score[l] <= score[best[k - 1]]) continue;
    let j = Math.min(best.length, k - 1);
    best[j] = l;
    while (j > 0 && score[best[j - 1]] < score[l]) {
      best[j] = best[j - 1];
      best[j - 1] = l;
      j--;
    }
  }
  return best.map((l) => [(l % width) + 0.5, Math.floor(l / width) + 0.5]);
}

/** The score-weighted centre (grid units) of the 3×3 cells around the cell centred at p. */
function centroid(score: Float32Array, height: number, width: number, p: [number, number]): [number, number] {
  const i0 = Math.floor(p[1]);
  const j0 = Math.floor(p[0]);
  let s = 0;
  let sx = 0;
  let sy = 0;
  for (let i = Math.max(0, i0 - 1); i <= Math.min(height - 1, i0 + 1); i++) {
    for (let j = Math.max(0, j0 - 1); j <= Math.min(width - 1, j0 + 1); j++) {
      const v = score[i * width + j];
      s += v;
      sx += v * (j + 0.5);
      sy += v * (i + 0.5);
    }
  }
  return s > 0 ? [sx / s, sy / s] : p;
}

/** Least squares (with a tiny ridge) of points ≈ W·basis(q): W as 2 × B row-major. */
function solveMap(qs: ArrayLike<number>[], pts: [number, number][]): Float64Array {
  const B = 2 * qs[0].length + 1;
  const a = new Float64Array(B * B);
  const rhs = new Float64Array(B * 2);
  const f = new Float64Array(B);
  qs.forEach((q, n) => {
    chainBasis(q, f);
    for (let i = 0; i < B; i++) {
      for (let j = 0; j < B; j++) a[i * B + j] += f[i] * f[j];
      rhs[i * 2] += f[i] * pts[n][0];
      rhs[i * 2 + 1] += f[i] * pts[n][1];
    }
  });
  for (let i = 0; i < B; i++) a[i * B + i] += 1e-6;
  choleskySolveInPlace(choleskyInPlace(a, B), B, rhs, 2);
  const w = new Float64Array(2 * B);
  for (let i = 0; i < B; i++) {
    w[i] = rhs[i * 2];
    w[B + i] = rhs[i * 2 + 1];
  }
  return w;
}

export interface CalibrationOptions {
  /** Most-changed cells per frame that may be the tip (default 5). */
  candidates?: number;
  /** A candidate within this many cells of the map is the frame's tip (default 1.5). */
  radius?: number;
  iterations?: number;
  seed?: number;
}

/** Self-calibration of the arm's tip in the image from the recorded frames and joint states (see the file's header). */
export function calibrateArm(d: BcData, std: Float32Array, o: CalibrationOptions = {}): ArmCalibration {
  const C = d.channels;
  const L = d.height * d.width;
  const K = o.candidates ?? 5;
  const radius = o.radius ?? 1.5;
  const S = d.stateDim;
  const frameOf = d.frameOf ?? Int32Array.from({ length: d.rows }, (_, i) => i);
  // Each frame's episode and the joint state of the first row that sees it (the state when it was taken).
  const byEpisode = new Map<number, { frame: number; q: Float32Array }[]>();
  for (let r = 0; r < d.rows; r++) {
    if (r > 0 && frameOf[r] === frameOf[r - 1] && d.episodes[r] === d.episodes[r - 1]) continue;
    let list = byEpisode.get(d.episodes[r]);
    if (!list) byEpisode.set(d.episodes[r], (list = []));
    list.push({ frame: frameOf[r], q: d.state.slice(r * S, (r + 1) * S) });
  }
  const qs: Float32Array[] = [];
  const cands: [number, number][][] = [];
  const maps: Float32Array[] = [];
  for (const list of byEpisode.values()) {
    if (list.length < 3) continue;
    const scores = changeScores(
      d.features,
      list.map((x) => x.frame),
      C,
      L,
      std,
    );
    list.forEach((x, k) => {
      qs.push(x.q);
      cands.push(topCells(scores[k], d.width, K));
      maps.push(scores[k]);
    });
  }
  const B = 2 * S + 1;
  if (qs.length < 3 * B)
    throw new UserError(
      `bc head: self-calibrating the arm needs at least ${3 * B} frames in episodes of 3 or more frames (a static scene, the arm moving), found ${qs.length}; record more or longer episodes`,
    );
  const cal = (w: Float64Array): ArmCalibration => ({ stateDim: S, weights: w, frames: qs.length, inliers: 0, medianResidual: NaN });
  const nearest = (w: Float64Array, i: number): { p: [number, number]; dist: number } | undefined => {
    const [x, y] = armTip(cal(w), qs[i]);
    let best: { p: [number, number]; dist: number } | undefined;
    for (const p of cands[i]) {
      const dist = Math.hypot(p[0] - x, p[1] - y);
      if (dist < radius && (!best || dist < best.dist)) best = { p, dist };
    }
    return best;
  };
  const rand = seededRandom(o.seed ?? 5);
  let best: Float64Array = new Float64Array(2 * B);
  let bestInliers = -1;
  for (let it = 0; it < (o.iterations ?? 300); it++) {
    // A minimal-ish sample of frames, each taken at its most-changed cell.
    const pick = Array.from({ length: B + 1 }, () => Math.floor(rand() * qs.length));
    const w = solveMap(
      pick.map((i) => qs[i]),
      pick.map((i) => cands[i][0]),
    );
    let inliers = 0;
    for (let i = 0; i < qs.length; i++) if (nearest(w, i)) inliers++;
    if (inliers > bestInliers) {
      bestInliers = inliers;
      best = w;
    }
  }
  let residuals: number[] = [];
  for (let round = 0; round < 3; round++) {
    const use: number[] = [];
    const pts: [number, number][] = [];
    residuals = [];
    for (let i = 0; i < qs.length; i++) {
      const n = nearest(best, i);
      if (!n) continue;
      use.push(i);
      // The change's centroid over the 3×3 cells around the candidate: sub-cell, and not biased to one cell of a tie.
      pts.push(centroid(maps[i], d.height, d.width, n.p));
      residuals.push(n.dist);
    }
    best = solveMap(
      use.map((i) => qs[i]),
      pts,
    );
  }
  residuals.sort((a, b) => a - b);
  return { stateDim: S, weights: best, frames: qs.length, inliers: residuals.length, medianResidual: residuals[residuals.length >> 1] ?? NaN };
}

/** The control period: the least-squares ratio of state changes to commands between consecutive rows of an episode. */
export function controlPeriod(d: BcData): number {
  const S = d.stateDim;
  let num = 0;
  let den = 0;
  for (let r = 0; r + 1 < d.rows; r++) {
    if (d.episodes[r + 1] !== d.episodes[r]) continue;
    for (let i = 0; i < Math.min(S, d.actionDim); i++) {
      const a = d.actions[r * d.actionDim + i];
      num += (d.state[(r + 1) * S + i] - d.state[r * S + i]) * a;
      den += a * a;
    }
  }
  return den > 0 ? num / den : 0;
}

/**
 * Where each demonstration's arm comes to rest, from its joint states and commands: a reaching demonstrator slows
 * down in proportion to the way left (a_t = k·(q* − q_t), the commands below the velocity limit), so the gain k is
 * the least-squares −Δa/Δq over consecutive unsaturated rows of the episodes' last `tail` rows, and the rest state
 * q* = q + a/k at each episode's last row. With `mode: 'end'`, the state after the last command instead (the
 * recording stops when the reach succeeds, short of the rest point by the last few steps).
 */
export function goalStates(d: BcData, mode: 'rest' | 'end' = 'rest', tail = 5): { goals: Map<number, Float32Array>; period: number; gain: number } {
  const S = d.stateDim;
  const A = d.actionDim;
  if (S !== A) throw new UserError(`bc head: the hindsight goal needs one command per joint (velocities), got ${A} commands for ${S} joints`);
  const period = controlPeriod(d);
  let peak = 0;
  for (const v of d.actions) peak = Math.max(peak, Math.abs(v));
  const unsaturated = (r: number) => {
    let m = 0;
    for (let i = 0; i < A; i++) m = Math.max(m, Math.abs(d.actions[r * A + i]));
    return m < 0.95 * peak;
  };
  const last = new Map<number, number>();
  for (let r = 0; r < d.rows; r++) if (r + 1 === d.rows || d.episodes[r + 1] !== d.episodes[r]) last.set(d.episodes[r], r);
  let num = 0;
  let den = 0;
  for (const end of last.values()) {
    for (let r = Math.max(0, end - tail); r < end; r++) {
      if (d.episodes[r] !== d.episodes[end] || !unsaturated(r) || !unsaturated(r + 1)) continue;
      for (let i = 0; i < S; i++) {
        const dq = d.state[(r + 1) * S + i] - d.state[r * S + i];
        num -= (d.actions[(r + 1) * A + i] - d.actions[r * A + i]) * dq;
        den += dq * dq;
      }
    }
  }
  const gain = den > 0 ? num / den : NaN;
  if (mode === 'rest' && !(gain > 0))
    throw new UserError(`bc head: the demonstrations' commands do not slow down towards a rest point (gain ${gain}); use the end state`);
  const goals = new Map<number, Float32Array>();
  for (const [e, r] of last)
    goals.set(
      e,
      Float32Array.from({ length: S }, (_, i) => d.state[r * S + i] + d.actions[r * A + i] * (mode === 'rest' ? 1 / gain : period)),
    );
  return { goals, period, gain };
}

export interface HindsightOptions {
  chunk?: number;
  /** The label's joint state: where the arm comes to rest (default) or where the recording ends (goalStates). */
  goal?: 'rest' | 'end';
  /** Detector epochs (default 15, as the demo head's). */
  epochs?: number;
  controllerEpochs?: number;
  seed?: number;
  /**
   * Frames whose arm tip is within this many cells of the episode's label are left out (default 1.5): the gripper
   * over the target would be learnt as the target, while frames of the gripper near it teach the detector to keep the
   * target as the gripper arrives (1.5 gave 13/20 closed-loop successes on seeds 5000–5019; 3 and 0, before the
   * centroid refits of calibrateArm, 9/20).
   */
  nearCells?: number;
  /** Keypoint noise (pixels of a cell of `cellPx`) and copies of each row for the controller (default 1.5 and 3). */
  noisePx?: number;
  cellPx?: number;
  copies?: number;
  log?: (line: string) => void;
}

export interface HindsightFit {
  detector: DetectorParams;
  controller: ControllerParams;
  calibration: ArmCalibration;
  period: number;
  /** Frames the detector was fitted on (of all frames) and its held-out error against the self-supervised labels. */
  frames: number;
  heldOut: DetectorFit['heldOut'];
  controllerRows: number;
  controllerMse: number;
  seconds: number;
}

/** The hindsight recipe: self-calibration, one label per demonstration, the detector and the controller. */
export async function fitHindsight(d: BcData, o: HindsightOptions = {}): Promise<HindsightFit> {
  const t0 = performance.now();
  const log = o.log ?? (() => undefined);
  const C = d.channels;
  const L = d.height * d.width;
  const per = C * L;
  const S = d.stateDim;
  const A = d.actionDim;
  const chunk = o.chunk ?? 2;
  const frameOf = d.frameOf ?? Int32Array.from({ length: d.rows }, (_, i) => i);
  const { std } = channelStats(d.features, d.frames, C, L);
  const calibration = calibrateArm(d, std, { seed: o.seed ?? 17 });
  log(
    `self-calibration: the arm's tip found on ${calibration.inliers} of ${calibration.frames} frames, median ${calibration.medianResidual.toFixed(2)} cells from the fitted map (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  const { goals, period, gain } = goalStates(d, o.goal ?? 'rest');
  log(`goal: each demonstration's ${o.goal ?? 'rest'} state (control period ${(1000 * period).toFixed(1)} ms, gain ${gain.toFixed(2)}/s)`);
  const label = new Map<number, [number, number]>();
  for (const [e, q] of goals) label.set(e, armTip(calibration, q));
  // Frames: each taken once, with its episode's label, unless the arm's tip is already near that label.
  const near = o.nearCells ?? 1.5;
  const chosen: number[] = [];
  const groups: number[] = [];
  const labels: number[] = [];
  const seen = new Set<number>();
  for (let r = 0; r < d.rows; r++) {
    const f = frameOf[r];
    if (seen.has(f)) continue;
    seen.add(f);
    const [lx, ly] = label.get(d.episodes[r])!;
    const [tx, ty] = armTip(calibration, d.state.subarray(r * S, (r + 1) * S));
    if (Math.hypot(tx - lx, ty - ly) <= near) continue;
    if (lx < 0 || ly < 0 || lx >= d.width || ly >= d.height) continue;
    chosen.push(f);
    groups.push(d.episodes[r]);
    labels.push(lx, ly);
  }
  if (chosen.length === 0) throw new UserError('bc head: no frame shows the arm away from where its demonstration ends');
  const features = new Float32Array(chosen.length * per);
  chosen.forEach((f, i) => features.set(d.features.subarray(f * per, (f + 1) * per), i * per));
  log(`detector: ${chosen.length} of ${seen.size} frames (the others show the tip within ${near} cells of its label)`);
  const det = await fitDetector(
    { features, rows: chosen.length, channels: C, height: d.height, width: d.width, labels: Float32Array.from(labels), groups: Int32Array.from(groups) },
    { epochs: o.epochs ?? 15, seed: 11, log },
  );
  // The controller: every recorded row with its demonstration's label (in [-1, 1]) as the keypoint, a little noise.
  const targets = stackChunks({ dims: [d.rows, A], data: d.actions }, d.episodes, chunk).data;
  const copies = o.copies ?? 3;
  const noise = (o.noisePx ?? 1.5) / (o.cellPx ?? 8);
  const rand = seededRandom((o.seed ?? 17) + 1);
  const n = d.rows * copies;
  const kp = new Float32Array(n * 2);
  const state = new Float32Array(n * S);
  const t = new Float32Array(n * chunk * A);
  for (let c = 0; c < copies; c++) {
    for (let r = 0; r < d.rows; r++) {
      const i = c * d.rows + r;
      const [lx, ly] = label.get(d.episodes[r])!;
      kp[2 * i] = ((lx + gaussian(rand) * noise) / d.width) * 2 - 1;
      kp[2 * i + 1] = ((ly + gaussian(rand) * noise) / d.height) * 2 - 1;
      state.set(d.state.subarray(r * S, (r + 1) * S), i * S);
      t.set(targets.subarray(r * chunk * A, (r + 1) * chunk * A), i * chunk * A);
    }
  }
  const ctrl = fitController(
    { keypoints: kp, state, targets: t, rows: n, stateDim: S, chunk, actionDim: A },
    { epochs: o.controllerEpochs ?? 20, seed: 13, log },
  );
  return {
    detector: det.params,
    controller: ctrl.params,
    calibration,
    period,
    frames: chosen.length,
    heldOut: det.heldOut,
    controllerRows: n,
    controllerMse: ctrl.trainMse,
    seconds: (performance.now() - t0) / 1000,
  };
}
