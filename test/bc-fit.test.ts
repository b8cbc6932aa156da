// `s2-policy fit --head bc` on the folders users have: extract's output (a recording with int64 stamps, one episode,
// the cameras' token maps side by side) and `sim collect --head bc` (episodes, rows sharing frames); the written
// model and statistics load where the node loads a head (replay --policy, the runtime builder) and produce actions.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { readNpy, readNpyArray, writeNpy } from '../src/io/npy.js';
import { writePresetModel } from '../src/models/write.js';
import { PolicyHead } from '../src/policy/head.js';
import { demoConfig, writeDemoKit } from '../src/run/demo-kit.js';
import { readBcFolder } from '../src/run/fit-bc.js';
import { buildRuntime } from '../src/runtime/build.js';
import { simConfig } from '../src/sim/closed-loop.js';
import { McapRosReader } from '../src/bag/index.js';
import { cli, tempDir } from './helpers/util.js';

describe('fit --head bc on extract and sim collect output', function () {
  this.timeout(60000);

  it('extract (tokens of a ConvNet, two cameras) → fit --head bc → replay --policy publishes the head’s actions', async () => {
    const dir = tempDir('s2-bcfit-extract-');
    const kit = await writeDemoKit(join(dir, 'demo'), { durationS: 2, width: 96, height: 72 });
    writePresetModel('convnet-tiny', join(dir, 'convnet.onnx'));
    const raw = demoConfig() as { backbone: { model: string }; features: Record<string, unknown>; policy: Record<string, unknown> };
    raw.backbone.model = join(dir, 'convnet.onnx');
    raw.features = { pool: 'tokens', publish: false };
    raw.policy = { ...raw.policy, model: kit.policy, output: 'actions' };
    const config = join(dir, 'tokens.yaml');
    writeFileSync(config, stringify(raw));
    const data = join(dir, 'features');
    let r = cli(['extract', '--bag', kit.recording, '--config', config, '--out', data, '--actions-topic', '/teleop/joint_velocity']);
    assert.equal(r.status, 0, r.stderr);
    // extract's stamps are int64 nanoseconds; the bc head's map is both cameras' 24 × 8 × 8 token maps, stacked.
    assert.equal(readNpyArray(join(data, 'stamps_ns.npy')).data.constructor, BigInt64Array);
    const d = readBcFolder(data);
    assert.deepEqual([d.channels, d.height, d.width, d.stateDim, d.actionDim], [48, 8, 8, 2, 2]);
    const model = join(data, 'bc.onnx');
    r = cli(['fit', '--head', 'bc', '--recipe', 'end-to-end', '--data', data, '--out', model, '--epochs', '3']);
    assert.equal(r.status, 0, r.stderr);
    // The default chunk from the int64 stamps' period: the 30 fps camera's 33.3 ms, not the 50 ms of a missing period.
    assert.match(r.stdout, /^chunk 2: covers a frame period of 33\.3 ms plus 50\.0 ms/m);
    assert.match(r.stdout, /^bc head: \d+ rows \(\d+ frames, 1 episode\); epoch \d of 3 kept: training MSE [\d.]+, held-out [\d.]+ on \d+ rows/m);
    assert.match(r.stdout, /bc\.onnx and .*bc\.stats\.json: 3072 features \+ 2 state → 2×2 actions \(outputs actions, keypoints\)/);
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(data, 'bc.stats.json'), 'utf8')) as object).sort(), ['action', 'observation.state']);

    // The head on two extracted rows: finite, and different frames give different actions (the map is used).
    const head = await PolicyHead.load({ model, stats: join(data, 'bc.stats.json'), featuresInput: 'features', stateInput: 'state', output: 'actions' });
    try {
      const f = readNpy(join(data, 'features.npy'));
      const per = f.dims[1];
      const s = Float32Array.of(0.1, -0.1);
      const a0 = await head.act(f.data.subarray(0, per), s);
      const a1 = await head.act(f.data.subarray((f.dims[0] - 1) * per, f.dims[0] * per), s);
      assert.equal(a0.length, 4);
      assert.ok(a0.every(Number.isFinite));
      assert.notDeepEqual(Array.from(a0), Array.from(a1));
    } finally {
      await head.release();
    }

    const out = join(dir, 'bc.mcap');
    r = cli(['replay', '--bag', kit.recording, '--config', config, '--policy', model, '--out', out, '--with-inputs']);
    assert.equal(r.status, 0, r.stderr);
    const m = /^actions {3}(\d+) on \/s2_policy\/joint_trajectory \((\d+) safe actions while stale.* limits respected$/m.exec(r.stdout);
    assert.ok(m && Number(m[1]) - Number(m[2]) > 10, r.stdout);
    // Velocities the policy chose, as each point's offset from the joint state last received: not all zero (the safe
    // action) and not one value.
    const reader = await McapRosReader.open(out);
    const velocities = new Set<string>();
    let measured: number[] = [];
    for await (const msg of reader.messages({ topics: ['/joint_states', '/s2_policy/joint_trajectory'] })) {
      if (msg.topic === '/joint_states') measured = Array.from((msg.message as { position: ArrayLike<number> }).position);
      else {
        const p = (msg.message as { points: { positions: number[] }[] }).points[0];
        const v = p.positions.map((x, i) => (x - measured[i]).toFixed(6)).join(',');
        if (v !== '0.000000,0.000000' && v !== '-0.000000,-0.000000') velocities.add(v);
      }
    }
    assert.ok(velocities.size > 5, `${velocities.size} distinct commands: ${[...velocities].slice(0, 5).join(' ')}`);
  });

  it('sim collect --head bc → fit --head bc → the runtime builder loads the head with the simulation’s config', async () => {
    const dir = join(tempDir('s2-bcfit-sim-'), 'demos');
    // Half the demo's S² sizes, to keep the test short: a 64-channel 30×40 map.
    const sizes: [number, number][] = [
      [120, 160],
      [240, 320],
    ];
    let r = cli(['sim', 'collect', '--head', 'bc', '--out', dir, '--episodes', '1', '--frame-every', '12', '--img-sizes', '120x160,240x320']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^wrote (\d+) steps and (\d+) S² maps \(76800 features each\) of 1 expert episodes to /m);
    const d = readBcFolder(dir);
    assert.equal(d.frames, Math.ceil(d.rows / 12));
    // Each step sees the latest map: step k the map of step 12·⌊k/12⌋.
    assert.deepEqual(
      Array.from(d.frameOf!),
      Array.from({ length: d.rows }, (_, k) => Math.floor(k / 12)),
    );
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(index.frame_every, 12);
    assert.equal(index.frame_period_ms, 50);
    r = cli([
      'fit',
      '--head',
      'bc',
      '--recipe',
      'end-to-end',
      '--data',
      dir,
      '--out',
      join(dir, 'policy.onnx'),
      '--chunk',
      '2',
      '--epochs',
      '2',
      '--seed',
      '3',
    ]);
    assert.equal(r.status, 0, r.stderr);
    // The default recipe self-calibrates the arm from episodes of 3 frames or more: one short episode is not enough.
    const h = cli(['fit', '--head', 'bc', '--data', dir, '--out', join(dir, 'hindsight.onnx')]);
    assert.equal(h.status, 2, h.stderr);
    assert.match(h.stderr, /^s2-policy: bc head: self-calibrating the arm needs at least 15 frames in episodes of 3 or more frames .*, found \d+; .*\n$/);
    // One recording: its last tenth of rows is held out for early stopping.
    assert.match(r.stdout, /^bc head: \d+ rows \(\d+ frames, 1 episode\); epoch \d of 2 kept: training MSE [\d.]+, held-out [\d.]+ on \d+ rows/m);
    const runtime = await buildRuntime(simConfig(dir, { sizes, pool: 'tokens' }), 'test', { features: true, policy: true, by: 'the test' });
    try {
      assert.ok(runtime.head);
      assert.deepEqual(runtime.head.shape, { featureDim: 76800, stateDim: 2, chunk: 2, actionDim: 2 });
      const per = 76800;
      const a = await runtime.head.act(d.features.subarray(0, per), d.state.subarray(0, 2));
      assert.ok(a.length === 4 && a.every(Number.isFinite), String(a));
    } finally {
      await runtime.release();
    }
  });

  it('names the file at fault when the folder is not a bc head’s', () => {
    const dir = tempDir('s2-bcfit-bad-');
    writeNpy(join(dir, 'features.npy'), { dims: [4, 8], data: new Float32Array(32) });
    writeNpy(join(dir, 'state.npy'), { dims: [4, 2], data: new Float32Array(8) });
    writeNpy(join(dir, 'actions.npy'), { dims: [4, 2], data: new Float32Array(8) });
    // What the default 'sim collect' writes: pooled grid:16, not a map.
    writeFileSync(join(dir, 'index.json'), JSON.stringify({ pool: 'grid:16' }));
    const r = cli(['fit', '--head', 'bc', '--data', dir, '--out', join(dir, 'p.onnx')]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^s2-policy: \S+index\.json: the bc head needs features pooled as tokens .*'grid:16'\n$/);
    const q = cli(['fit', '--head', 'linear', '--recipe', 'hindsight', '--data', dir, '--out', join(dir, 'p.onnx')]);
    assert.equal(q.status, 2, q.stderr);
    assert.equal(q.stderr, 's2-policy: fit: --recipe is for --head bc, not --head linear\n');
    const b = cli(['fit', '--head', 'bc', '--recipe', 'labels', '--data', dir, '--out', join(dir, 'p.onnx')]);
    assert.equal(b.stderr, "s2-policy: fit: --recipe must be hindsight or end-to-end, got 'labels'\n");
  });
});
