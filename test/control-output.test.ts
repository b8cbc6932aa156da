// What the node sends to a ros2_control controller, per action_interface × command_type: the messages a controller
// with default parameters accepts (see the README's ros2_control section; the live suite test/ros2/control.test.ts
// runs them against the real controllers), the start-up refusal of a set-up that cannot work, and the stop sent when
// actions are disabled.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Subject } from 'rxjs';
import { parse as parseYaml } from 'yaml';
import { parseConfig, type Config } from '../src/config/config.js';
import { UserError } from '../src/errors.js';
import { buildLinearPolicy } from '../src/models/policy.js';
import type { JointStateMsg } from '../src/msgs/types.js';
import { ManualClock } from '../src/pipeline/clock.js';
import type { ActionCommand } from '../src/pipeline/controller.js';
import { actionMessage } from '../src/pipeline/messages.js';
import { PolicyPipeline, type FeatureResult } from '../src/pipeline/pipeline.js';
import { PolicyHead } from '../src/policy/head.js';
import { ROOT, tempDir } from './helpers/util.js';

type Pair = { action_interface: 'float64_multi_array' | 'joint_trajectory'; command_type: 'velocity' | 'position' };

function config(pair: Pair, extra: Record<string, unknown> = {}): Config {
  return parseConfig(
    {
      backbone: { model: '/m/b.onnx' },
      s2: { scales: [1] },
      cameras: [{ name: 'c', topic: '/c' }],
      joint_states: { names: ['j0', 'j2', 'j1'], max_age_ms: 100 },
      policy: { model: '/m/p.onnx' },
      control: { rate_hz: 20, ...pair, joint_names: ['j1', 'j2'] },
      ...extra,
    },
    'cfg.yaml',
  );
}

describe('control output for ros2_control controllers', () => {
  let head: PolicyHead;
  const V = [0.3, -0.2];

  before(async () => {
    // A head that always commands V (velocity) or V as a position target: weights zero, bias V.
    const file = join(tempDir('s2-ctl-'), 'const.onnx');
    writeFileSync(
      file,
      buildLinearPolicy({ featureDim: 2, stateDim: 0, chunk: 1, actionDim: 2, weight: new Float32Array(4), bias: Float32Array.from(V) }).serialize(),
    );
    head = await PolicyHead.load({ model: file, featuresInput: 'features' });
  });

  after(() => head.release());

  it('refuses joint_trajectory + velocity at start-up without a measured state for every commanded joint, in one line', () => {
    const pair: Pair = { action_interface: 'joint_trajectory', command_type: 'velocity' };
    assert.throws(
      () => config(pair, { joint_states: undefined }),
      (e: Error) =>
        e instanceof UserError &&
        e.message ===
          'cfg.yaml: joint_states: required: control.action_interface joint_trajectory with command_type velocity sends positions integrated from the measured joint state',
    );
    assert.throws(
      () => config(pair, { joint_states: { names: ['j1', 'j3'] } }),
      /^UserError: cfg\.yaml: joint_states\.names: must list every control\.joint_names joint \(missing j2\): control\.action_interface joint_trajectory with command_type velocity/,
    );
    // The other pairs need no measured state.
    for (const p of [
      { action_interface: 'joint_trajectory', command_type: 'position' },
      { action_interface: 'float64_multi_array', command_type: 'velocity' },
      { action_interface: 'float64_multi_array', command_type: 'position' },
    ] as Pair[])
      assert.doesNotThrow(() => config(p, { joint_states: undefined }));
  });

  /** Runs the pipeline on a virtual clock with fresh features every 50 ms and joint states as `state(t)` gives them. */
  async function run(c: Config, state: (t: number) => number[] | undefined, ms: number, disableAt?: number) {
    const clock = new ManualClock(0);
    const p = new PolicyPipeline(c, undefined, head, clock);
    const features = new Subject<FeatureResult>();
    const joints = new Subject<JointStateMsg>();
    const sent: { t: number; cmd: ActionCommand; msg: ReturnType<typeof actionMessage> }[] = [];
    let disabledFrom = -1;
    const ctl = c.control!;
    const sub = p.connectFeatures({ features, joints }).actions.subscribe((cmd) =>
      sent.push({
        t: clock.now(),
        cmd,
        msg: actionMessage(
          cmd,
          { sec: 7, nanosec: 0 },
          { interface: ctl.action_interface, commandType: ctl.command_type, jointNames: ctl.joint_names, periodMs: 50 },
        ),
      }),
    );
    for (let t = 10; t < ms; t += 10) {
      clock.advanceTo(t);
      const q = state(t);
      if (q) {
        const stamp = { sec: 0, nanosec: 0 };
        joints.next({ header: { stamp, frame_id: '' }, name: ['j1', 'j0', 'j2'], position: Float64Array.of(q[0], 99, q[1]), velocity: [], effort: [] });
      }
      if (t % 50 === 0) {
        features.next({ stampMs: t, at: t, cameras: ['c'], perCamera: [new Float32Array(2)] });
        await p.idle();
      }
      if (disableAt !== undefined && t === disableAt) {
        disabledFrom = sent.length;
        assert.ok(p.reconfigure({ ...p.config, control: { ...ctl, enabled: false } }).ok);
      }
    }
    sub.unsubscribe();
    return { sent, metrics: p.metrics, disabledFrom };
  }

  it('joint_trajectory + velocity: positions only, the measured state advanced by v·(T + its age), stamped zero', async () => {
    const c = config({ action_interface: 'joint_trajectory', command_type: 'velocity' });
    // The arm moves on its own here, so a point from anything but the newest measured state would be off.
    const q = (t: number) => [1 + t / 1000, -2 + t / 2000];
    const { sent } = await run(c, q, 1000);
    const fresh = sent.filter((s) => s.cmd.state === 'ok');
    assert.ok(fresh.length >= 15, `${fresh.length} fresh commands`);
    for (const { t, msg } of fresh) {
      assert.ok('points' in msg);
      assert.deepEqual(msg.header.stamp, { sec: 0, nanosec: 0 });
      const pt = msg.points[0];
      assert.equal(pt.velocities.length, 0);
      assert.deepEqual(pt.time_from_start, { sec: 0, nanosec: 100_000_000 });
      // Joint states every 10 ms, the tick at t sees the one of t − 10 (or t, by the order on the clock), and
      // integrates over T = 0.1 s plus that state's age.
      const ok = [t, t - 10].some((s) => {
        const m = q(s);
        const span = 0.1 + (t - s) / 1000;
        return pt.positions.every((x, i) => Math.abs(x - (m[i] + V[i] * span)) < 1e-5);
      });
      assert.ok(ok, `point ${Array.from(pt.positions).join(', ')} at ${t} ms is not q + v·(0.1 + age) of a joint state just before`);
    }
  });

  it('joint_trajectory + velocity: no point without a fresh joint state (counted); the arm rests at the last one', async () => {
    const c = config({ action_interface: 'joint_trajectory', command_type: 'velocity' });
    // Joint states stop at 400 ms; max_age_ms 100.
    const { sent, metrics } = await run(c, (t) => (t < 400 ? [0, 0] : undefined), 1000);
    assert.ok(sent.length > 0 && sent.every((s) => s.t <= 490), `last point at ${sent.at(-1)?.t} ms`);
    const stale = metrics.snapshot(1000).dropped['control:state_stale'] ?? 0;
    assert.ok(stale >= 9 && stale <= 11, `${stale} ticks without a fresh joint state`);
  });

  for (const pair of [
    { action_interface: 'joint_trajectory', command_type: 'velocity' },
    { action_interface: 'joint_trajectory', command_type: 'position' },
    { action_interface: 'float64_multi_array', command_type: 'velocity' },
    { action_interface: 'float64_multi_array', command_type: 'position' },
  ] as Pair[]) {
    it(`${pair.action_interface} + ${pair.command_type}: disabling sends the safe action at once, then nothing`, async () => {
      const c = config(pair);
      const q = [0.5, -0.5];
      const { sent, disabledFrom } = await run(c, () => q, 1000, 500);
      const after = sent.slice(disabledFrom);
      assert.equal(after.length, 1, `${after.length} commands from the disable on`);
      const stop = after[0];
      assert.equal(stop.t, 500, 'at the disable, not at the next tick');
      assert.equal(stop.cmd.state, 'stale');
      const values = 'points' in stop.msg ? Array.from(stop.msg.points[0].positions) : 'data' in stop.msg ? Array.from(stop.msg.data) : [];
      // velocity: zero (a trajectory: hold the measured positions); position: the last command held.
      const expected = pair.command_type === 'position' ? V : pair.action_interface === 'joint_trajectory' ? q : [0, 0];
      assert.equal(values.length, 2, 'exactly one value per joint');
      values.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `safe value ${values.join(', ')} vs ${expected.join(', ')}`));
      // A trajectory's stop holds the measured positions one period ahead; a held position target two.
      if ('points' in stop.msg)
        assert.deepEqual(stop.msg.points[0].time_from_start, { sec: 0, nanosec: pair.command_type === 'velocity' ? 50_000_000 : 100_000_000 });
    });
  }

  it('the controller YAMLs, the mock arm and the simulation launch file agree', () => {
    const dir = join(ROOT, 'config', 'ros2_control');
    const urdf = readFileSync(join(dir, 'mock_arm.urdf'), 'utf8');
    const hw = urdf.slice(urdf.indexOf('<ros2_control'));
    const joints = [...hw.matchAll(/<joint name="([^"]+)">([\s\S]*?)<\/joint>/g)].map((m) => ({
      name: m[1],
      commands: [...m[2].matchAll(/<command_interface name="([^"]+)"/g)].map((c) => c[1]),
    }));
    assert.deepEqual(
      joints.map((j) => j.name),
      ['joint1', 'joint2'],
    );
    const expect: Record<string, { controller: string; type: string; command: string }> = {
      'jtc.yaml': { controller: 'arm_controller', type: 'joint_trajectory_controller/JointTrajectoryController', command: 'position' },
      'forward_velocity.yaml': { controller: 'velocity_controller', type: 'velocity_controllers/JointGroupVelocityController', command: 'velocity' },
      'forward_position.yaml': { controller: 'position_controller', type: 'position_controllers/JointGroupPositionController', command: 'position' },
    };
    for (const [file, e] of Object.entries(expect)) {
      const y = parseYaml(readFileSync(join(dir, file), 'utf8')) as Record<string, { ros__parameters: Record<string, unknown> }>;
      const cm = y.controller_manager.ros__parameters as Record<string, { type?: string }>;
      assert.equal(cm.joint_state_broadcaster?.type, 'joint_state_broadcaster/JointStateBroadcaster', file);
      assert.equal(cm[e.controller]?.type, e.type, file);
      const p = y[e.controller].ros__parameters;
      assert.deepEqual(p.joints, ['joint1', 'joint2'], file);
      // Defaults apart from joints and interfaces.
      assert.deepEqual(Object.keys(p).sort(), e.type.startsWith('joint_trajectory') ? ['command_interfaces', 'joints', 'state_interfaces'] : ['joints'], file);
      if (p.command_interfaces) assert.deepEqual(p.command_interfaces, [e.command], file);
      for (const j of joints) assert.ok(j.commands.includes(e.command), `${file}: ${j.name} has a ${e.command} command interface`);
    }
    const launch = readFileSync(join(ROOT, 'launch', 'sim_ros2_control.launch.py'), 'utf8');
    assert.match(launch, /os\.path\.join\(arm, 'jtc\.yaml'\)/);
    assert.match(launch, /'arm_joint_states_topic': '\/joint_states'/);
    assert.match(launch, /'control\.action_topic': '\/arm_controller\/joint_trajectory'/);
    assert.match(launch, /'arm_trajectory_topic': '\/arm_controller\/joint_trajectory'/);
    assert.match(launch, /'use_sim_time': True/);
  });
});
