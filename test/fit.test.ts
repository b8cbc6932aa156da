// Ridge fitting of the linear policy head: recovery of known maps, primal = dual, held-out λ selection, chunk
// targets, and the fit → ONNX → PolicyHead round trip.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from '../src/models/zoo.js';
import { episodeFolds, fitPolicy, fitRidge, predictPolicy, predictRidge, selectLambda, stackChunks, writePolicy, type Matrix } from '../src/policy/fit.js';
import { choleskyInPlace, gramRows } from '../src/policy/linalg.js';
import { PolicyHead } from '../src/policy/head.js';
import { tempDir } from './helpers/util.js';

function gaussian(seed: number): () => number {
  const u = seededRandom(seed);
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

function randomMatrix(rows: number, cols: number, seed: number, scale = 1): Matrix {
  const g = gaussian(seed);
  return { rows, cols, data: Float64Array.from({ length: rows * cols }, () => g() * scale) };
}

/** Y = X·W + b + noise·N(0, 1), computed here without the module's helpers. */
function linear(X: Matrix, W: Float64Array, b: Float64Array, noise: number, seed: number): Matrix {
  const k = b.length;
  const g = gaussian(seed);
  const y = new Float64Array(X.rows * k);
  for (let i = 0; i < X.rows; i++) {
    for (let t = 0; t < k; t++) {
      let s = b[t];
      for (let j = 0; j < X.cols; j++) s += X.data[i * X.cols + j] * W[j * k + t];
      y[i * k + t] = s + noise * g();
    }
  }
  return { rows: X.rows, cols: k, data: y };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function rowsOf(m: Matrix, rows: number[]): Matrix {
  const data = new Float64Array(rows.length * m.cols);
  rows.forEach((r, i) => data.set(m.data.subarray(r * m.cols, (r + 1) * m.cols), i * m.cols));
  return { rows: rows.length, cols: m.cols, data };
}

describe('fit: ridge regression', () => {
  it('recovers a known linear map and intercept (N=200, D=10, K=3, noise 0.01, λ=1e-6) to within 0.02', () => {
    const X = randomMatrix(200, 10, 1);
    const u = seededRandom(2);
    const W = Float64Array.from({ length: 30 }, () => u() * 2 - 1);
    const b = Float64Array.of(0.5, -1.5, 3);
    const fit = fitRidge(X, linear(X, W, b, 0.01, 3), 1e-6);
    assert.equal(fit.form, 'primal');
    assert.ok(maxDiff(fit.W, W) < 0.02, `max |W − W_true| = ${maxDiff(fit.W, W)}`);
    assert.ok(maxDiff(fit.b, b) < 0.02, `max |b − b_true| = ${maxDiff(fit.b, b)}`);
  });

  it('matches the scalar closed form Σxy/(Σx² + λ) with one feature and a large λ', () => {
    const X = randomMatrix(50, 1, 4, 2);
    for (let i = 0; i < 50; i++) X.data[i] += 7; // an offset, so centring matters
    const Y = linear(X, Float64Array.of(1.3), Float64Array.of(-2), 0.5, 5);
    const lambda = 40;
    const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;
    const mx = mean(X.data);
    const my = mean(Y.data);
    let sxy = 0;
    let sxx = 0;
    for (let i = 0; i < 50; i++) {
      sxy += (X.data[i] - mx) * (Y.data[i] - my);
      sxx += (X.data[i] - mx) ** 2;
    }
    const w = sxy / (sxx + lambda);
    for (const form of ['primal', 'dual'] as const) {
      const fit = fitRidge(X, Y, lambda, { form });
      assert.ok(Math.abs(fit.W[0] - w) < 1e-12, `${form}: w ${fit.W[0]} vs ${w}`);
      assert.ok(Math.abs(fit.b[0] - (my - w * mx)) < 1e-11, `${form}: b ${fit.b[0]} vs ${my - w * mx}`);
    }
  });

  for (const [n, d] of [
    [37, 101],
    [123, 15],
  ]) {
    it(`primal and dual forms agree to 1e-6 (N=${n}, D=${d}, ${d > n ? 'D > N' : 'D < N'})`, () => {
      const X = randomMatrix(n, d, n + d);
      const Y = randomMatrix(n, 3, n * d);
      const p = fitRidge(X, Y, 0.7, { form: 'primal' });
      const q = fitRidge(X, Y, 0.7, { form: 'dual' });
      assert.equal(fitRidge(X, Y, 0.7).form, d > n ? 'dual' : 'primal');
      assert.ok(maxDiff(p.W, q.W) < 1e-6, `W differs by ${maxDiff(p.W, q.W)}`);
      assert.ok(maxDiff(p.b, q.b) < 1e-6, `b differs by ${maxDiff(p.b, q.b)}`);
      // Not a degenerate agreement: the fit explains a real part of Y.
      assert.ok(maxDiff(p.W, new Float64Array(p.W.length)) > 1e-2);
    });
  }

  it('Cholesky reproduces L·Lᵀ = A for sizes that are not multiples of the kernel blocks', () => {
    for (const m of [1, 2, 5, 7, 9, 14, 23]) {
      const A = randomMatrix(m, m + 3, m);
      const g = gramRows(Float64Array.from(A.data), m, m + 3);
      const l = choleskyInPlace(g.slice(), m);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < m; j++) {
          let s = 0;
          for (let k = 0; k < m; k++) s += l[i * m + k] * l[j * m + k];
          let direct = 0;
          for (let k = 0; k < m + 3; k++) direct += A.data[i * (m + 3) + k] * A.data[j * (m + 3) + k];
          assert.ok(Math.abs(s - direct) < 1e-10, `m=${m} (${i}, ${j}): ${s} vs ${direct}`);
          if (j > i) assert.equal(l[i * m + j], 0);
        }
      }
    }
  });

  it('says when the system is not positive definite (λ = 0 with more features than samples)', () => {
    const X = randomMatrix(10, 30, 6);
    const Y = randomMatrix(10, 2, 7);
    assert.throws(
      () => fitRidge(X, Y, 0, { form: 'primal' }),
      /^UserError: fitRidge: the primal ridge system \(30×30\) with lambda=0 is not positive definite \(pivot \d+ is .*\); use a larger lambda$/,
    );
  });

  it('names the array and its shape on bad input, in one line', () => {
    const X = randomMatrix(200, 10, 8);
    const cases: [() => unknown, RegExp][] = [
      [() => fitRidge(X, randomMatrix(199, 3, 9), 1), /^fitRidge: Y has 199 rows \(shape 199×3\), X has 200 \(shape 200×10\)$/],
      [
        () => fitRidge({ rows: 0, cols: 10, data: new Float64Array(0) }, { rows: 0, cols: 3, data: new Float64Array(0) }, 1),
        /^fitRidge: X has no rows \(shape 0×10\)$/,
      ],
      [
        () => fitRidge({ rows: 200, cols: 10, data: new Float32Array(1999) }, randomMatrix(200, 3, 9), 1),
        /^fitRidge: X has 1999 values, its shape 200×10 needs 2000$/,
      ],
      [() => fitRidge(X, randomMatrix(200, 3, 9), -1), /^fitRidge: lambda must be a finite number ≥ 0, got -1$/],
      [() => selectLambda(X, randomMatrix(200, 3, 9), new Int32Array(10), [1]), /^selectLambda: groups has 10 values, X has 200 rows \(shape 200×10\)$/],
      [() => selectLambda(X, randomMatrix(200, 3, 9), new Int32Array(200), []), /^selectLambda: lambdas is empty$/],
    ];
    const nan = randomMatrix(5, 4, 10);
    nan.data[3 * 4 + 2] = NaN;
    cases.push([() => fitRidge(nan, randomMatrix(5, 1, 11), 1), /^fitRidge: X\[3, 2\] is NaN, expected a finite number$/]);
    for (const [f, re] of cases) {
      assert.throws(f, (e: Error) => {
        assert.equal(e.name, 'UserError');
        assert.match(e.message, re);
        return true;
      });
    }
  });
});

describe('fit: choosing λ on held-out episodes', () => {
  const episodes = (sizes: number[]) => Int32Array.from(sizes.flatMap((s, e) => Array<number>(s).fill(e * 10 + 3)));

  it('prefers a large λ on pure-noise targets and the smallest λ on noiseless linear data', () => {
    const X = randomMatrix(120, 30, 12);
    const groups = episodes([20, 20, 20, 20, 20, 20]);
    const lambdas = [1e-3, 1e-2, 1e-1, 1, 10, 100, 1e3, 1e4];
    const noise = selectLambda(X, randomMatrix(120, 4, 13), groups, lambdas);
    assert.ok(noise.lambda >= 100, `pure noise chose λ=${noise.lambda}`);
    assert.equal(noise.protocol, 'episodes');
    assert.equal(noise.folds, 5);
    const u = seededRandom(14);
    const W = Float64Array.from({ length: 30 * 4 }, () => u() - 0.5);
    const exact = selectLambda(X, linear(X, W, Float64Array.of(1, 2, 3, 4), 0, 15), groups, lambdas);
    assert.equal(exact.lambda, 1e-3);
    for (let i = 1; i < lambdas.length; i++) assert.ok(exact.scores[i].mse > exact.scores[i - 1].mse, 'noiseless: error grows with λ');
  });

  for (const [n, d] of [
    [60, 8],
    [60, 80],
  ]) {
    it(`scores equal separate fits on each fold's training rows (${d < n ? 'primal' : 'dual'} path, N=${n}, D=${d})`, () => {
      const X = randomMatrix(n, d, d);
      for (let i = 0; i < X.data.length; i += 3) X.data[i] += 2; // not centred
      const u = seededRandom(16);
      const Y = linear(
        X,
        Float64Array.from({ length: d * 2 }, () => u() - 0.5),
        Float64Array.of(5, -1),
        0.3,
        17,
      );
      const groups = episodes([25, 15, 12, 8]);
      const lambdas = [0.05, 3, 200];
      const sel = selectLambda(X, Y, groups, lambdas);
      const plan = episodeFolds(groups);
      assert.equal(plan.folds, 4);
      for (const [li, lambda] of lambdas.entries()) {
        let se = 0;
        for (let f = 0; f < plan.folds; f++) {
          const train = [...Array(n).keys()].filter((i) => plan.fold[i] !== f);
          const held = [...Array(n).keys()].filter((i) => plan.fold[i] === f);
          const pred = predictRidge(rowsOf(X, held), fitRidge(rowsOf(X, train), rowsOf(Y, train), lambda));
          const truth = rowsOf(Y, held).data;
          for (let i = 0; i < pred.length; i++) se += (pred[i] - truth[i]) ** 2;
        }
        const mse = se / (n * 2);
        assert.ok(Math.abs(sel.scores[li].mse - mse) < 1e-9 * mse, `λ=${lambda}: ${sel.scores[li].mse} vs ${mse}`);
      }
    });
  }

  it('holds out whole episodes, largest first to the emptiest fold (GroupKFold)', () => {
    const groups = episodes([10, 30, 20, 5, 5, 5, 5]);
    const plan = episodeFolds(groups);
    assert.equal(plan.folds, 5);
    const foldOfEpisode = new Map<number, number>();
    groups.forEach((g, i) => {
      if (!foldOfEpisode.has(g)) foldOfEpisode.set(g, plan.fold[i]);
      assert.equal(plan.fold[i], foldOfEpisode.get(g), `episode ${g} split across folds`);
    });
    // Sizes 30, 20, 10 fill folds 0, 1, 2; the four 5-row episodes (in order of appearance) go to 3, 4, 3, 4.
    assert.deepEqual([...foldOfEpisode.values()], [2, 0, 1, 3, 4, 3, 4]);
    assert.equal(episodeFolds(episodes([10, 10]), 5).folds, 2);
  });

  it('falls back to contiguous blocks with a single episode, and says so', () => {
    const plan = episodeFolds(new Int32Array(12).fill(7));
    assert.equal(plan.protocol, 'blocks');
    assert.deepEqual([...plan.fold], [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4]);
    const sel = selectLambda(randomMatrix(12, 3, 18), randomMatrix(12, 1, 19), new Int32Array(12), [1, 10]);
    assert.equal(sel.protocol, 'blocks');
    assert.match(sel.note, /^one episode only: 5 contiguous blocks of rows held out instead of episodes/);
    assert.throws(
      () => selectLambda(randomMatrix(1, 3, 18), randomMatrix(1, 1, 19), new Int32Array(1), [1]),
      /^UserError: selectLambda: 1 row; at least 2 are needed to hold any out$/,
    );
  });
});

describe('fit: chunk targets', () => {
  it('stacks the next `chunk` actions of the same episode and pads with its last action', () => {
    const actions = { dims: [7, 2], data: Float32Array.from({ length: 14 }, (_, i) => i) };
    const t = stackChunks(actions, Int32Array.of(4, 4, 4, 9, 9, 9, 9), 3);
    assert.deepEqual(t.dims, [7, 3, 2]);
    const row = (i: number) => [...t.data.subarray(i * 6, i * 6 + 6)];
    assert.deepEqual(row(0), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(row(1), [2, 3, 4, 5, 4, 5]); // episode 4 ends at row 2
    assert.deepEqual(row(2), [4, 5, 4, 5, 4, 5]);
    assert.deepEqual(row(3), [6, 7, 8, 9, 10, 11]);
    assert.deepEqual(row(5), [10, 11, 12, 13, 12, 13]);
    assert.deepEqual(row(6), [12, 13, 12, 13, 12, 13]);
    assert.throws(
      () => stackChunks(actions, Int32Array.of(1, 1, 2, 2, 1, 1, 1), 2),
      /^UserError: stackChunks: episode 1 appears again at row 4 after other episodes; an episode's rows must be contiguous and in time order$/,
    );
  });
});

describe('fit: policy head round trip', () => {
  const dir = tempDir('s2-fit-');

  /** Raw features with a spread of means and scales, one of them constant. */
  function rawFeatures(n: number, df: number, seed: number): Float32Array {
    const g = gaussian(seed);
    const f = new Float32Array(n * df);
    for (let i = 0; i < n; i++) for (let j = 0; j < df; j++) f[i * df + j] = j === 1 ? 2.5 : (j - 4) * 0.7 + g() * (0.2 + j);
    return f;
  }

  it('fitPolicy → writePolicy → PolicyHead.act reproduces the fit, and the fit reproduces linear targets', async () => {
    const [n, df, ds, chunk, a] = [150, 12, 3, 3, 2];
    const features = rawFeatures(n, df, 20);
    const g = gaussian(21);
    const state = Float32Array.from({ length: n * ds }, () => 1 + 0.3 * g());
    // Chunk targets that are an exact linear function of the raw inputs, on very different action scales.
    const u = seededRandom(22);
    const M = Float64Array.from({ length: (df + ds) * chunk * a }, () => u() - 0.5);
    const actions = new Float32Array(n * chunk * a);
    for (let i = 0; i < n; i++) {
      for (let o = 0; o < chunk * a; o++) {
        let s = 0;
        for (let j = 0; j < df; j++) s += features[i * df + j] * M[j * chunk * a + o];
        for (let j = 0; j < ds; j++) s += state[i * ds + j] * M[(df + j) * chunk * a + o];
        actions[i * chunk * a + o] = o % a === 0 ? 5 + 0.1 * s : -2 + 10 * s;
      }
    }
    const episodes = Int32Array.from({ length: n }, (_, i) => Math.floor(i / 30));
    const fit = fitPolicy(
      { features: { dims: [n, df], data: features }, state: { dims: [n, ds], data: state }, actions: { dims: [n, chunk, a], data: actions }, episodes },
      { chunk },
    );
    assert.deepEqual([fit.featureDim, fit.stateDim, fit.actionDim, fit.chunk], [df, ds, a, chunk]);
    assert.equal(fit.selection.protocol, 'episodes');
    assert.equal(fit.lambda, 1e-3, 'noiseless targets: the smallest λ');
    assert.ok(fit.trainMse < 1e-6, `train mse ${fit.trainMse}`);

    // Statistics: independent column means of the features, the floored std of the constant one.
    for (const j of [0, 5, 11]) {
      let s = 0;
      for (let i = 0; i < n; i++) s += features[i * df + j];
      assert.ok(Math.abs(fit.stats['observation.features'].mean[j] - s / n) < 1e-5 * (1 + Math.abs(s / n)));
    }
    assert.equal(fit.stats['observation.features'].std[1], Math.fround(1e-6));

    const { model, stats } = writePolicy(dir, fit);
    assert.equal(model, join(dir, 'policy.onnx'));
    assert.equal(stats, join(dir, 'policy.stats.json'));
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(stats, 'utf8')) as object).sort(), ['action', 'observation.features', 'observation.state']);
    const head = await PolicyHead.load({ model, stats, featuresInput: 'features', stateInput: 'state' });
    try {
      assert.deepEqual(head.shape, { featureDim: df, stateDim: ds, chunk, actionDim: a });
      for (const i of [0, 17, 64, 149]) {
        const f = features.subarray(i * df, (i + 1) * df);
        const s = state.subarray(i * ds, (i + 1) * ds);
        const out = await head.act(f, s);
        const js = predictPolicy(fit, f, s);
        assert.ok(maxDiff(out, js) < 1e-4, `row ${i}: head vs JS ${maxDiff(out, js)}`);
        // The unnormalised prediction is the recorded action (scales 0.1 and 10 about means 5 and −2).
        const target = actions.subarray(i * chunk * a, (i + 1) * chunk * a);
        assert.ok(maxDiff(out, target) < 2e-3, `row ${i}: head vs target ${maxDiff(out, target)}`);
      }
    } finally {
      await head.release(); // its worker thread would keep the test process alive
    }
  });

  it('stacks per-step actions into chunks and writes a head without a state input', async () => {
    const [n, df, chunk, a] = [90, 6, 4, 3];
    const features = rawFeatures(n, df, 30);
    const g = gaussian(31);
    const actions = Float32Array.from({ length: n * a }, () => g());
    const episodes = Int32Array.from({ length: n }, (_, i) => (i < 40 ? 0 : i < 70 ? 1 : 2));
    const fit = fitPolicy({ features: { dims: [n, df], data: features }, actions: { dims: [n, a], data: actions }, episodes }, { chunk, lambdas: [0.1, 10] });
    assert.deepEqual([fit.stateDim, fit.chunk, fit.weight.length, fit.bias.length], [0, chunk, df * chunk * a, chunk * a]);
    assert.equal(fit.stats['observation.state'], undefined);
    assert.equal(fit.selection.folds, 3);
    const file = join(dir, 'nostate', 'head.onnx');
    const { stats } = writePolicy(file, fit);
    assert.equal(stats, join(dir, 'nostate', 'head.stats.json'));
    const head = await PolicyHead.load({ model: file, stats, featuresInput: 'features' });
    try {
      assert.deepEqual(head.shape, { featureDim: df, stateDim: 0, chunk, actionDim: a });
      for (const i of [0, 39, 89]) {
        const f = features.subarray(i * df, (i + 1) * df);
        const out = await head.act(f);
        assert.ok(maxDiff(out, predictPolicy(fit, f)) < 1e-4, `row ${i}`);
      }
    } finally {
      await head.release();
    }
  });

  it('names the array and its shape when the data do not fit together', () => {
    const f = { dims: [10, 4], data: new Float32Array(40) };
    const acts = { dims: [10, 2], data: new Float32Array(20) };
    const ep = new Int32Array(10);
    const cases: [() => unknown, RegExp][] = [
      [
        () => fitPolicy({ features: f, state: { dims: [9, 2], data: new Float32Array(18) }, actions: acts, episodes: ep }, { chunk: 2 }),
        /^fitPolicy: state has 9 rows \(shape \[9, 2\]\), features has 10$/,
      ],
      [
        () => fitPolicy({ features: f, actions: { dims: [11, 2], data: new Float32Array(22) }, episodes: ep }, { chunk: 2 }),
        /^fitPolicy: actions has 11 rows \(shape \[11, 2\]\), features has 10$/,
      ],
      [
        () => fitPolicy({ features: f, actions: { dims: [10, 3, 2], data: new Float32Array(60) }, episodes: ep }, { chunk: 2 }),
        /^fitPolicy: actions has shape \[10, 3, 2\], expected \[10, 2, actionDim\]/,
      ],
      [() => fitPolicy({ features: f, actions: acts, episodes: new Int32Array(8) }, { chunk: 2 }), /^fitPolicy: episodes has 8 values, features has 10 rows$/],
      [
        () =>
          fitPolicy(
            { features: { dims: [0, 4], data: new Float32Array(0) }, actions: { dims: [0, 2], data: new Float32Array(0) }, episodes: new Int32Array(0) },
            { chunk: 2 },
          ),
        /^fitPolicy: features \[0, 4\] has no rows \(shape 0×4\)$/,
      ],
      [
        () => fitPolicy({ features: { dims: [10, 4, 1], data: new Float32Array(40) }, actions: acts, episodes: ep }, { chunk: 2 }),
        /^fitPolicy: features must be 2-D \[N, D\], got shape \[10, 4, 1\]$/,
      ],
      [() => fitPolicy({ features: f, actions: acts, episodes: ep }, { chunk: 0 }), /^fitPolicy: chunk must be an integer ≥ 1, got 0$/],
    ];
    for (const [fn, re] of cases) {
      assert.throws(fn, (e: Error) => {
        assert.equal(e.name, 'UserError');
        assert.match(e.message, re);
        return true;
      });
    }
  });
});
