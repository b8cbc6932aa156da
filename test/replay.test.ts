// End to end through MCAP: replay and extract on a two-camera recording (raw + JPEG, joint states) whose compressed
// camera stops part-way, with the project's models; and the pipeline's handling of bad frames.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { McapRosReader } from '../src/bag/reader.js';
import { replay } from '../src/run/replay.js';
import { writeDemoKit, type DemoKit } from '../src/run/demo-kit.js';
import { loadConfig, parseConfig } from '../src/config/config.js';
import { readNpy } from '../src/io/npy.js';
import { decodeNpyInt64 } from './helpers/npy-int64.js';
import type { DiagnosticArrayMsg, JointTrajectoryMsg, S2FeaturesMsg } from '../src/msgs/types.js';
import { runOnClock, ManualClock, type TimedInput } from '../src/pipeline/clock.js';
import { FeatureExtractor } from '../src/pipeline/extractor.js';
import { PolicyPipeline } from '../src/pipeline/pipeline.js';
import { PolicyHead } from '../src/policy/head.js';
import { jointPositions } from '../src/bag/synthetic.js';
import { cli, tempDir } from './helpers/util.js';

describe('replay and extract (MCAP end to end)', function () {
  this.timeout(120000);
  let kit: DemoKit;
  const duration = 3;

  before(async () => {
    kit = await writeDemoKit(tempDir('s2-demo-'), { durationS: duration, width: 96, height: 72 });
  });

  it('replays a recording into actions within limits, S2Features and diagnostics, with the watchdog visible', async () => {
    const out = join(kit.dir, 'out.mcap');
    const config = loadConfig(kit.config);
    const s = await replay({ bag: kit.recording, config, out, rate: 0, withInputs: true });
    assert.equal(s.actionLimitsRespected, true);
    const r = await McapRosReader.open(out);
    const topics = new Map((await r.topics()).map((t) => [t.topic, t]));
    assert.equal(topics.get('/s2_policy/joint_trajectory')?.type, 'trajectory_msgs/msg/JointTrajectory');
    assert.equal(topics.get('/s2_policy/features')?.type, 's2_policy/msg/S2Features');
    assert.equal(topics.get('/diagnostics')?.type, 'diagnostic_msgs/msg/DiagnosticArray');
    const start = (r.timeRange as { start: bigint }).start;
    const actions: { t: number; v: number[] }[] = [];
    const diags: { t: number; level: number }[] = [];
    let features = 0;
    // The demo commands joint velocities through a JointTrajectory: each point is the joint state the pipeline last
    // received (the newest one recorded before the tick) advanced by the velocity over the point's time_from_start
    // plus that state's age at the tick (at most one period), so the commanded velocity is
    // (position − that joint state) / (time_from_start + age).
    let measured: number[] | undefined;
    let measuredAt = 0;
    for await (const m of r.messages()) {
      const t = Number(m.logTime - start) / 1e9;
      if (m.topic === '/joint_states') {
        measured = Array.from((m.message as { position: ArrayLike<number> }).position);
        measuredAt = t;
      } else if (m.topic === '/s2_policy/joint_trajectory') {
        const jt = m.message as JointTrajectoryMsg;
        assert.deepEqual(jt.joint_names, ['joint1', 'joint2']);
        const p = jt.points[0];
        assert.deepEqual([jt.header.stamp.sec, jt.header.stamp.nanosec], [0, 0], 'stamped zero: start on receipt');
        assert.equal(p.velocities.length, 0, 'no velocities: a default JointTrajectoryController refuses a non-zero end velocity');
        const horizon = p.time_from_start.sec + p.time_from_start.nanosec / 1e9;
        const stop = p.positions.every((x, i) => Math.abs(x - (measured as number[])[i]) < 1e-6);
        assert.equal(horizon, stop ? 0.05 : 0.1, 'time_from_start: two control periods, one for a stop');
        assert.ok(measured, `a joint state before the action at ${t} s`);
        const q = measured;
        // The pipeline keeps joint states in float32: 1e-7 rad, 1e-6 rad/s after dividing by 0.1 s.
        const span = horizon + Math.min(Math.max(t - measuredAt, 0), 0.05);
        actions.push({ t, v: Array.from(p.positions, (x, i) => (Math.abs(x - q[i]) < 1e-6 ? 0 : (x - q[i]) / span)) });
      } else if (m.topic === '/s2_policy/features') {
        const f = m.message as S2FeaturesMsg;
        assert.deepEqual(f.camera_names, ['wrist', 'front']);
        assert.equal(f.header.frame_id, 'wrist_optical_frame', "the first camera's frame");
        assert.deepEqual(Array.from(f.shape), [2, 48]);
        assert.equal(f.data.length, 96);
        assert.deepEqual(Array.from(f.scale_heights), [32, 64]);
        features++;
      } else if (m.topic === '/diagnostics') {
        diags.push({ t, level: (m.message as DiagnosticArrayMsg).status[0].level });
      }
    }
    await r.close();
    // 20 Hz control over the recording plus the watchdog tail.
    assert.ok(actions.length >= duration * 20 && actions.length <= duration * 20 + 12, `${actions.length} actions`);
    for (const a of actions) for (const v of a.v) assert.ok(v >= -0.5 - 1e-5 && v <= 0.5 + 1e-5, `action ${v} outside limits`);
    for (let i = 1; i < actions.length; i++) {
      const moving = actions[i].v.some((v) => v !== 0) && actions[i - 1].v.some((v) => v !== 0);
      if (moving) for (let d = 0; d < 2; d++) assert.ok(Math.abs(actions[i].v[d] - actions[i - 1].v[d]) <= 0.05 + 1e-5, `maxDelta at ${actions[i].t}`);
    }
    const stop = duration * 0.6;
    const before = actions.filter((a) => a.t > 0.5 && a.t < stop - 0.1);
    const after = actions.filter((a) => a.t > stop + 0.3 + 0.05 + 0.1);
    assert.ok(
      before.some((a) => a.v.some((v) => Math.abs(v) > 1e-4)),
      'the policy moves while both cameras stream',
    );
    assert.ok(after.length > 5 && after.every((a) => a.v.every((v) => v === 0)), 'zero velocity once the front camera has stalled');
    assert.ok(features > 40, `${features} feature messages`);
    assert.ok(diags.some((d) => d.level === 0) && diags.some((d) => d.t > stop + 0.5 && d.level === 1), 'diagnostics go from OK to WARN (stale)');
    assert.equal(
      s.metrics.counts.framesIn,
      s.metrics.counts.framesProcessed +
        Object.entries(s.metrics.dropped)
          .filter(([k]) => k.startsWith('frame:'))
          .reduce((n, [, v]) => n + v, 0),
    );
  });

  it('the replay command writes the inputs too with --with-inputs and refuses to overwrite', () => {
    const out = join(kit.dir, 'with-inputs.mcap');
    const r = cli(['replay', '--bag', kit.recording, '--config', kit.config, '--out', out, '--with-inputs']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /limits respected/);
    const again = cli(['replay', '--bag', kit.recording, '--config', kit.config, '--out', out]);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /^s2-policy: replay: --out \S*with-inputs\.mcap exists; pass --force to replace it\n$/);
    return McapRosReader.open(out).then(async (rd) => {
      const names = (await rd.topics()).map((t) => t.topic);
      await rd.close();
      for (const t of ['/wrist/image_raw', '/front/image_raw/compressed', '/joint_states']) assert.ok(names.includes(t), `${t} in ${names.join(', ')}`);
    });
  });

  it('extracts features with joint states and recorded actions aligned to each frame group', () => {
    const out = join(kit.dir, 'features');
    const r = cli(['extract', '--bag', kit.recording, '--config', kit.config, '--out', out, '--actions-topic', '/teleop/joint_velocity']);
    assert.equal(r.status, 0, r.stderr);
    const f = readNpy(join(out, 'features.npy'));
    const s = readNpy(join(out, 'state.npy'));
    const a = readNpy(join(out, 'actions.npy'));
    const n = f.dims[0];
    assert.deepEqual(f.dims, [n, 96]);
    assert.deepEqual(s.dims, [n, 2]);
    assert.deepEqual(a.dims, [n, 2]);
    // Groups exist only while both cameras stream (the front camera stops at 60%).
    const frontFrames = Math.round(0.6 * duration * 30);
    assert.ok(n >= frontFrames - 3 && n <= frontFrames, `${n} groups`);
    const stamps = decodeNpyInt64(readFileSync(join(out, 'stamps_ns.npy')));
    const t0 = stamps[0];
    // The joint state is the latest at or before the group stamp (joint states at 50 Hz, frames at 30 Hz).
    for (let i = 0; i < n; i += 7) {
      const t = Number(stamps[i] - t0) / 1e9;
      const q = jointPositions(Math.floor(t * 50 + 1e-6) / 50, 2);
      assert.ok(Math.abs(s.data[i * 2] - q[0]) < 1e-5 && Math.abs(s.data[i * 2 + 1] - q[1]) < 1e-5, `state at ${t}`);
    }
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { frames: number; s2: { scale_sizes: number[][] } };
    assert.equal(index.frames, n);
    assert.deepEqual(index.s2.scale_sizes, [
      [32, 32],
      [64, 64],
    ]);
    const again = cli(['extract', '--bag', kit.recording, '--config', kit.config, '--out', out]);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /^s2-policy: extract: --out \S+ exists and is not empty; pass --force to replace it\n$/);
  });

  it('names a missing topic, a bad config key and a policy that does not fit', () => {
    const cfg = readFileSync(kit.config, 'utf8');
    const badTopic = join(kit.dir, 'bad-topic.yaml');
    writeFileSync(badTopic, cfg.replace('/wrist/image_raw', '/nope/image_raw'));
    let r = cli(['replay', '--bag', kit.recording, '--config', badTopic, '--out', join(kit.dir, 'x.mcap')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /demo\.mcap: has no topic \/nope\/image_raw \(cameras\.0\.topic\)/);
    const badKey = join(kit.dir, 'bad-key.yaml');
    writeFileSync(badKey, cfg.replace('rate_hz: 20', 'rate_hz: 20\n  rate: 5'));
    r = cli(['replay', '--bag', kit.recording, '--config', badKey, '--out', join(kit.dir, 'x.mcap')]);
    assert.match(r.stderr, /bad-key\.yaml: control: unknown key rate/);
    const badPool = join(kit.dir, 'bad-pool.yaml');
    writeFileSync(badPool, cfg.replace('pool: cls', 'pool: grid:2'));
    r = cli(['replay', '--bag', kit.recording, '--config', badPool, '--out', join(kit.dir, 'x.mcap')]);
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /bad-pool\.yaml: policy\.model: \S*policy\.onnx input 'features' takes 96 features, the 2 camera\(s\) give 2 × 192 = 384 \(features\.pool grid:2\)/,
    );
    assert.throws(() => parseConfig({}, 'inline'), /inline: backbone: /);
  });

  it('counts a bad camera message and keeps going', async () => {
    const config = loadConfig(kit.config);
    config.cameras = [config.cameras[0]];
    config.joint_states = undefined;
    config.policy!.state_input = undefined;
    const extractor = await FeatureExtractor.create(config);
    const head = await PolicyHead.load({ model: join(kit.dir, 'policy.onnx'), featuresInput: 'features', stateInput: 'state' }).catch(() => undefined);
    assert.ok(head, 'policy loads');
    // This policy needs a state input; use it only to check ingestion: the pipeline skips the policy without state.
    config.policy!.state_input = 'state';
    config.joint_states = { topic: '/joint_states', names: ['joint1', 'joint2'], max_age_ms: 100 };
    const pipeline = new PolicyPipeline(config, extractor, head, new ManualClock(0));
    const good = (ms: number) => ({
      header: { stamp: { sec: 0, nanosec: ms * 1e6 }, frame_id: '' },
      height: 8,
      width: 8,
      encoding: 'rgb8',
      is_bigendian: 0,
      step: 24,
      data: new Uint8Array(8 * 24).fill(100),
    });
    const inputs: TimedInput[] = [
      { timeMs: 0, frame: { camera: 'wrist', kind: 'raw', msg: good(0) } },
      { timeMs: 33, frame: { camera: 'wrist', kind: 'raw', msg: { ...good(33), step: 5 } } },
      { timeMs: 66, frame: { camera: 'wrist', kind: 'raw', msg: { ...good(66), encoding: 'weird9' } } },
      { timeMs: 100, frame: { camera: 'wrist', kind: 'compressed', msg: { header: good(100).header, format: 'jpeg', data: new Uint8Array([1, 2, 3]) } } },
      { timeMs: 133, frame: { camera: 'wrist', kind: 'raw', msg: good(133) } },
    ];
    await runOnClock(pipeline, inputs, { rate: 0, tailMs: 100 }, {});
    const m = pipeline.metrics;
    assert.equal(m.counts.framesIn, 5);
    assert.equal(m.counts.framesProcessed, 2);
    assert.equal(m.dropped['frame:rejected:bad_step'], 1);
    assert.equal(m.dropped['frame:rejected:unknown_encoding'], 1);
    assert.equal(m.dropped['frame:rejected:undecodable'], 1);
    await extractor.release();
    await head.release();
  });
});
