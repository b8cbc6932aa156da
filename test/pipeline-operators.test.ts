// Time-dependent behaviour of the frame path and the control clock, with RxJS TestScheduler marbles.
import { strict as assert } from 'node:assert';
import { from, map, timer, toArray, lastValueFrom } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { ActionController } from '../src/pipeline/controller.js';
import { processLatest, syncCameras, type CameraFrame, type SyncDropReason } from '../src/pipeline/operators.js';
import { atControlRate, controlTicks } from '../src/pipeline/pipeline.js';
import { ManualClock } from '../src/pipeline/clock.js';
import { ActionChunks } from '../src/policy/chunks.js';
import { limitAction } from '../src/policy/safety.js';

const scheduler = () => new TestScheduler((actual, expected) => assert.deepEqual(actual, expected));

function frame(camera: string, ms: number): CameraFrame {
  return {
    camera,
    kind: 'raw',
    msg: {
      header: { stamp: { sec: Math.floor(ms / 1000), nanosec: (ms % 1000) * 1e6 }, frame_id: camera },
      height: 1,
      width: 1,
      encoding: 'rgb8',
      is_bigendian: 0,
      step: 3,
      data: new Uint8Array(3),
    },
  };
}

describe('pipeline operators (marbles)', () => {
  it('processLatest keeps only the newest value while busy and drops the rest', () => {
    const dropped: string[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('abc----d|');
      const out = source.pipe(
        processLatest(
          (v: string) => timer(3).pipe(map(() => v.toUpperCase())),
          (v) => dropped.push(v),
        ),
      );
      expectObservable(out).toBe('---A--C---(D|)');
    });
    assert.deepEqual(dropped, ['b']);
  });

  it('processLatest never queues more than one value', () => {
    const dropped: string[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const out = cold('abcdefg|').pipe(
        processLatest(
          (v: string) => timer(10).pipe(map(() => v)),
          (v) => dropped.push(v),
        ),
      );
      expectObservable(out).toBe('----------a---------(g|)');
    });
    assert.deepEqual(dropped, ['b', 'c', 'd', 'e', 'f']);
  });

  it('approximate sync emits a group when the matching partner arrives, and drops unmatched frames', () => {
    const dropped: string[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const frames = { a: frame('a', 0), b: frame('b', 5), c: frame('a', 33), d: frame('b', 70), e: frame('a', 66) };
      const out = cold('a-b--c---d-e|', frames).pipe(
        syncCameras(['a', 'b'], { mode: 'approximate', slopMs: 20 }, (f, r) => dropped.push(`${f.camera}${f.msg.header.stamp.nanosec / 1e6}:${r}`)),
        map((g) => g.map((f) => `${f.camera}${f.msg.header.stamp.nanosec / 1e6}`).join(' ')),
      );
      expectObservable(out).toBe('--x--------y|', { x: 'a0 b5', y: 'a66 b70' });
    });
    assert.deepEqual(dropped, ['a33:unmatched']);
  });

  it('emits one command per control tick, from the chunk, then the safe action once features are stale', () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable }) => {
      const c = new ActionController({ dim: 1, commandType: 'velocity', chunkMode: 'latest', ensembleK: 0, staleAfterMs: 250, limits: {} });
      // A 5-step chunk arrives at t = 50 ms; the control clock runs at 10 Hz.
      cold('50ms a').subscribe(() => c.addChunk(50, Float32Array.of(1, 2, 3, 4, 5), 5));
      const out = atControlRate(c, 10, ts).pipe(map((cmd) => `${cmd.values[0]}${cmd.state === 'ok' ? '' : 's'}`));
      expectObservable(out, '^ 550ms !').toBe('100ms a 99ms b 99ms c 99ms d 99ms e', { a: '1', b: '2', c: '3', d: '0s', e: '0s' });
    });
  });
});

describe('chunk coverage', () => {
  it("while features are fresh, holds the newest chunk's last action past its end (counted), and stops only at the watchdog", () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable }) => {
      const c = new ActionController({ dim: 1, commandType: 'velocity', chunkMode: 'latest', ensembleK: 0, staleAfterMs: 250, limits: {} });
      // A 2-step chunk at 50 ms, 10 Hz ticks: it covers the 100 and 200 ms ticks; the 300 ms tick is fresh
      // (250 ms old) but past the chunk, so it holds 2; from 400 ms the watchdog sends the safe zero.
      cold('50ms a').subscribe(() => c.addChunk(50, Float32Array.of(1, 2), 2));
      const out = atControlRate(c, 10, ts).pipe(map((cmd) => `${cmd.values[0]}${cmd.state === 'ok' ? '' : 's'}`));
      expectObservable(out, '^ 550ms !').toBe('100ms a 99ms b 99ms c 99ms d 99ms e', { a: '1', b: '2', c: '2', d: '0s', e: '0s' });
    });
  });

  it('counts the held ticks, and a new chunk takes over at once', () => {
    const c = new ActionController({ dim: 1, commandType: 'velocity', chunkMode: 'ensemble', ensembleK: 0.01, staleAfterMs: 300, limits: { maxDelta: [10] } });
    c.tick(0, 0);
    c.addChunk(10, Float32Array.of(0.1, 0.2), 2);
    assert.ok(Math.abs((c.tick(1, 50)?.values[0] ?? 0) - 0.1) < 1e-6);
    assert.ok(Math.abs((c.tick(2, 100)?.values[0] ?? 0) - 0.2) < 1e-6);
    const held = c.tick(3, 150);
    assert.equal(held?.state, 'ok');
    assert.ok(Math.abs((held?.values[0] ?? 0) - 0.2) < 1e-6);
    assert.equal(c.uncovered, 1);
    c.addChunk(160, Float32Array.of(0.5, 0.6), 2);
    assert.ok(Math.abs((c.tick(4, 200)?.values[0] ?? 0) - 0.5) < 1e-6);
    assert.equal(c.uncovered, 1);
    assert.equal(c.tick(5, 250)?.values[0] !== undefined, true);
    assert.equal(c.tick(6, 300)?.state, 'ok', 'held: fresh until 460 ms');
    assert.equal(c.uncovered, 2);
    assert.equal(c.tick(7, 500)?.state, 'stale');
    assert.equal(c.tick(7, 500)?.values[0], 0);
  });
});

describe('control clock and watchdog', () => {
  it('follows a clock that jumps (first /clock of a simulation) without replaying the gap', () => {
    const clock = new ManualClock(0);
    const ticks: string[] = [];
    let late = 0;
    const sub = controlTicks(50, clock, (n) => (late += n)).subscribe((k) => ticks.push(`${k}@${clock.now()}`));
    clock.jumpTo(1_700_000_000_000);
    clock.jumpTo(1_700_000_000_050);
    clock.jumpTo(1_700_000_000_100);
    sub.unsubscribe();
    assert.deepEqual(ticks, ['0@1700000000000', '1@1700000000050', '2@1700000000100']);
    assert.equal(late, 0);
  });

  it('changes rate at run time from the next tick, indices still counting up', () => {
    const ts = scheduler();
    ts.run(({ expectObservable }) => {
      let period = 100;
      const ticks = controlTicks(() => period, ts).pipe(
        map((k) => {
          if (k === 2) period = 50; // after the tick at 300 ms, 20 Hz
          return `${k}@${ts.now()}`;
        }),
      );
      expectObservable(ticks, '^ 460ms !').toBe('100ms a 99ms b 99ms c 49ms d 49ms e 49ms f', {
        a: '0@100',
        b: '1@200',
        c: '2@300',
        d: '3@350',
        e: '4@400',
        f: '5@450',
      });
    });
  });

  it('switches to zero velocity within one tick of going stale, and back when features return', () => {
    const ts = scheduler();
    ts.run(({ cold, expectObservable }) => {
      const c = new ActionController({ dim: 2, commandType: 'velocity', chunkMode: 'latest', ensembleK: 0, staleAfterMs: 100, limits: {} });
      cold('10ms a 299ms b').subscribe((v) =>
        c.addChunk(v === 'a' ? 10 : 310, Float32Array.of(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), 10),
      );
      const out = atControlRate(c, 20, ts).pipe(map((cmd) => (cmd.state === 'ok' ? 'o' : 's')));
      // Ticks every 50 ms: fresh until 110 ms, stale from the 150 ms tick, fresh again from the 350 ms tick.
      expectObservable(out, '^ 420ms !').toBe('50ms o 49ms o 49ms s 49ms s 49ms s 49ms s 49ms o 49ms o');
    });
  });

  it('holds the last position command when stale', () => {
    const c = new ActionController({ dim: 1, commandType: 'position', chunkMode: 'latest', ensembleK: 0, staleAfterMs: 100, limits: {} });
    assert.equal(c.tick(0, 0), undefined, 'no command before the first position');
    c.addChunk(0, Float32Array.of(0.5, 0.7), 2);
    assert.equal(c.tick(1, 50)?.values[0], 0.5);
    assert.ok(Math.abs((c.tick(2, 100)?.values[0] ?? 0) - 0.7) < 1e-6);
    const held = c.tick(3, 200);
    assert.equal(held?.state, 'stale');
    assert.ok(Math.abs((held?.values[0] ?? 0) - 0.7) < 1e-6);
  });

  it('rejects a chunk with NaN or Inf', () => {
    const c = new ActionController({ dim: 1, commandType: 'velocity', chunkMode: 'latest', ensembleK: 0, staleAfterMs: 100, limits: {} });
    assert.equal(c.addChunk(0, Float32Array.of(NaN), 1), false);
    assert.equal(c.addChunk(0, Float32Array.of(Infinity), 1), false);
    assert.equal(c.tick(0, 10)?.state, 'stale');
  });
});

describe('temporal ensembling', () => {
  it('weights overlapping chunks exp(−k·i), oldest first', () => {
    const k = 0.5;
    const ch = new ActionChunks(1, 'ensemble', k);
    ch.add(0, Float32Array.of(1, 1, 1, 1), 4);
    ch.add(1, Float32Array.of(2, 2, 2, 2), 4);
    ch.add(2, Float32Array.of(3, 3, 3, 3), 4);
    const w = [1, Math.exp(-k), Math.exp(-2 * k)];
    const sum = w[0] + w[1] + w[2];
    assert.deepEqual(
      ch.weightsAt(2).map((x) => x.toFixed(6)),
      w.map((x) => (x / sum).toFixed(6)),
    );
    const expected = (1 * w[0] + 2 * w[1] + 3 * w[2]) / sum;
    assert.ok(Math.abs((ch.at(2) as Float32Array)[0] - expected) < 1e-6);
    // Tick 4: the first chunk has ended; the other two remain.
    const w4 = (2 * 1 + 3 * Math.exp(-k)) / (1 + Math.exp(-k));
    assert.ok(Math.abs((ch.at(4) as Float32Array)[0] - w4) < 1e-6);
    assert.equal(ch.at(6), undefined);
  });

  it('uses the chunk step that belongs to the tick', () => {
    const ch = new ActionChunks(2, 'latest');
    ch.add(10, Float32Array.of(1, 10, 2, 20, 3, 30), 3);
    assert.deepEqual([...(ch.at(11) as Float32Array)], [2, 20]);
    ch.add(11, Float32Array.of(5, 50, 6, 60), 2);
    assert.deepEqual([...(ch.at(12) as Float32Array)], [6, 60]);
    ch.reset();
    assert.equal(ch.at(12), undefined);
  });
});

describe('action limits', () => {
  it('clamps to [lower, upper] and limits the change per tick', () => {
    const limits = { lower: [-1, 0], upper: [1, 2], maxDelta: [0.1, 0.5] };
    assert.deepEqual([...limitAction(Float32Array.of(5, -3), limits)], [1, 0]);
    const prev = Float32Array.of(0.5, 1);
    const a = limitAction(Float32Array.of(0.9, 0.2), limits, prev);
    assert.ok(Math.abs(a[0] - 0.6) < 1e-6 && Math.abs(a[1] - 0.5) < 1e-6, `got ${[...a].join(', ')}`);
  });
});

describe('camera synchronisation', () => {
  async function groups(frames: CameraFrame[], mode: 'latest' | 'approximate', slopMs = 10) {
    const drops: [string, number, SyncDropReason][] = [];
    const out = await lastValueFrom(
      from(frames).pipe(
        syncCameras(['a', 'b'], { mode, slopMs }, (f, r) => drops.push([f.camera, f.msg.header.stamp.nanosec / 1e6, r])),
        map((g) => g.map((f) => `${f.camera}${f.msg.header.stamp.nanosec / 1e6}`).join(' ')),
        toArray(),
      ),
    );
    return { out, drops };
  }

  it('latest: the newest of each camera, once each has a new frame', async () => {
    const { out, drops } = await groups([frame('a', 0), frame('a', 33), frame('b', 40), frame('b', 70), frame('a', 66), frame('a', 100)], 'latest');
    assert.deepEqual(out, ['a33 b40', 'a66 b70']);
    assert.deepEqual(drops, [
      ['a', 0, 'superseded'],
      ['a', 100, 'unused_at_end'],
    ]);
  });

  it('approximate: groups stamps within the slop and discards older unmatched frames', async () => {
    const { out, drops } = await groups([frame('a', 0), frame('a', 33), frame('b', 38), frame('a', 66), frame('b', 90), frame('a', 100)], 'approximate', 10);
    assert.deepEqual(out, ['a33 b38', 'a100 b90']);
    assert.deepEqual(drops, [
      ['a', 0, 'unmatched'],
      ['a', 66, 'unmatched'],
    ]);
  });
});
