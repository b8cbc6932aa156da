// The demo's learning pieces: label-free pretraining of the backbone (deterministic), the keypoint head (fit →
// ONNX → PolicyHead round trip, it learns a map that needs the image position), the detector head (it finds the
// target among decoys, its ONNX matches TypeScript), and fit's checks and warnings.
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from '../src/models/zoo.js';
import { writeNpy } from '../src/io/npy.js';
import { coveringChunk, fitPolicy, selectionWarnings, shortestEpisode } from '../src/policy/fit.js';
import { PolicyHead } from '../src/policy/head.js';
import { fitKeypointHead, predictKeypoint, writeKeypointPolicy } from '../src/policy/keypoint.js';
import { pretrainBackbone, symmetricEigen } from '../src/sim/pretrain.js';
import { detectKeypoints, fitController, fitDetector, predictController, writeDetectorPolicy } from '../src/policy/detector.js';
import { UserError } from '../src/errors.js';
import { cli, tempDir } from './helpers/util.js';

describe('pretraining the demo backbone without labels', function () {
  this.timeout(120000);

  it('gives the same weights for the same seed and different weights for another seed', async () => {
    const o = { sizes: [[48, 64]] as [number, number][], filters: 8, scenes: 3, patches: 2000, iterations: 5 };
    const a = await pretrainBackbone({ ...o, seed: 1 });
    const b = await pretrainBackbone({ ...o, seed: 1 });
    const c = await pretrainBackbone({ ...o, seed: 2 });
    assert.equal(a.weightsHash, b.weightsHash);
    assert.deepEqual(a.onnx, b.onnx);
    assert.notEqual(a.weightsHash, c.weightsHash);
    assert.match(a.weightsHash, /^[0-9a-f]{64}$/);
  });

  it('decomposes a symmetric matrix: A·v = λ·v for every eigenpair', () => {
    const n = 6;
    const r = seededRandom(4);
    const b = Float64Array.from({ length: n * n }, () => r() - 0.5);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) a[i * n + j] += b[i * n + k] * b[j * n + k];
    const { values, vectors } = symmetricEigen(a, n);
    for (let e = 0; e < n; e++) {
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let k = 0; k < n; k++) av += a[i * n + k] * vectors[k * n + e];
        assert.ok(Math.abs(av - values[e] * vectors[i * n + e]) < 1e-9, `pair ${e} row ${i}`);
      }
    }
  });
});

/** Rows whose action is the offset from the state to a bright cell's position: only the image says where it is. */
function blobData(rows: number, seed: number, grid = 6, channels = 3) {
  const r = seededRandom(seed);
  const L = grid * grid;
  const features = new Float32Array(rows * channels * L);
  const state = new Float32Array(rows * 2);
  const targets = new Float32Array(rows * 2);
  for (let i = 0; i < rows; i++) {
    const cell = Math.floor(r() * L);
    for (let c = 0; c < channels; c++) for (let l = 0; l < L; l++) features[(i * channels + c) * L + l] = 0.2 * r();
    features[(i * channels + 1) * L + cell] += 3;
    const x = ((cell % grid) + 0.5) / grid;
    const y = (Math.floor(cell / grid) + 0.5) / grid;
    state[2 * i] = r();
    state[2 * i + 1] = r();
    targets[2 * i] = x - state[2 * i];
    targets[2 * i + 1] = y - state[2 * i + 1];
  }
  return { features, state, targets, rows, channels, grid, stateDim: 2, chunk: 1, actionDim: 2 };
}

describe('keypoint head', function () {
  this.timeout(120000);

  it('learns an action that depends on where a feature peaks, and generalises to new rows', () => {
    const train = blobData(600, 1);
    const test = blobData(200, 2);
    const fit = fitKeypointHead(train, { epochs: 40, keypoints: 2, hidden: 32, seed: 3 });
    let se = 0;
    let base = 0;
    for (let i = 0; i < test.rows; i++) {
      const L = test.grid * test.grid;
      const a = predictKeypoint(fit, test.features.subarray(i * 3 * L, (i + 1) * 3 * L), test.state.subarray(2 * i, 2 * i + 2));
      se += (a[0] - test.targets[2 * i]) ** 2 + (a[1] - test.targets[2 * i + 1]) ** 2;
      base += test.targets[2 * i] ** 2 + test.targets[2 * i + 1] ** 2;
    }
    // The target's spread is about 0.4 per axis; a head that ignored the image could not beat about half of it.
    assert.ok(se / base < 0.1, `held-out error ${(se / base).toFixed(3)} of the targets' energy`);
  });

  it('fit → ONNX → PolicyHead.act reproduces the TypeScript forward pass', async () => {
    const data = blobData(100, 5);
    const fit = fitKeypointHead({ ...data, chunk: 1 }, { epochs: 3, seed: 1 });
    const dir = tempDir('s2-kp-');
    const files = writeKeypointPolicy(join(dir, 'policy.onnx'), fit);
    const head = await PolicyHead.load({ model: files.model, stats: files.stats, featuresInput: 'features', stateInput: 'state' });
    try {
      assert.deepEqual(head.shape, { featureDim: 3 * 36, stateDim: 2, chunk: 1, actionDim: 2 });
      for (let i = 0; i < 5; i++) {
        const f = data.features.subarray(i * 108, (i + 1) * 108);
        const s = data.state.subarray(2 * i, 2 * i + 2);
        const a = await head.act(f, s);
        const b = predictKeypoint(fit, f, s);
        for (let k = 0; k < 2; k++) assert.ok(Math.abs(a[k] - b[k]) < 1e-4, `row ${i}: ${a[k]} vs ${b[k]}`);
      }
    } finally {
      await head.release();
    }
  });
});

/**
 * Feature maps with a target and a decoy: both raise channel 0 around their position, only the decoy raises channel
 * 1, channel 2 is noise. The label is the target's position (grid units): a detector must use both channels.
 */
function decoyMaps(rows: number, seed: number, h = 8, w = 10) {
  const r = seededRandom(seed);
  const C = 3;
  const L = h * w;
  const features = new Float32Array(rows * C * L);
  const labels = new Float32Array(rows * 2);
  const bump = (o: number, x: number, y: number, amp: number) => {
    for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) features[o + i * w + j] += amp * Math.exp(-((j + 0.5 - x) ** 2 + (i + 0.5 - y) ** 2) / 0.8);
  };
  for (let n = 0; n < rows; n++) {
    const o = n * C * L;
    for (let l = 0; l < C * L; l++) features[o + l] = 0.1 * r();
    const tx = 1 + r() * (w - 2);
    const ty = 1 + r() * (h - 2);
    let dx: number;
    let dy: number;
    do {
      dx = 1 + r() * (w - 2);
      dy = 1 + r() * (h - 2);
    } while (Math.hypot(dx - tx, dy - ty) < 2.5);
    bump(o, tx, ty, 1);
    bump(o, dx, dy, 1);
    bump(o + L, dx, dy, 1);
    labels[2 * n] = tx;
    labels[2 * n + 1] = ty;
  }
  return { features, labels, rows, channels: C, height: h, width: w, groups: Int32Array.from({ length: rows }, (_, i) => i) };
}

describe('detector head', function () {
  this.timeout(120000);

  it('finds the target and not the decoy, to a fraction of a cell on held-out maps', async () => {
    const train = decoyMaps(400, 1);
    const fit = await fitDetector(train, { epochs: 8, seed: 2 });
    const test = decoyMaps(100, 3);
    const kp = await detectKeypoints(fit.params, test.features, test.rows);
    const err = Array.from({ length: test.rows }, (_, i) => Math.hypot(kp[2 * i] - test.labels[2 * i], kp[2 * i + 1] - test.labels[2 * i + 1])).sort(
      (a, b) => a - b,
    );
    // Halfway between target and decoy is at least 1.25 cells off; a detector that ignored channel 1 would be there half the time.
    assert.ok(err[50] < 0.35, `median error ${err[50].toFixed(2)} cells`);
    assert.ok(err[90] < 1, `90th percentile ${err[90].toFixed(2)} cells`);
    assert.ok(fit.heldOut.withinOne > 0.9, `held-out within one cell ${fit.heldOut.withinOne}`);
  });

  it('is deterministic per seed', async () => {
    const a = await fitDetector(decoyMaps(60, 4), { epochs: 2, seed: 5 });
    const b = await fitDetector(decoyMaps(60, 4), { epochs: 2, seed: 5 });
    assert.deepEqual(a.params.w1, b.params.w1);
    assert.equal(a.params.temperature, b.params.temperature);
  });

  it("fit → ONNX → PolicyHead.act: the model's keypoint and the controller match TypeScript", async () => {
    const maps = decoyMaps(60, 6);
    const det = await fitDetector(decoyMaps(60, 6), { epochs: 2, seed: 1 });
    const r = seededRandom(7);
    const n = 300;
    const keypoints = Float32Array.from({ length: 2 * n }, () => 2 * r() - 1);
    const state = Float32Array.from({ length: 2 * n }, () => 3 * r() - 1.5);
    // Action chunk of 2: the offset from the state to the keypoint, then half of it.
    const targets = new Float32Array(4 * n);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 2; k++) {
        targets[4 * i + k] = keypoints[2 * i + k] - state[2 * i + k];
        targets[4 * i + 2 + k] = 0.5 * targets[4 * i + k];
      }
    }
    const ctrl = fitController({ keypoints, state, targets, rows: n, stateDim: 2, chunk: 2, actionDim: 2 }, { epochs: 40, seed: 3 });
    assert.ok(ctrl.trainMse < 0.05, `controller MSE ${ctrl.trainMse}`);
    const dir = tempDir('s2-det-');
    const files = writeDetectorPolicy(join(dir, 'policy.onnx'), det.params, ctrl.params);
    const head = await PolicyHead.load({ model: files.model, stats: files.stats, featuresInput: 'features', stateInput: 'state', output: 'actions' });
    try {
      const per = 3 * 8 * 10;
      assert.deepEqual(head.shape, { featureDim: per, stateDim: 2, chunk: 2, actionDim: 2 });
      const kp = await detectKeypoints(det.params, maps.features, maps.rows);
      for (let i = 0; i < 5; i++) {
        const f = maps.features.subarray(i * per, (i + 1) * per);
        const s = Float32Array.of(0.3 * i - 0.5, 0.2);
        const a = await head.act(f, s);
        const b = predictController(ctrl.params, [(kp[2 * i] / 10) * 2 - 1, (kp[2 * i + 1] / 8) * 2 - 1], s);
        for (let k = 0; k < 4; k++) assert.ok(Math.abs(a[k] - b[k]) < 1e-4, `row ${i}: ${a[k]} vs ${b[k]}`);
      }
    } finally {
      await head.release();
    }
  });
});

describe('fit: checks and warnings', () => {
  it('warns when λ is at the top or bottom of its grid, and when no λ beats the mean', () => {
    const scores = [
      { lambda: 1, mse: 0.9 },
      { lambda: 10, mse: 0.8 },
      { lambda: 100, mse: 0.7 },
    ];
    const top = selectionWarnings({ lambda: 100, scores, meanMse: 1 });
    assert.equal(top.length, 1);
    assert.match(top[0], /^λ = 100 is the largest of the grid \(1, 10, 100\)/);
    const low = selectionWarnings({ lambda: 1, scores: scores.map((s, i) => ({ ...s, mse: 0.5 + i / 10 })), meanMse: 1 });
    assert.match(low[0], /^λ = 1 is the smallest of the grid/);
    assert.deepEqual(
      selectionWarnings({
        lambda: 10,
        scores: [
          { lambda: 1, mse: 0.9 },
          { lambda: 10, mse: 0.5 },
          { lambda: 100, mse: 0.8 },
        ],
        meanMse: 1,
      }),
      [],
    );
    const useless = selectionWarnings({
      lambda: 10,
      scores: [
        { lambda: 1, mse: 1.3 },
        { lambda: 10, mse: 1.1 },
        { lambda: 100, mse: 1.2 },
      ],
      meanMse: 1,
    });
    assert.equal(useless.length, 1);
    assert.match(useless[0], /^no λ beats predicting the mean action on held-out episodes \(best held-out MSE 1\.100 ≥ 1\.000/);
  });

  it('finds that pure-noise features do not beat the mean (fitPolicy warnings)', () => {
    const r = seededRandom(9);
    const n = 120;
    const fit = fitPolicy(
      {
        features: { dims: [n, 30], data: Float32Array.from({ length: n * 30 }, () => r() - 0.5) },
        actions: { dims: [n, 1], data: Float32Array.from({ length: n }, () => r() - 0.5) },
        episodes: Int32Array.from({ length: n }, (_, i) => Math.floor(i / 20)),
      },
      { chunk: 1, lambdas: [1e-3, 1e-2, 0.1] },
    );
    assert.ok(
      fit.warnings.some((w) => w.startsWith('no λ beats predicting the mean')),
      fit.warnings.join(' | '),
    );
    assert.ok(
      fit.warnings.some((w) => w.startsWith('λ = 0.1 is the largest of the grid')),
      fit.warnings.join(' | '),
    );
  });

  it('refuses a chunk longer than the shortest episode, naming it', () => {
    const episodes = Int32Array.from([0, 0, 0, 0, 1, 1, 2, 2, 2]);
    assert.deepEqual(shortestEpisode(episodes), { id: 1, rows: 2 });
    const data = {
      features: { dims: [9, 2], data: new Float32Array(18).map((_, i) => i % 5) },
      actions: { dims: [9, 1], data: new Float32Array(9).map((_, i) => i) },
      episodes,
    };
    assert.throws(
      () => fitPolicy(data, { chunk: 3 }),
      (e: Error) =>
        e instanceof UserError &&
        e.message === 'fitPolicy: chunk 3 is longer than the shortest episode (episode 1, 2 rows); its chunks would repeat the last action',
    );
    assert.doesNotThrow(() => fitPolicy(data, { chunk: 2 }));
  });

  it('chooses a chunk that covers the frame period plus processing time at the control rate', () => {
    assert.equal(coveringChunk(200, 0.5, 20), 5); // a 5 Hz camera at 20 Hz: 4 ticks run out just before the next chunk
    assert.equal(coveringChunk(200, 0, 20), 4);
    assert.equal(coveringChunk(50, 10, 20), 2);
    assert.equal(coveringChunk(10, 0, 20), 1);
    assert.throws(() => coveringChunk(50, 10, 0), /control rate must be/);
  });

  it('fit CLI: default chunk from index.json, warnings on stderr, refuses to overwrite without --force', () => {
    const dir = tempDir('s2-fitcli-');
    const r = seededRandom(3);
    const n = 60;
    writeNpy(join(dir, 'features.npy'), { dims: [n, 4], data: Float32Array.from({ length: n * 4 }, () => r()) });
    writeNpy(join(dir, 'actions.npy'), { dims: [n, 2], data: Float32Array.from({ length: n * 2 }, () => r()) });
    writeNpy(join(dir, 'episodes.npy'), { dims: [n], data: Float32Array.from({ length: n }, (_, i) => Math.floor(i / 10)) });
    writeFileSync(join(dir, 'index.json'), JSON.stringify({ frame_period_ms: 200, processing_ms: 12 }));
    const out = join(dir, 'p.onnx');
    let res = cli(['fit', '--data', dir, '--out', out, '--lambdas', '0.1,1']);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /^chunk 5: covers a frame period of 200\.0 ms plus 12\.0 ms of processing at 20 Hz/m);
    assert.match(res.stderr, /^s2-policy: warning: fit: no λ beats predicting the mean action/m);
    assert.ok(existsSync(out) && existsSync(join(dir, 'p.stats.json')));
    const before = readFileSync(out);
    res = cli(['fit', '--data', dir, '--out', out, '--chunk', '2']);
    assert.equal(res.status, 2);
    assert.equal(res.stderr.trim(), `s2-policy: fit: --out ${out} exists; pass --force to replace it`);
    assert.deepEqual(readFileSync(out), before);
    res = cli(['fit', '--data', dir, '--out', out, '--chunk', '11', '--force']);
    assert.equal(res.status, 2);
    assert.match(res.stderr.trim(), /^s2-policy: fitPolicy: chunk 11 is longer than the shortest episode \(episode 0, 10 rows\)/);
    assert.deepEqual(readFileSync(out), before);
    res = cli(['fit', '--data', dir, '--out', out, '--chunk', '2', '--force']);
    assert.equal(res.status, 0, res.stderr);
  });

  it('eval names the variants it knows when given another', () => {
    const res = cli(['eval', '--variants', '1x;2x']);
    assert.equal(res.status, 2);
    assert.equal(res.stderr.trim(), "s2-policy: eval: --variants takes 1x ; 1x,2x ; 1x,2x,3x separated by ';', got '2x'");
  });
});
