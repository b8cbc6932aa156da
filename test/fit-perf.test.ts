// Ridge fitting speed. Small sizes by default; FIT_BENCH=full runs the sizes the fitting protocol is meant for
// (N=2,000 × D=2,000 × K=16 primal, N=500 × D=20,000 dual, and the whole fitPolicy with λ selection at both sizes).
// The bounds only catch order-of-magnitude regressions; the printed times are the measurement.
import { strict as assert } from 'node:assert';
import { seededRandom } from '../src/models/zoo.js';
import { fitPolicy, fitRidge } from '../src/policy/fit.js';

const FULL = process.env.FIT_BENCH === 'full';

function random(length: number, seed: number): Float32Array {
  const u = seededRandom(seed);
  return Float32Array.from({ length }, () => u() * 2 - 1);
}

function timed<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, (performance.now() - t0) / 1000];
}

describe('fit: speed', () => {
  const cases = FULL
    ? [
        { n: 2000, d: 2000, k: 16, maxS: 30 },
        { n: 500, d: 20000, k: 16, maxS: 30 },
      ]
    : [
        { n: 600, d: 600, k: 16, maxS: 10 },
        { n: 200, d: 5000, k: 16, maxS: 10 },
      ];
  for (const { n, d, k, maxS } of cases) {
    it(`fitRidge N=${n} × D=${d} × K=${k} (${d <= n ? 'primal' : 'dual'}) in under ${maxS} s`, function () {
      this.timeout(maxS * 4000);
      const X = { rows: n, cols: d, data: random(n * d, 1) };
      const Y = { rows: n, cols: k, data: random(n * k, 2) };
      const [fit, s] = timed(() => fitRidge(X, Y, 1));
      console.log(`      fitRidge ${n}×${d}×${k} (${fit.form}): ${s.toFixed(2)} s`);
      assert.equal(fit.W.length, d * k);
      assert.ok(s < maxS, `${s.toFixed(1)} s`);
    });
  }

  const policyCases = FULL
    ? [
        { n: 2000, d: 2000, maxS: 120 },
        { n: 500, d: 20000, maxS: 120 },
      ]
    : [{ n: 400, d: 400, maxS: 20 }];
  for (const { n, d, maxS } of policyCases) {
    it(`fitPolicy N=${n} × D=${d}, chunk 8 × 2 actions, λ selection over 8 values and 5 episode folds`, function () {
      this.timeout(maxS * 4000);
      const [a, chunk] = [2, 8];
      const episodes = Int32Array.from({ length: n }, (_, i) => Math.floor((i * 10) / n));
      const [fit, s] = timed(() =>
        fitPolicy({ features: { dims: [n, d], data: random(n * d, 3) }, actions: { dims: [n, a], data: random(n * a, 4) }, episodes }, { chunk }),
      );
      console.log(`      fitPolicy ${n}×${d}, K=${chunk * a}, ${fit.scores.length} λ × ${fit.selection.folds} folds: ${s.toFixed(2)} s (λ=${fit.lambda})`);
      assert.ok(s < maxS, `${s.toFixed(1)} s`);
    });
  }
});
