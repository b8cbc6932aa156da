// src/sim: the scripted expert (success rate over seeded episodes, velocity limits, a trajectory that replays to the
// same outcome) and the episode path plot (a PNG of the right size with success and failure paths in their colours).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import sharp from 'sharp';
import { TabletopSim, runExpertEpisode, renderEpisodesPng, type ExpertEpisode } from '../src/sim/index.js';
import { LEGEND_WIDTH, PATH_COLOURS } from '../src/sim/plot.js';
import { UserError } from '../src/errors.js';
import { tempDir } from './helpers/util.js';

const EPISODES = 100;

function successRate(sim: TabletopSim, seeds: number[]): { rate: number; meanSteps: number; episodes: ExpertEpisode[] } {
  const episodes = seeds.map((seed) => runExpertEpisode(sim, seed));
  const ok = episodes.filter((e) => e.success);
  return { rate: ok.length / seeds.length, meanSteps: ok.reduce((s, e) => s + e.steps, 0) / Math.max(1, ok.length), episodes };
}

describe('sim: scripted expert', () => {
  it(`succeeds on ≥ 95% of ${EPISODES} seeded episodes (seeds 0–${EPISODES - 1}) within the velocity limit`, () => {
    const sim = new TabletopSim();
    const seeds = Array.from({ length: EPISODES }, (_, i) => i);
    const { rate, meanSteps, episodes } = successRate(sim, seeds);
    console.log(`      expert: ${(rate * 100).toFixed(0)}% of ${EPISODES} episodes, ${meanSteps.toFixed(1)} steps on average (budget 200)`);
    assert.ok(rate >= 0.95, `success rate ${rate}`);
    for (const e of episodes) {
      if (e.success) assert.ok(e.finalDistance <= 0.01, `seed ${e.seed}: success at ${e.finalDistance} m`);
      assert.ok(e.steps <= 200);
      for (const s of e.trajectory) assert.ok(Math.abs(s.action[0]) <= 1 && Math.abs(s.action[1]) <= 1, `seed ${e.seed}: action ${s.action.join(', ')}`);
    }
    // The episodes need the budget to matter: the start pose is never next to the target.
    assert.ok(
      episodes.every((e) => e.steps >= 5),
      'an episode succeeded within 4 steps',
    );
  });

  it('succeeds on ≥ 95% of 50 episodes with other links, limits, a slower arm and a smaller target', () => {
    const sim = new TabletopSim({
      linkLengths: [0.4, 0.25],
      jointLimits: [
        [-2.5, 2.5],
        [-2.6, 2.6],
      ],
      maxJointVelocity: 0.6,
      targetSizePx: 4,
      successRadius: 0.005,
    });
    const { rate } = successRate(
      sim,
      Array.from({ length: 50 }, (_, i) => 1000 + i),
    );
    assert.ok(rate >= 0.95, `success rate ${rate}`);
  });

  it('fails when it does not move: success needs the end effector at the target', () => {
    const sim = new TabletopSim({ stepBudget: 50 });
    let status = sim.status;
    while (!status.done) status = sim.step([0, 0]);
    assert.deepEqual([status.success, status.steps], [false, 50]);
    assert.ok(status.distance >= 0.15);
  });

  it('records a trajectory that replays to the same end on a fresh simulation', () => {
    const sim = new TabletopSim();
    const e = runExpertEpisode(sim, 17);
    assert.equal(e.trajectory.length, e.steps);
    assert.equal(e.points.length, e.steps + 1);
    assert.deepEqual([e.target[0], e.target[1]], [sim.scene.target.u, sim.scene.target.v]);
    const replay = new TabletopSim({ seed: 17 });
    e.trajectory.forEach((s, i) => {
      assert.deepEqual(replay.joints, s.position, `step ${i}`);
      assert.deepEqual(replay.armPixels().effector, e.points[i]);
      assert.deepEqual(replay.armPixels().effector, s.effectorPx);
      const r = replay.step(s.action);
      assert.deepEqual([r.distance, r.success, r.done], [s.distance, s.success, s.done]);
    });
    assert.deepEqual(replay.armPixels().effector, e.points[e.steps]);
    assert.equal(replay.status.success, e.success);
  });
});

describe('sim: episode path plot', () => {
  it('writes a PNG of the frame size plus a legend, each path in its own colour', async () => {
    const sim = new TabletopSim();
    const paths: { points: [number, number][]; success: boolean; target?: [number, number] }[] = [];
    for (let seed = 0; seed < 19; seed++) paths.push(runExpertEpisode(sim, seed));
    // A failing episode: a constant sweep of joint 1 for 20 steps.
    const fail = new TabletopSim({ seed: 0, stepBudget: 20 });
    const failPoints: [number, number][] = [fail.armPixels().effector];
    while (!fail.status.done) {
      fail.step([0.8, 0]);
      failPoints.push(fail.armPixels().effector);
    }
    assert.equal(fail.status.success, false);
    paths.push({ points: failPoints, success: false });
    sim.reset(0);
    const file = join(tempDir('s2-sim-'), 'paths.png');
    assert.equal(await renderEpisodesPng(file, sim, paths), file);

    const meta = await sharp(file).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', 640 + LEGEND_WIDTH, 480, 3]);
    const W = 640 + LEGEND_WIDTH;
    const { data } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    const at = ([u, v]: readonly number[]): number[] => {
      const o = (Math.floor(v) * W + Math.floor(u)) * 3;
      return [data[o], data[o + 1], data[o + 2]];
    };
    // Each path in its own colour: midpoints of segments lie on its polyline; the failure path is drawn last.
    const mid = (p: [number, number][], i: number): number[] => [(p[i][0] + p[i + 1][0]) / 2, (p[i][1] + p[i + 1][1]) / 2];
    assert.deepEqual(at(mid(failPoints, 10)), [...PATH_COLOURS[19 % PATH_COLOURS.length]]);
    const hits = paths.slice(0, 12).filter((p, k) => at(mid(p.points, Math.floor(p.points.length / 3))).join() === PATH_COLOURS[k].join()).length;
    assert.ok(hits >= 9, `${hits} of 12 paths in their own colour at a third of their length`);
    // Away from the paths, the scene is washed out (0.45 × colour + 135), not left as the raw frame.
    const raw = sim.render({ arm: false }).data as Uint8Array;
    assert.deepEqual(
      at([2, 2]),
      [0, 1, 2].map((c) => Math.round(raw[(2 * 640 + 2) * 3 + c] * 0.45 + 135)),
    );
    // The legend panel: white, with a swatch of the first path's colour and dark text.
    assert.deepEqual(at([640 + 5, 240]), [255, 255, 255]);
    assert.deepEqual(at([640 + 20, 44 - 8]), [...PATH_COLOURS[0]]);
    let dark = 0;
    for (let v = 0; v < 480; v++) for (let u = 640 + 40; u < W; u++) if (at([u, v]).every((x) => x < 90)) dark++;
    assert.ok(dark > 200, `legend text drawn (${dark} dark pixels)`);
  });

  it('follows the simulation frame size and rejects bad points and unwritable files in one line', async () => {
    const small = new TabletopSim({ width: 320, height: 240, targetSizePx: 4 });
    const e = runExpertEpisode(small, 3);
    const dir = tempDir('s2-sim-');
    const meta = await sharp(await renderEpisodesPng(join(dir, 'small.png'), small, [e])).metadata();
    assert.deepEqual([meta.width, meta.height], [320 + LEGEND_WIDTH, 240]);
    await assert.rejects(
      renderEpisodesPng(join(dir, 'bad.png'), small, [
        e,
        {
          points: [
            [1, 2],
            [NaN, 3],
          ],
          success: true,
        },
      ]),
      (err: Error) => err instanceof UserError && err.message === 'renderEpisodesPng: paths[1].points[1] must be a finite [u, v], got [NaN, 3]',
    );
    const missing = join(dir, 'no-such-folder', 'p.png');
    await assert.rejects(
      renderEpisodesPng(missing, small, [e]),
      (err: Error) => err instanceof UserError && err.message === `${missing}: cannot write: folder ${join(dir, 'no-such-folder')} does not exist`,
    );
  });
});
