// The bc head's hindsight recipe on synthetic reaching demonstrations with a known arm-to-image map: the rest state
// extrapolated from the commands, the arm's image position self-calibrated from the frames, and `fit --head bc`
// (its default recipe) writing a detector head whose keypoint finds the target in new scenes.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OrtSession } from '../src/backbone/ort-session.js';
import { seededRandom } from '../src/models/zoo.js';
import type { BcData } from '../src/policy/bc.js';
import { PolicyHead } from '../src/policy/head.js';
import { armTip, calibrateArm, chainBasis, goalStates } from '../src/policy/hindsight.js';
import { channelStats } from '../src/policy/train.js';
import { writeBcFolder } from '../src/run/fit-bc.js';
import { cli, tempDir } from './helpers/util.js';

const H = 24;
const W = 32;
const C = 5;
const DT = 0.05;
const GAIN = 4;

/** The true map from joint state to the tip's grid position (x across, y down): a two-link arm from (16, 3). */
function trueTip(q: ArrayLike<number>): [number, number] {
  return [16 + 9 * Math.sin(q[0]) + 7 * Math.sin(q[0] + q[1]), 3 + 9 * Math.cos(q[0]) + 7 * Math.cos(q[0] + q[1])];
}

/** Fills the cells within `r` of (x, y) on channel c with v. */
function blob(map: Float32Array, c: number, x: number, y: number, r: number, v: number): void {
  for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) if (Math.hypot(j + 0.5 - x, i + 0.5 - y) <= r) map[c * H * W + i * W + j] = v;
}

/** One scene: a static noisy background with a target (channel 2) and a decoy (channel 3); `frame(q)` draws the arm over it. */
function scene(rand: () => number, goal: [number, number]) {
  const bg = Float32Array.from({ length: C * H * W }, () => 0.3 * rand());
  const [tx, ty] = trueTip(goal);
  blob(bg, 2, tx, ty, 0.8, 3);
  blob(bg, 3, tx, ty, 0.8, 2);
  let dx = 0;
  let dy = 0;
  while (Math.hypot(dx - tx, dy - ty) < 6) [dx, dy] = [2 + rand() * (W - 4), 2 + rand() * (H - 4)];
  blob(bg, 3, dx, dy, 0.8, 2);
  return {
    target: [tx, ty] as [number, number],
    frame(q: ArrayLike<number>): Float32Array {
      const f = bg.slice();
      const elbow = [16 + 9 * Math.sin(q[0]), 3 + 9 * Math.cos(q[0])];
      const tip = trueTip(q);
      // The links on channel 1, the gripper (brighter, on channels 0 and 1) at the tip.
      for (let s = 0; s <= 20; s++) {
        const u = s / 20;
        blob(f, 1, 16 + u * (elbow[0] - 16), 3 + u * (elbow[1] - 3), 0.7, 2);
        blob(f, 1, elbow[0] + u * (tip[0] - elbow[0]), elbow[1] + u * (tip[1] - elbow[1]), 0.6, 2);
      }
      blob(f, 0, tip[0], tip[1], 1.2, 4);
      blob(f, 4, tip[0], tip[1], 1.2, 3);
      return f;
    },
  };
}

/**
 * Reaching demonstrations: a joint-space P-controller (gain 4/s, speeds scaled to at most 1 rad/s) to a random goal,
 * stopped as soon as the tip is within 0.5 cells of the target (short of the rest point), a frame every 4 steps.
 */
function demos(episodes: number, seed: number): BcData & { goals: Float32Array[] } {
  const rand = seededRandom(seed);
  const per = C * H * W;
  const features: number[][] = [];
  const state: number[] = [];
  const actions: number[] = [];
  const ids: number[] = [];
  const frameOf: number[] = [];
  const goals: Float32Array[] = [];
  for (let e = 0; e < episodes; e++) {
    const goal: [number, number] = [-0.7 + 1.4 * rand(), 0.4 + 1.0 * rand()];
    goals.push(Float32Array.from(goal));
    const s = scene(rand, goal);
    let q = [-0.7 + 1.4 * rand(), 0.4 + 1.0 * rand()];
    while (Math.hypot(trueTip(q)[0] - s.target[0], trueTip(q)[1] - s.target[1]) < 6) q = [-0.7 + 1.4 * rand(), 0.4 + 1.0 * rand()];
    for (let k = 0; k < 200; k++) {
      const [x, y] = trueTip(q);
      if (k > 0 && Math.hypot(x - s.target[0], y - s.target[1]) < 0.5) break;
      if (k % 4 === 0) features.push(Array.from(s.frame(q)));
      let a = [GAIN * (goal[0] - q[0]), GAIN * (goal[1] - q[1])];
      const peak = Math.max(Math.abs(a[0]), Math.abs(a[1]));
      if (peak > 1) a = a.map((v) => v / peak);
      state.push(q[0], q[1]);
      actions.push(a[0], a[1]);
      ids.push(e);
      frameOf.push(features.length - 1);
      q[0] += DT * a[0];
      q[1] += DT * a[1];
    }
  }
  const f = new Float32Array(features.length * per);
  features.forEach((x, i) => f.set(x, i * per));
  return {
    features: f,
    frames: features.length,
    channels: C,
    height: H,
    width: W,
    state: Float32Array.from(state),
    actions: Float32Array.from(actions),
    episodes: Int32Array.from(ids),
    frameOf: Int32Array.from(frameOf),
    rows: ids.length,
    stateDim: 2,
    actionDim: 2,
    goals,
  };
}

describe('bc head, hindsight recipe', function () {
  this.timeout(120000);
  const d = demos(60, 3);

  it('extrapolates each demonstration’s rest state from its commands (the recording stops short of it)', () => {
    const rest = goalStates(d, 'rest');
    assert.ok(Math.abs(rest.period - DT) < 1e-6, `period ${rest.period}`);
    assert.ok(Math.abs(rest.gain - GAIN) < 1e-3, `gain ${rest.gain}`);
    const end = goalStates(d, 'end');
    let restErr = 0;
    let endErr = 0;
    d.goals.forEach((g, e) => {
      restErr = Math.max(restErr, Math.hypot(rest.goals.get(e)![0] - g[0], rest.goals.get(e)![1] - g[1]));
      endErr = Math.max(endErr, Math.hypot(end.goals.get(e)![0] - g[0], end.goals.get(e)![1] - g[1]));
    });
    assert.ok(restErr < 1e-4, `rest state off the goal by ${restErr} rad`);
    // The last recorded step does not reach the goal: the end state is a worse label.
    assert.ok(endErr > 10 * restErr && endErr > 1e-3, `end state off by ${endErr} rad`);
  });

  it('self-calibrates the map from joint state to the arm’s tip in the image from the frames alone', () => {
    const cal = calibrateArm(d, channelStats(d.features, d.frames, C, H * W).std);
    assert.ok(cal.inliers >= 0.8 * cal.frames, `${cal.inliers} of ${cal.frames} frames`);
    const rand = seededRandom(9);
    let worst = 0;
    for (let k = 0; k < 50; k++) {
      const q = [-0.7 + 1.4 * rand(), 0.4 + rand()];
      const [x, y] = armTip(cal, q);
      const [tx, ty] = trueTip(q);
      worst = Math.max(worst, Math.hypot(x - tx, y - ty));
    }
    assert.ok(worst < 0.75, `the fitted map is ${worst.toFixed(2)} cells off the true tip`);
    assert.deepEqual(
      Array.from(chainBasis([0.5, 0.25])).map((v) => +v.toFixed(6)),
      [Math.cos(0.5), Math.sin(0.5), Math.cos(0.75), Math.sin(0.75), 1].map((v) => +v.toFixed(6)),
    );
  });

  it('fit --head bc (hindsight, the default) writes a head whose keypoint finds the target in new scenes', async () => {
    const dir = join(tempDir('s2-hindsight-'), 'demos');
    await writeBcFolder(dir, d, { generator: 'test' });
    const model = join(dir, 'policy.onnx');
    const r = cli(['fit', '--head', 'bc', '--data', dir, '--out', model, '--epochs', '8']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^bc head \(hindsight\): \d+ rows \(\d+ frames, 60 episodes\); the arm's tip self-calibrated on \d+ of \d+ frames/m);
    assert.match(r.stdout, /policy\.stats\.json: 3840 features \+ 2 state → 2×2 actions \(outputs actions, keypoint\)$/m);
    // New scenes, the arm at its start: the keypoint (in [-1, 1]) lands on the target, not the decoy.
    const session = await OrtSession.create(readFileSync(model), { executionProviders: ['cpu'], logSeverityLevel: 3 });
    const head = await PolicyHead.load({ model, stats: join(dir, 'policy.stats.json'), featuresInput: 'features', stateInput: 'state', output: 'actions' });
    try {
      const rand = seededRandom(77);
      let hits = 0;
      for (let k = 0; k < 20; k++) {
        const goal: [number, number] = [-0.7 + 1.4 * rand(), 0.4 + rand()];
        const s = scene(rand, goal);
        const q = Float32Array.of(-0.7 + 1.4 * rand(), 0.4 + rand());
        const f = s.frame(q);
        const out = await session.run({ features: { dims: [1, f.length], data: f.slice() }, state: { dims: [1, 2], data: new Float32Array(2) } }, ['keypoint']);
        const [u, v] = out.keypoint.data;
        if (Math.hypot(((u + 1) / 2) * W - s.target[0], ((v + 1) / 2) * H - s.target[1]) < 1.5) hits++;
        const a = await head.act(f, q);
        assert.equal(a.length, 4);
        assert.ok(a.every(Number.isFinite));
      }
      assert.ok(hits >= 16, `${hits} of 20 keypoints within 1.5 cells of the target`);
    } finally {
      await session.release();
      await head.release();
    }
  });
});
