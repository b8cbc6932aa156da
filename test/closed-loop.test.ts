// The simulation in a closed loop with the real pipeline: reproducible per seed, the default main job end to end,
// and the fit command on collected demonstrations.
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { FeatureExtractor } from '../src/pipeline/extractor.js';
import { PolicyHead } from '../src/policy/head.js';
import { ensureDemoModels, runClosedLoop, wilson } from '../src/sim/closed-loop.js';
import { cli, tempDir } from './helpers/util.js';
import { LEGEND_WIDTH } from '../src/sim/plot.js';

describe('closed loop with the simulation', function () {
  this.timeout(180000);

  it('gives identical episodes for identical seeds, and moves the arm', async () => {
    const models = await ensureDemoModels(tempDir('s2-cl-'), {
      sizes: [
        [48, 64],
        [96, 128],
      ],
      episodes: 3,
      perceptionEpisodes: 3,
      seed: 500,
      epochs: 3,
    });
    const extractor = await FeatureExtractor.create(models.config);
    const head = await PolicyHead.load({
      model: models.config.policy!.model,
      stats: models.config.policy!.stats,
      featuresInput: 'features',
      stateInput: 'state',
      output: 'actions',
    });
    const a = await runClosedLoop(models.config, extractor, head, 2, 7);
    const b = await runClosedLoop(models.config, extractor, head, 2, 7);
    await extractor.release();
    await head.release();
    assert.deepEqual(a, b);
    assert.deepEqual(
      a.map((r) => r.seed),
      [7, 8],
    );
    for (const r of a) {
      assert.equal(r.points.length, r.steps + 1);
      const [x0, y0] = r.points[0];
      const moved = r.points.some(([x, y]) => Math.hypot(x - x0, y - y0) > 5);
      assert.ok(moved, `episode ${r.seed}: the policy's actions move the arm`);
    }
  });

  it('npm start with the default demo models: the policy reaches the target of seed 0, and the PNG of its path', async function () {
    // The whole first run of `npm start` (pretraining, demonstrations, fitting), then one episode on a fixed seed.
    this.timeout(600000);
    const out = tempDir('s2-start-');
    const r = cli(['start', '--transport', 'sim', '--episodes', '1', '--seed', '0', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^transport: sim/);
    assert.match(r.stdout, /episode {2}seed {3}result/);
    assert.match(r.stdout, /\n {6}1 {5}0 {3}success /);
    assert.match(r.stdout, /success 1\/1 \(100%\), mean final distance 0\.0(0\d|10) m/);
    const png = join(out, 'episodes.png');
    assert.ok(existsSync(png));
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 640 + LEGEND_WIDTH, 480]);
    // sim models over the same cached models: refused without --force, then the ROS 2 parameter file naming the
    // detector head the demo models have.
    const models = join(out, 'models');
    const refused = cli(['sim', 'models', '--out', models]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /^s2-policy: sim models: --out \S+ exists and is not empty; pass --force to replace it\n$/);
    const sm = cli(['sim', 'models', '--out', models, '--force']);
    assert.equal(sm.status, 0, sm.stderr);
    const params = readFileSync(join(models, 'sim_params.yaml'), 'utf8');
    assert.match(params.split('\n')[0], /^# s2_policy parameters for launch\/sim\.launch\.py \(demo models: .*, detector head\)$/);
    assert.doesNotMatch(params, /keypoint head/);
    assert.match(params, /action_topic: \/s2_policy\/actions/);
  });

  it('collects demonstrations and fits a policy from them', () => {
    const dir = tempDir('s2-collect-');
    let r = cli(['sim', 'collect', '--out', dir, '--episodes', '2', '--seed', '3', '--img-sizes', '48x64']);
    assert.equal(r.status, 0, r.stderr);
    // stderr is a pipe here: progress as separate lines, never carriage returns.
    assert.ok(!r.stderr.includes('\r'), JSON.stringify(r.stderr));
    assert.match(r.stderr, /^sim collect: expert episodes 2\/2 episodes 100% /m);
    r = cli(['fit', '--data', dir, '--out', join(dir, 'policy.onnx'), '--chunk', '2']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /λ = [0-9.e+-]+ \(/);
    assert.match(r.stdout, /features \+ 2 state → 2×2 actions/);
    assert.ok(existsSync(join(dir, 'policy.stats.json')));
  });

  it('collects the data of the detector head and fits it with s2-policy fit --head detector', async () => {
    const dir = tempDir('s2-collect-det-');
    let r = cli(['sim', 'collect', '--out', dir, '--head', 'detector', '--episodes', '4', '--frames', '3', '--seed', '3', '--img-sizes', '48x64,96x128']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /wrote 9 frames \(\d+ features each, keypoint labels\) and \d+ controller rows of 4 expert episodes/);
    assert.ok(!r.stderr.includes('\r'), JSON.stringify(r.stderr));
    assert.match(r.stderr, /^sim collect: episodes with frames 0\/3 episodes 0% /m);
    assert.match(r.stderr, /^sim collect: episodes with frames 3\/3 episodes 100% /m);
    assert.match(r.stderr, /^sim collect: controller rows: every state of 4 expert episodes/m);
    const model = join(dir, 'policy.onnx');
    r = cli(['fit', '--data', dir, '--out', model, '--head', 'detector', '--epochs', '2']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^detector fitted in [\d.]+ s on 9 frames: held-out keypoint error median [\d.]+ cells, \d+% within one cell, temperature \d+$/m);
    assert.match(r.stdout, /features \+ 2 state → 2×2 actions \(outputs actions, keypoint\)/);
    const head = await PolicyHead.load({ model, stats: join(dir, 'policy.stats.json'), featuresInput: 'features', stateInput: 'state', output: 'actions' });
    try {
      assert.equal(head.shape.chunk, 2);
      assert.equal(head.shape.actionDim, 2);
      const a = await head.act(new Float32Array(head.shape.featureDim), Float32Array.of(0.1, -0.2));
      assert.ok(a.every(Number.isFinite));
    } finally {
      await head.release();
    }
    r = cli(['fit', '--data', dir, '--out', model, '--head', 'detector']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^s2-policy: fit: --out \S+policy\.onnx exists; pass --force to replace it\n$/);
  });

  it('computes a Wilson 95% interval', () => {
    const [lo, hi] = wilson(8, 10);
    assert.ok(Math.abs(lo - 0.4902) < 1e-3 && Math.abs(hi - 0.9433) < 1e-3, `${lo} ${hi}`);
    assert.deepEqual(wilson(0, 0), [0, 1]);
  });
});
