// The behaviour-cloning head: it learns from actions alone where the target is among decoys (held-out episodes),
// its ONNX model run by PolicyHead gives the TypeScript forward pass, it is deterministic per seed, and early
// stopping keeps the epoch with the lowest held-out error.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { seededRandom } from '../src/models/zoo.js';
import { PolicyHead } from '../src/policy/head.js';
import { fitBc, predictBc, writeBcPolicy, type BcData } from '../src/policy/bc.js';
import { UserError } from '../src/errors.js';
import { fitBcFolder, readBcFolder, writeBcFolder } from '../src/run/fit-bc.js';
import { readNpy, writeNpy } from '../src/io/npy.js';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tempDir } from './helpers/util.js';

const H = 6;
const W = 8;
const C = 3;

/**
 * Episodes of one frame each, seen by `perFrame` rows at random joint states: channel 0 lights up at the target and
 * at a decoy, channel 2 only at the target, channel 1 is noise. The action is the target's position (cell centre in
 * [-1, 1]) minus the state, so it can only be predicted by finding the target, and not the decoy, in the map.
 */
function targetEpisodes(episodes: number, perFrame: number, seed: number): BcData & { targets: Float32Array } {
  const r = seededRandom(seed);
  const L = H * W;
  const features = new Float32Array(episodes * C * L);
  const rows = episodes * perFrame;
  const state = new Float32Array(rows * 2);
  const actions = new Float32Array(rows * 2);
  const ids = new Int32Array(rows);
  const frameOf = new Int32Array(rows);
  const targets = new Float32Array(episodes * 2);
  for (let e = 0; e < episodes; e++) {
    const t = Math.floor(r() * L);
    let d = Math.floor(r() * L);
    while (d === t) d = Math.floor(r() * L);
    const o = e * C * L;
    for (let l = 0; l < L; l++) features[o + L + l] = r();
    for (let l = 0; l < L; l++) features[o + l] = 0.1 * r();
    features[o + t] = 1;
    features[o + d] = 1;
    features[o + 2 * L + t] = 1;
    const tx = (((t % W) + 0.5) / W) * 2 - 1;
    const ty = ((Math.floor(t / W) + 0.5) / H) * 2 - 1;
    targets[2 * e] = tx;
    targets[2 * e + 1] = ty;
    for (let k = 0; k < perFrame; k++) {
      const i = e * perFrame + k;
      state[2 * i] = 2 * r() - 1;
      state[2 * i + 1] = 2 * r() - 1;
      actions[2 * i] = tx - state[2 * i];
      actions[2 * i + 1] = ty - state[2 * i + 1];
      ids[i] = e;
      frameOf[i] = e;
    }
  }
  return { features, frames: episodes, channels: C, height: H, width: W, state, actions, episodes: ids, frameOf, rows, stateDim: 2, actionDim: 2, targets };
}

describe('bc head (behaviour cloning from demonstrations alone)', function () {
  this.timeout(120000);

  it('learns from actions alone to find the target among decoys, on held-out episodes', () => {
    const d = targetEpisodes(300, 4, 1);
    const fit = fitBc(d, { keypoints: 2, hidden: 32, epochs: 60, patience: 60, batch: 8, learningRate: 3e-3, seed: 3 });
    assert.equal(fit.heldOutEpisodes, 30);
    assert.equal(fit.heldOutRows, 120);
    // The mean chunk scores 1 in standardised units; keypoint maps left at their random start (no gradient through
    // the spatial softmax) score about 0.02 here, the trained head under 0.001.
    assert.ok(fit.heldOutMse < 0.005, `held-out MSE ${fit.heldOutMse} (the mean: ${fit.heldOutMeanMse})`);
    const test = targetEpisodes(40, 1, 99);
    let se = 0;
    for (let i = 0; i < 40; i++) {
      const { actions } = predictBc(fit.params, test.features.subarray(i * C * H * W, (i + 1) * C * H * W), test.state.subarray(2 * i, 2 * i + 2));
      se += (actions[0] - test.actions[2 * i]) ** 2 + (actions[1] - test.actions[2 * i + 1]) ** 2;
    }
    // A cell is 0.25 wide and 0.33 high in [-1, 1]: the actions are right to a fraction of a cell on new maps (0.14
    // with the keypoint maps left untrained).
    assert.ok(Math.sqrt(se / 80) < 0.05, `RMS action error on new episodes ${Math.sqrt(se / 80).toFixed(3)}`);
  });

  it('fit → ONNX → PolicyHead.act reproduces the TypeScript forward pass (with and without a hidden map layer and the end-state outputs)', async () => {
    const d = targetEpisodes(40, 3, 5);
    for (const [scoreHidden, goalWeight] of [
      [0, 0],
      [4, 0.5],
    ]) {
      const fit = fitBc(d, { chunk: 2, keypoints: 3, scoreHidden, hidden: 16, epochs: 3, seed: 2, goalWeight });
      assert.equal(fit.params.goalDim, goalWeight > 0 ? 2 : 0);
      const dir = tempDir('s2-bc-');
      const files = writeBcPolicy(join(dir, 'policy.onnx'), fit.params);
      const head = await PolicyHead.load({ model: files.model, stats: files.stats, featuresInput: 'features', stateInput: 'state', output: 'actions' });
      try {
        const per = C * H * W;
        assert.deepEqual(head.shape, { featureDim: per, stateDim: 2, chunk: 2, actionDim: 2 });
        for (let i = 0; i < 6; i++) {
          const f = d.features.subarray(i * per, (i + 1) * per);
          const s = Float32Array.of(0.3 * i - 0.5, 0.2);
          const a = await head.act(f, s);
          const b = predictBc(fit.params, f, s).actions;
          for (let k = 0; k < 4; k++) assert.ok(Math.abs(a[k] - b[k]) < 1e-4, `hidden ${scoreHidden}, row ${i}: ${a[k]} vs ${b[k]}`);
        }
      } finally {
        await head.release();
      }
    }
  });

  it('is deterministic per seed, and another seed gives other weights', () => {
    const d = targetEpisodes(30, 2, 7);
    const o = { keypoints: 2, scoreHidden: 3, hidden: 16, epochs: 2 };
    const a = fitBc(d, { ...o, seed: 4 });
    const b = fitBc(d, { ...o, seed: 4 });
    const c = fitBc(d, { ...o, seed: 5 });
    for (const k of ['conv1', 'conv1b', 'conv2', 'w1', 'w3', 'b3'] as const) assert.deepEqual(a.params[k], b.params[k], k);
    assert.deepEqual(a.history, b.history);
    assert.notDeepEqual(a.params.conv1, c.params.conv1);
  });

  it('early stopping keeps the epoch with the lowest held-out error and stops `patience` epochs after it', () => {
    // Actions of pure noise: every epoch fits the training rows more closely and the held-out ones no better.
    const d = targetEpisodes(40, 3, 11);
    const r = seededRandom(12);
    const noisy = { ...d, actions: Float32Array.from(d.actions, () => 2 * r() - 1) };
    const fit = fitBc(noisy, { keypoints: 2, hidden: 64, epochs: 200, patience: 4, learningRate: 1e-2, holdout: 0.25, seed: 1 });
    const held = fit.history.map((h) => h.heldOutMse);
    const best = Math.min(...held);
    assert.equal(fit.heldOutMse, best);
    assert.equal(fit.bestEpoch, held.indexOf(best) + 1);
    assert.equal(fit.epochsRun, fit.bestEpoch + 4, `stopped after ${fit.epochsRun} epochs, the best was ${fit.bestEpoch}`);
    assert.ok(fit.epochsRun < 200);
    assert.ok(fit.history[fit.epochsRun - 1].trainMse < fit.trainMse, 'training error kept falling after the kept epoch');
    // The kept parameters are those of the best epoch: their held-out error is the recorded one.
    const kept = fitBc(noisy, { keypoints: 2, hidden: 64, epochs: 200, patience: 200, learningRate: 1e-2, holdout: 0.25, seed: 1 });
    assert.deepEqual(kept.history.slice(0, fit.epochsRun), fit.history);
  });

  it('names the field at fault in bad input', () => {
    const d = targetEpisodes(4, 2, 3);
    assert.throws(
      () => fitBc({ ...d, frameOf: Int32Array.from(d.frameOf!, (f) => f + 1) }),
      (e: Error) => e instanceof UserError && /frameOf\[\d+\] is 4/.test(e.message),
    );
    assert.throws(
      () => fitBc({ ...d, state: d.state.subarray(2) }),
      (e: Error) => e instanceof UserError && /state holds 14 values, expected 8×2/.test(e.message),
    );
    assert.throws(
      () => fitBc({ ...d, frameOf: undefined }),
      (e: Error) => e instanceof UserError && /4 frames for 8 rows/.test(e.message),
    );
    const nan = Float32Array.from(d.actions);
    nan[5] = NaN;
    assert.throws(
      () => fitBc({ ...d, actions: nan }),
      (e: Error) => e instanceof UserError && /actions\[2\] holds NaN/.test(e.message),
    );
  });

  it('fits from a folder of demonstrations (frames shared by rows, or one per row as extract writes them)', async () => {
    const d = targetEpisodes(20, 3, 21);
    const dir = join(tempDir('s2-bc-data-'), 'demos');
    await writeBcFolder(dir, d, { generator: 'test' });
    const back = readBcFolder(dir);
    assert.deepEqual([back.frames, back.rows, back.channels, back.height, back.width], [20, 60, C, H, W]);
    assert.deepEqual(back.frameOf, d.frameOf);
    assert.deepEqual(back.episodes, d.episodes);
    const r = fitBcFolder({ data: dir, out: join(dir, 'out', 'policy.onnx'), keypoints: 2, hidden: 8, epochs: 2, seed: 1 });
    assert.ok(existsSync(r.files.model) && existsSync(r.files.stats));
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(r.files.stats, 'utf8')) as object).sort(), ['action', 'observation.state']);
    assert.deepEqual(r.data, { rows: 60, frames: 20, episodes: 20 });
    // extract's layout: one frame per row, no episodes.npy (one recording), the grid under s2.
    const one = tempDir('s2-bc-extract-');
    const rows = 12;
    const per = C * H * W;
    writeNpy(join(one, 'features.npy'), { dims: [rows, per], data: d.features.slice(0, rows * per) });
    writeNpy(join(one, 'state.npy'), { dims: [rows, 2], data: d.state.slice(0, 2 * rows) });
    writeNpy(join(one, 'actions.npy'), { dims: [rows, 2], data: d.actions.slice(0, 2 * rows) });
    writeFileSync(join(one, 'index.json'), JSON.stringify({ features: { pooling: 'tokens' }, s2: { grid: [H, W], channels: C, output_shape: 'bchw' } }));
    const e = readBcFolder(one);
    assert.equal(e.frameOf, undefined);
    assert.deepEqual(Array.from(new Set(e.episodes)), [0]);
    const f = fitBcFolder({ data: one, out: join(one, 'policy.onnx'), keypoints: 2, hidden: 8, epochs: 2, holdout: 0.25, seed: 1 });
    assert.equal(f.fit.heldOutRows, 3);
    // Mistakes name the file and what was expected.
    writeFileSync(join(one, 'index.json'), JSON.stringify({ features: { pooling: 'grid:4' }, s2: { grid: [H, W] } }));
    assert.throws(
      () => readBcFolder(one),
      (x: Error) => x instanceof UserError && /index\.json: the bc head needs features pooled as tokens.*'grid:4'/.test(x.message),
    );
    writeFileSync(join(one, 'index.json'), JSON.stringify({ pool: 'tokens', grid_height: H, grid_width: W + 1 }));
    assert.throws(
      () => readBcFolder(one),
      (x: Error) => x instanceof UserError && /features\.npy: 144 values per row are not/.test(x.message),
    );
    rmSync(join(dir, 'frame_of.npy'));
    assert.throws(
      () => readBcFolder(dir),
      (x: Error) => x instanceof UserError && /features\.npy: 20 rows, state\.npy has 60; give frame_of\.npy/.test(x.message),
    );
  });

  it('reads a features.npy above the large-file threshold piecewise, to the same values (and names a truncated file)', () => {
    const dir = tempDir('s2-bc-npy-');
    const file = join(dir, 'features.npy');
    const data = Float32Array.from({ length: 3 * 1000 }, (_, i) => Math.sin(i));
    writeNpy(file, { dims: [3, 1000], data });
    const big = readNpy(file, 0);
    assert.deepEqual(big.dims, [3, 1000]);
    assert.deepEqual(big.data, data);
    writeFileSync(file, readFileSync(file).subarray(0, 1000));
    assert.throws(
      () => readNpy(file, 0),
      (x: Error) => x instanceof UserError && /features\.npy: shape \(3, 1000\) needs 12000 data bytes/.test(x.message),
    );
  });
});
