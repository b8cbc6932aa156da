// The fidelity comparison (bench/fidelity-lib.ts) on constructed action streams: pairing across a phase, differing
// ticks, stale periods and the one-tick match, so that bench:fidelity's figures mean what they say.
import { strict as assert } from 'node:assert';
import { compareActions, stalePeriods, type TimedAction } from '../bench/fidelity-lib.js';

const MS = 1e6;

/** A 20 Hz stream from `phaseMs`, values f(k) for tick k, zero (safe) for ticks in [staleFrom, staleTo). */
function stream(phaseMs: number, n: number, f: (k: number) => number[], staleFrom = Infinity, staleTo = Infinity): TimedAction[] {
  return Array.from({ length: n }, (_, k) => ({ t: (phaseMs + 50 * k) * MS, v: k >= staleFrom && k < staleTo ? [0, 0] : f(k) }));
}

describe('fidelity comparison', () => {
  it('pairs ticks one-to-one across a phase and counts differing and stale ticks', () => {
    const f = (k: number) => [0.1 * Math.sin(k / 5), 0.05 + 0.01 * k];
    const replay = stream(0, 100, f, 60, 100);
    const same = compareActions(stream(27, 100, f, 60, 100), replay, 50, 0, 5000);
    assert.equal(same.paired, 100);
    assert.equal(same.differing, 0);
    assert.ok(Math.abs(same.medianPhaseMs - 27) < 1e-9);
    assert.deepEqual(same.replayStale, [{ startMs: 3000, endMs: 4950 }]);
    assert.deepEqual(same.liveStale, [{ startMs: 3027, endMs: 4977 }]);
    assert.equal(same.pairedMoving, 60);
    assert.equal(same.matchedWithinOneTick, 60);

    // One tick late: every moving value differs, yet each is within a tick of a replay action.
    const late = compareActions(
      stream(10, 100, (k) => f(k - 1), 61, 100),
      replay,
      50,
      0,
      5000,
    );
    assert.equal(late.paired, 100);
    assert.equal(late.differing, 61);
    assert.equal(late.differingMoving, 61);
    assert.equal(late.matchedWithinOneTick, 60);
    assert.equal(late.liveStale[0].startMs - late.replayStale[0].startMs, 60);

    // Missing live ticks are not paired with a neighbour twice.
    const gappy = stream(5, 100, f).filter((_, k) => k % 10 !== 3);
    const g = compareActions(gappy, stream(0, 100, f), 50, 0, 5000);
    assert.equal(g.liveActions, 90);
    assert.equal(g.paired, 90);
    assert.equal(g.differing, 0);
  });

  it('takes runs of two or more safe actions as stale periods', () => {
    const a = stream(0, 10, () => [1, 1]);
    a[2].v = [0, 0];
    a[5].v = [0, 0];
    a[6].v = [0, 0];
    a[9].v = [0, 0];
    assert.deepEqual(stalePeriods(a), [{ startMs: 250, endMs: 300 }]);
  });
});
