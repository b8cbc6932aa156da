// src/sim: options, determinism per seed, the scene as the camera sees it (target pixel and size, distractors, the
// arm), joint-velocity dynamics with clamps and limits, the simulated clock, and render time (reported, not asserted).
import assert from 'node:assert/strict';
import { TabletopSim, SIM_EPOCH, COLOURS, CAMERA_FRAME_ID, type TabletopSimOptions } from '../src/sim/index.js';
import { UserError } from '../src/errors.js';
import type { ImageMsg } from '../src/msgs/types.js';

/** Pixel (u, v) → [r, g, b] of an rgb8 frame. */
function pixel(img: ImageMsg, u: number, v: number): number[] {
  const o = (Math.floor(v) * img.width + Math.floor(u)) * 3;
  const d = img.data as Uint8Array;
  return [d[o], d[o + 1], d[o + 2]];
}

/**
 * Where the test expects a table point in the default 640×480 image, written out independently of CameraGeometry:
 * the 0.8 m × 0.6 m table (x from -0.05 to 0.55 forward, y from -0.4 to 0.4 leftward) fills the frame at 800 px/m,
 * x grows upward in the image and y leftward.
 */
function expectedPixel(x: number, y: number): [number, number] {
  return [(0.4 - y) * 800, (0.55 - x) * 800];
}

/** The 4-connected region of exactly `rgb` around (u, v): its bounding box and pixel count. */
function region(img: ImageMsg, u: number, v: number, rgb: readonly number[]): { w: number; h: number; count: number } {
  const seen = new Set<number>();
  const stack = [Math.floor(v) * img.width + Math.floor(u)];
  let [u0, u1, v0, v1] = [Infinity, -Infinity, Infinity, -Infinity];
  while (stack.length > 0) {
    const k = stack.pop()!;
    if (seen.has(k)) continue;
    const [x, y] = [k % img.width, Math.floor(k / img.width)];
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) continue;
    if (pixel(img, x, y).some((c, i) => c !== rgb[i])) continue;
    seen.add(k);
    [u0, u1, v0, v1] = [Math.min(u0, x), Math.max(u1, x), Math.min(v0, y), Math.max(v1, y)];
    if (x > 0) stack.push(k - 1);
    if (x < img.width - 1) stack.push(k + 1);
    if (y > 0) stack.push(k - img.width);
    if (y < img.height - 1) stack.push(k + img.width);
  }
  return { w: u1 - u0 + 1, h: v1 - v0 + 1, count: seen.size };
}

/** A fixed, non-expert action sequence that exercises both joints in both directions. */
function wiggle(k: number): Float32Array {
  return Float32Array.of(0.8 * Math.sin(0.3 * k), -0.7 * Math.cos(0.2 * k));
}

/** Options under which no episode ends while a test drives the arm around: a vanishing radius, a large budget. */
const NO_END = { successRadius: 1e-9, stepBudget: 100_000 };

function distanceToSegment(p: number[], a: number[], b: number[]): number {
  const [eu, ev] = [b[0] - a[0], b[1] - a[1]];
  const t = Math.max(0, Math.min(1, ((p[0] - a[0]) * eu + (p[1] - a[1]) * ev) / (eu * eu + ev * ev)));
  return Math.hypot(p[0] - a[0] - t * eu, p[1] - a[1] - t * ev);
}

describe('sim: options', () => {
  it('has the documented defaults', () => {
    const o = new TabletopSim().options;
    assert.deepEqual(
      { ...o },
      {
        width: 640,
        height: 480,
        dt: 0.05,
        linkLengths: [0.35, 0.3],
        maxJointVelocity: 1,
        jointLimits: [
          [-2.8, 2.8],
          [-2.8, 2.8],
        ],
        targetSizePx: 8,
        successRadius: 0.01,
        stepBudget: 200,
        distractors: [3, 6],
        seed: 0,
      },
    );
  });

  it('rejects bad options with one line naming the option and the value', () => {
    const cases: [TabletopSimOptions | Record<string, unknown>, RegExp][] = [
      [{ targetSizePx: 0 }, /^sim: targetSizePx must be an integer from 2 to 60, got 0$/],
      [{ targetSizePx: 7.5 }, /^sim: targetSizePx must be .*, got 7\.5$/],
      [{ dt: -0.05 }, /^sim: dt must be a number > 0 and ≤ 1, got -0\.05$/],
      [{ width: 10 }, /^sim: width must be an integer from 64 to 8192, got 10$/],
      [{ linkLengths: [0.3] }, /^sim: linkLengths must be a pair of finite numbers, got \[0\.3\]$/],
      [{ linkLengths: [0.3, -0.1] }, /^sim: linkLengths must be two positive lengths in metres, got \[0\.3, -0\.1\]$/],
      [
        {
          jointLimits: [
            [1, -1],
            [-1, 1],
          ],
        },
        /^sim: jointLimits\[0\] must be min < max within \[-π, π\], got \[1, -1\]$/,
      ],
      [{ distractors: [5, 2] }, /^sim: distractors must be integers \[min, max\] with 0 ≤ min ≤ max ≤ 12, got \[5, 2\]$/],
      [{ stepBudget: 0 }, /^sim: stepBudget must be an integer from 1 to 1000000, got 0$/],
      [{ seed: -1 }, /^sim: seed must be an integer from 0 to 4294967295, got -1$/],
      [{ targetSize: 8 }, /^sim: unknown option targetSize; known: width, height, /],
      [{ linkLengths: [0.02, 0.02] }, /^sim: linkLengths 0\.02, 0\.02 with jointLimits leave no reachable target on the table$/],
    ];
    for (const [options, message] of cases) {
      assert.throws(
        () => new TabletopSim(options),
        (e: Error) => e instanceof UserError && message.test(e.message) && !e.message.includes('\n'),
        JSON.stringify(options),
      );
    }
    assert.throws(() => new TabletopSim().reset(2.5), /^UserError: sim: seed must be an integer from 0 to 4294967295, got 2\.5$/);
  });
});

describe('sim: determinism', () => {
  it('the same seed gives byte-identical frames and identical joint states; reset(seed) replays a fresh sim', () => {
    const a = new TabletopSim({ ...NO_END, seed: 42 });
    const b = new TabletopSim({ ...NO_END, seed: 7 });
    b.reset(42);
    assert.deepEqual(b.scene, a.scene);
    for (let k = 0; k < 30; k++) {
      const fa = a.render();
      const fb = b.render();
      assert.ok(Buffer.from(fa.data as Uint8Array).equals(Buffer.from(fb.data as Uint8Array)), `frame ${k}`);
      assert.deepEqual(a.jointState().position, b.jointState().position);
      assert.deepEqual(a.jointState().velocity, b.jointState().velocity);
      assert.deepEqual(a.step(wiggle(k)), b.step(wiggle(k)));
    }
  });

  it('different seeds give different scenes and frames', () => {
    const sim = new TabletopSim();
    const targets = new Set<string>();
    const counts = new Set<number>();
    const first = Buffer.from(sim.render().data as Uint8Array);
    for (let seed = 0; seed < 30; seed++) {
      sim.reset(seed);
      targets.add(`${sim.scene.target.u},${sim.scene.target.v}`);
      counts.add(sim.scene.distractors.length);
      if (seed > 0) assert.ok(!first.equals(Buffer.from(sim.render().data as Uint8Array)), `seed ${seed} renders like seed 0`);
    }
    assert.equal(targets.size, 30);
    assert.ok(counts.size >= 3, `distractor counts ${[...counts].join(', ')}`);
  });
});

describe('sim: scene and camera', () => {
  it('draws the target in its colour at its pixel centre, targetSizePx across', () => {
    for (const targetSizePx of [2, 3, 8, 13, 20]) {
      const sim = new TabletopSim({ targetSizePx });
      for (let seed = 0; seed < 10; seed++) {
        sim.reset(seed);
        const t = sim.scene.target;
        const [u, v] = expectedPixel(t.x, t.y);
        assert.ok(Math.abs(u - t.u) < 1e-9 && Math.abs(v - t.v) < 1e-9, `target pixel ${t.u},${t.v} vs ${u},${v}`);
        const img = sim.render({ arm: false });
        assert.deepEqual(pixel(img, u, v), [...COLOURS.red], `size ${targetSizePx} seed ${seed}`);
        const r = region(img, u, v, COLOURS.red);
        assert.deepEqual([r.w, r.h], [targetSizePx, targetSizePx], `size ${targetSizePx} seed ${seed}`);
        if (targetSizePx >= 8) {
          const disc = (Math.PI * targetSizePx * targetSizePx) / 4;
          assert.ok(Math.abs(r.count - disc) < 0.15 * disc, `${r.count} pixels for a ${targetSizePx} px disc`);
        }
      }
    }
  });

  it('places 3–6 distractors clear of the target, with decoys that share its colour or its size but not its look', () => {
    const sim = new TabletopSim();
    const d = sim.options.targetSizePx;
    for (let seed = 0; seed < 50; seed++) {
      sim.reset(seed);
      const { target, distractors } = sim.scene;
      assert.ok(distractors.length >= 3 && distractors.length <= 6, `seed ${seed}: ${distractors.length}`);
      for (const o of distractors) {
        const reach = o.shape === 'circle' ? o.sizePx / 2 : (o.sizePx / 2) * Math.SQRT2;
        assert.ok(Math.hypot(o.u - target.u, o.v - target.v) > reach + d / 2, `seed ${seed}: distractor overlaps the target`);
        assert.ok(!(o.shape === 'circle' && o.colour === 'red' && o.sizePx < 2 * d), `seed ${seed}: a distractor looks like the target`);
        assert.ok(o.u >= 0 && o.u < 640 && o.v >= 0 && o.v < 480);
      }
      assert.ok(
        distractors.some((o) => o.colour === 'red'),
        `seed ${seed}: no red decoy`,
      );
      assert.ok(
        distractors.some((o) => o.sizePx === d && o.colour !== 'red'),
        `seed ${seed}: no same-size decoy`,
      );
      const [bx, by] = [target.x, target.y];
      assert.ok(Math.hypot(bx, by) <= 0.65, `seed ${seed}: target out of reach`);
    }
  });

  it('draws the arm where the kinematics put it, with the table visible through the gripper', () => {
    const sim = new TabletopSim({ ...NO_END, seed: 3 });
    for (let k = 0; k < 5; k++) sim.step(wiggle(k));
    const bg = sim.render({ arm: false });
    const img = sim.render();
    assert.equal(img.header.frame_id, CAMERA_FRAME_ID);
    const { base, elbow, effector } = sim.armPixels();
    const [ex, ey] = sim.effector();
    assert.deepEqual(
      effector.map((c) => Math.round(c * 1e6)),
      expectedPixel(ex, ey).map((c) => Math.round(c * 1e6)),
    );
    // Gripper: a dark ring 5.2–8.8 px around the end effector, open in the middle.
    const dir = [
      (effector[0] - elbow[0]) / Math.hypot(effector[0] - elbow[0], effector[1] - elbow[1]),
      (effector[1] - elbow[1]) / Math.hypot(effector[0] - elbow[0], effector[1] - elbow[1]),
    ];
    assert.deepEqual(pixel(img, effector[0] + 7 * dir[0], effector[1] + 7 * dir[1]), [28, 28, 32]);
    assert.deepEqual(pixel(img, effector[0], effector[1]), pixel(bg, effector[0], effector[1]));
    // Every pixel the arm changed lies on the base, a link or the gripper (sizes in metres × 800 px/m, + 1 px).
    let changed = 0;
    for (let v = 0; v < 480; v++) {
      for (let u = 0; u < 640; u++) {
        if (pixel(img, u, v).every((c, i) => c === pixel(bg, u, v)[i])) continue;
        changed++;
        const p = [u + 0.5, v + 0.5];
        const near =
          Math.hypot(p[0] - base[0], p[1] - base[1]) <= 0.03 * 800 + 1 ||
          distanceToSegment(p, base, elbow) <= 0.012 * 800 + 1 ||
          distanceToSegment(p, elbow, effector) <= 0.009 * 800 + 1 ||
          Math.hypot(p[0] - effector[0], p[1] - effector[1]) <= 0.011 * 800 + 1;
        assert.ok(near, `pixel ${u},${v} changed away from the arm`);
      }
    }
    // At least the two links' areas (length × width) were drawn.
    const links = Math.hypot(elbow[0] - base[0], elbow[1] - base[1]) * 19 + Math.hypot(effector[0] - elbow[0], effector[1] - elbow[1]) * 14;
    assert.ok(changed > 0.8 * links, `${changed} pixels changed`);
  });

  it('renders into a caller-given buffer of the right size only', () => {
    const sim = new TabletopSim();
    const out = new Uint8Array(640 * 480 * 3);
    const img = sim.render({ out });
    assert.equal(img.data, out);
    assert.ok(Buffer.from(out).equals(Buffer.from(sim.render().data as Uint8Array)));
    assert.throws(() => sim.render({ out: new Uint8Array(10) }), /^UserError: sim: render out must hold 640×480×3 = 921600 bytes, got 10$/);
  });

  it('reports the time to render a 640×480 frame (measured, not asserted)', () => {
    const sim = new TabletopSim({ ...NO_END, seed: 1 });
    let t = performance.now();
    sim.render();
    const first = performance.now() - t;
    const median = (out?: Uint8Array): number => {
      const times: number[] = [];
      for (let k = 0; k < 200; k++) {
        sim.step(wiggle(k));
        t = performance.now();
        const img = sim.render({ out });
        times.push(performance.now() - t);
        assert.equal(img.data.length, 640 * 480 * 3);
      }
      return times.sort((a, b) => a - b)[100];
    };
    const fresh = median();
    const reused = median(new Uint8Array(640 * 480 * 3));
    console.log(
      `      640×480 render: median ${fresh.toFixed(2)} ms (new buffer), ${reused.toFixed(2)} ms (reused buffer); first frame of an episode (background) ${first.toFixed(1)} ms`,
    );
  });
});

describe('sim: dynamics', () => {
  it('integrates joint velocities over dt', () => {
    const sim = new TabletopSim({ seed: 5 });
    const [q1, q2] = sim.joints;
    sim.step(Float32Array.of(0.3, -0.2));
    const js = sim.jointState();
    assert.deepEqual(js.name, ['joint1', 'joint2']);
    assert.ok(Math.abs(js.position[0] - (q1 + Math.fround(0.3) * 0.05)) < 1e-12);
    assert.ok(Math.abs(js.position[1] - (q2 + Math.fround(-0.2) * 0.05)) < 1e-12);
    assert.deepEqual([...js.velocity], [Math.fround(0.3), Math.fround(-0.2)]);
  });

  it('clamps joint velocities to ±maxJointVelocity and joint angles to their limits', () => {
    const limits = [
      [-1.5, 2.0],
      [-2.5, 1.0],
    ] as const;
    const sim = new TabletopSim({ ...NO_END, seed: 9, jointLimits: limits, maxJointVelocity: 1.5 });
    for (const push of [10, -10]) {
      let hitLimit = false;
      for (let k = 0; k < 120; k++) {
        const before = sim.joints;
        sim.step([push, push]);
        const { position, velocity } = sim.jointState();
        for (let i = 0; i < 2; i++) {
          assert.ok(position[i] >= limits[i][0] && position[i] <= limits[i][1], `joint ${i + 1} at ${position[i]}`);
          assert.ok(Math.abs(velocity[i]) <= 1.5, `joint ${i + 1} velocity ${velocity[i]}`);
          assert.ok(Math.abs(position[i] - before[i]) <= 1.5 * 0.05 + 1e-12);
          if (position[i] !== limits[i][push > 0 ? 1 : 0]) assert.equal(velocity[i], Math.sign(push) * 1.5);
          else hitLimit = true;
        }
      }
      assert.ok(hitLimit);
      // Pinned at the limits, the joints do not move and report zero velocity.
      assert.deepEqual(sim.joints, push > 0 ? [limits[0][1], limits[1][1]] : [limits[0][0], limits[1][0]]);
      assert.deepEqual([...sim.jointState().velocity], [0, 0]);
    }
  });

  it('stepTo: the arm where an external controller put it, velocity the change over dt, success judged as step does', () => {
    const sim = new TabletopSim({ seed: 5 });
    const [q1, q2] = sim.joints;
    const r = sim.stepTo([q1 + 0.01, q2 - 0.02]);
    assert.equal(r.steps, 1);
    assert.deepEqual(sim.joints, [q1 + 0.01, q2 - 0.02]);
    const v = sim.jointState().velocity;
    assert.ok(Math.abs(v[0] - 0.2) < 1e-9 && Math.abs(v[1] + 0.4) < 1e-9, `velocity ${v[0]}, ${v[1]}`);
    // Put the arm on the target with the expert, as a controller executing it would, through stepTo alone.
    const ghost = new TabletopSim({ seed: 5 });
    sim.reset(5);
    let last = sim.status;
    while (!last.done) {
      ghost.step(ghost.expertAction());
      last = sim.stepTo(ghost.joints);
    }
    assert.equal(last.success, ghost.status.success);
    assert.equal(last.steps, ghost.status.steps);
    assert.throws(() => sim.stepTo([0, 0]), /^UserError: sim: the episode of seed 5 is over/);
    assert.throws(() => new TabletopSim().stepTo([0, NaN]), /^UserError: sim: stepTo needs 2 finite joint angles, got \[0, NaN\]$/);
  });

  it('rejects malformed actions and steps after the episode ended', () => {
    const sim = new TabletopSim({ stepBudget: 3 });
    assert.throws(() => sim.step(Float32Array.of(1)), /^UserError: sim: action must be 2 finite joint velocities, got \[1\]$/);
    assert.throws(() => sim.step([0, NaN]), /^UserError: sim: action must be 2 finite joint velocities, got \[0, NaN\]$/);
    assert.equal(sim.step([0, 0]).done, false);
    assert.equal(sim.step([0, 0]).done, false);
    assert.deepEqual({ ...sim.step([0, 0]), distance: 0, distancePx: 0 }, { done: true, success: false, distance: 0, distancePx: 0, steps: 3 });
    assert.throws(() => sim.step([0, 0]), /^UserError: sim: the episode of seed 0 is over \(step budget spent after 3 steps\); call reset\(seed\)$/);
    sim.reset(0);
    assert.equal(sim.step([0, 0]).steps, 1);
  });

  it('reports the end-effector distance to the target in metres and pixels', () => {
    const sim = new TabletopSim({ seed: 11 });
    const r = sim.step(wiggle(0));
    const [x, y] = sim.effector();
    const t = sim.scene.target;
    assert.ok(Math.abs(r.distance - Math.hypot(x - t.x, y - t.y)) < 1e-12);
    const [eu, ev] = expectedPixel(x, y);
    assert.ok(Math.abs(r.distancePx - Math.hypot(eu - t.u, ev - t.v)) < 1e-9);
  });
});

describe('sim: clock', () => {
  it('starts at the fixed epoch and advances by dt per step, stamping frames and joint states', () => {
    const sim = new TabletopSim(NO_END);
    assert.deepEqual(sim.time, { sec: 1_700_000_000, nanosec: 0 });
    assert.deepEqual(sim.time, SIM_EPOCH);
    assert.equal(sim.timeMs, 1_700_000_000_000);
    for (let k = 1; k <= 45; k++) {
      sim.step(wiggle(k));
      assert.equal(sim.timeMs, 1_700_000_000_000 + 50 * k);
      assert.deepEqual(sim.time, { sec: 1_700_000_000 + Math.floor(k / 20), nanosec: (k % 20) * 50_000_000 });
      assert.deepEqual(sim.render().header.stamp, sim.time);
      assert.deepEqual(sim.jointState().header.stamp, sim.time);
    }
    // A new episode does not move the clock back.
    sim.reset(1);
    assert.equal(sim.timeMs, 1_700_000_000_000 + 50 * 45);
  });

  it('follows a custom control period', () => {
    const sim = new TabletopSim({ ...NO_END, dt: 0.01 });
    for (let k = 0; k < 7; k++) sim.step([0, 0]);
    assert.deepEqual(sim.time, { sec: 1_700_000_000, nanosec: 70_000_000 });
  });
});
