// Live ROS 2: the node driven as a lifecycle manager drives it (change_state requests, get_state), an operator's
// disable that no parameter change undoes, dynamic keys applied while running, and a configure that fails honestly
// on a missing or garbage model. Skipped with one line without a sourced ROS 2.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeDemoKit, type DemoKit } from '../../src/run/demo-kit.js';
import { liveRclnodejs } from './live-env.js';
import { stringifyParamsFile } from '../../src/ros/params.js';
import { BIN, ROOT, tempDir } from '../helpers/util.js';

type Rcl = typeof import('rclnodejs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function paramsFile(kit: DemoKit, ns: string, name: string, over: { backbone?: string; publish?: boolean } = {}): string {
  const p = {
    backbone: { model: over.backbone ?? kit.backbone },
    s2: { img_sizes: ['32', '64'] },
    image: { base_size: '32' },
    cameras: { names: ['wrist', 'front'], topics: [`${ns}/wrist/image_raw`, `${ns}/front/image_raw/compressed`], transports: ['raw', 'compressed'] },
    sync: { mode: 'approximate', slop_ms: 20.0 },
    features: { pool: 'cls', publish: over.publish ?? false, topic: `${ns}/features` },
    joint_states: { topic: `${ns}/joint_states`, names: ['joint1', 'joint2'], max_age_ms: 500.0 },
    policy: { model: kit.policy, features_input: 'features', state_input: 'state' },
    control: { rate_hz: 20.0, command_type: 'velocity', action_topic: `${ns}/actions`, lower: [-0.5, -0.5], upper: [0.5, 0.5], max_delta: [0.05, 0.05] },
    watchdog: { stale_after_ms: 500.0 },
  };
  const file = join(kit.dir, `lc_${name}.yaml`);
  writeFileSync(file, stringifyParamsFile(p, [name]));
  return file;
}

function startNode(file: string, name: string, log: string[]): ChildProcess {
  const child = spawn(process.execPath, [BIN, 'ros', '--node', 'combined', '--ros-args', '--params-file', file, '-r', `__node:=${name}`], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d: Buffer) => {
    log.push(d.toString());
    if (process.env.S2_TEST_VERBOSE) process.stdout.write(`[${name}] ${d.toString()}`);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return child;
}

describe('ROS 2 live: lifecycle, enable and dynamic parameters', function () {
  this.timeout(180000);
  let rcl: Rcl;
  let kit: DemoKit;
  const children: ChildProcess[] = [];

  before(async function () {
    rcl = await liveRclnodejs(this);
    kit = await writeDemoKit(tempDir('s2-ros2-lc-'), { durationS: 1 });
  });

  after(() => {
    for (const c of children) c.kill('SIGINT');
    if (rcl && !rcl.isShutdown()) rcl.shutdown();
  });

  /** A client node with helpers for services, parameters and the node's lifecycle. */
  function client(name: string) {
    const node = rcl.createNode(name);
    rcl.spin(node);
    const call = async <T>(srv: string, service: string, req: object, timeout = 60000): Promise<T> => {
      const c = node.createClient(srv as never, service);
      assert.ok(await c.waitForService(20000), `service ${service}`);
      return await c.sendRequestAsync(req as never, { timeout });
    };
    return {
      node,
      call,
      state: async (target: string) =>
        (await call<{ current_state: { id: number; label: string } }>('lifecycle_msgs/srv/GetState', `/${target}/get_state`, {})).current_state.label,
      transition: async (target: string, id: number, label: string) =>
        (await call<{ success: boolean }>('lifecycle_msgs/srv/ChangeState', `/${target}/change_state`, { transition: { id, label } })).success,
      set: async (target: string, name: string, value: object) =>
        (
          await call<{ results: { successful: boolean; reason: string }[] }>('rcl_interfaces/srv/SetParameters', `/${target}/set_parameters`, {
            parameters: [{ name, value }],
          })
        ).results[0],
      destroy: () => node.destroy(),
    };
  }

  it('configure fails, and the node stays unconfigured, for a missing model and for a garbage one', async () => {
    const c = client('lc_tester_bad');
    try {
      const garbage = join(kit.dir, 'garbage.onnx');
      writeFileSync(garbage, Buffer.from('this is not an ONNX model at all'));
      for (const [tag, model] of [
        ['missing', join(kit.dir, 'nope.onnx')],
        ['garbage', garbage],
      ] as const) {
        const name = `s2_lc_${tag}`;
        const log: string[] = [];
        children.push(startNode(paramsFile(kit, `/lc_${tag}`, name, { backbone: model }), name, log));
        assert.equal(await c.state(name), 'unconfigured');
        assert.equal(await c.transition(name, 1, 'configure'), false, `configure with a ${tag} model must fail`);
        assert.equal(await c.state(name), 'unconfigured', `${tag}: still unconfigured`);
        assert.ok(log.join('').includes('configure failed'), `${tag}: the reason is logged`);
      }
    } finally {
      c.destroy();
    }
  });

  it('a lifecycle manager configures and activates; a disable survives a rate change; ensemble_k and features.publish apply live', async () => {
    const ns = '/lc_ok';
    const name = 's2_lc_ok';
    const log: string[] = [];
    children.push(startNode(paramsFile(kit, ns, name), name, log));
    const c = client('lc_tester_ok');
    const actions: number[] = [];
    const features: number[] = [];
    let settings = new Map<string, string>();
    c.node.createSubscription('std_msgs/msg/Float64MultiArray' as never, `${ns}/actions`, () => void actions.push(performance.now()));
    c.node.createSubscription('s2_policy/msg/S2Features' as never, `${ns}/features`, () => void features.push(performance.now()));
    c.node.createSubscription('diagnostic_msgs/msg/DiagnosticArray' as never, '/diagnostics', (m: unknown) => {
      const s = (m as { status: { name: string; values: { key: string; value: string }[] }[] }).status[0];
      if (s?.name.startsWith(`${name}:`)) settings = new Map(s.values.map((v) => [v.key, v.value]));
    });
    type Pub = { publish(m: object): void };
    const qos = { qos: rcl.QoS.profileSensorData };
    const cam = c.node.createPublisher('sensor_msgs/msg/Image' as never, `${ns}/wrist/image_raw`, qos) as unknown as Pub;
    const front = c.node.createPublisher('sensor_msgs/msg/CompressedImage' as never, `${ns}/front/image_raw/compressed`, qos) as unknown as Pub;
    const joints = c.node.createPublisher('sensor_msgs/msg/JointState' as never, `${ns}/joint_states`, qos) as unknown as Pub;
    const pixels = new Uint8Array(64 * 48 * 3).map((_, i) => (i * 13) % 251);
    const jpeg = new Uint8Array(
      await sharp(pixels, { raw: { width: 64, height: 48, channels: 3 } })
        .jpeg()
        .toBuffer(),
    );
    let k = 0;
    const timer = setInterval(() => {
      const t = c.node.now().secondsAndNanoseconds;
      const header = { stamp: { sec: Number(t.seconds), nanosec: Number(t.nanoseconds) }, frame_id: 'cam' };
      cam.publish({ header, height: 48, width: 64, encoding: 'rgb8', is_bigendian: 0, step: 64 * 3, data: pixels });
      front.publish({ header, format: 'rgb8; jpeg compressed bgr8', data: jpeg });
      joints.publish({ header, name: ['joint1', 'joint2'], position: [Math.sin(k * 0.05), Math.cos(k++ * 0.05)], velocity: [], effort: [] });
    }, 50);
    const count = async (xs: number[], ms: number) => {
      const n = xs.length;
      await sleep(ms);
      return xs.length - n;
    };
    try {
      assert.equal(await c.state(name), 'unconfigured');
      // As a lifecycle manager: configure (answered once the models are loaded and checked), then activate.
      assert.equal(await c.transition(name, 1, 'configure'), true, `configure: ${log.join('')}`);
      assert.equal(await c.state(name), 'inactive');
      assert.equal(await c.transition(name, 3, 'activate'), true);
      assert.equal(await c.state(name), 'active');
      for (let i = 0; i < 200 && actions.length < 10; i++) await sleep(50);
      assert.ok((await count(actions, 1000)) >= 12, 'actions at about 20 Hz');

      // An operator's disable is not undone by an unrelated parameter change.
      const en = await c.call<{ success: boolean }>('std_srvs/srv/SetBool', `/${name}/enable`, { data: false });
      assert.equal(en.success, true);
      await sleep(300);
      assert.ok((await count(actions, 1000)) <= 1, 'no actions while disabled');
      assert.equal((await c.set(name, 'control.rate_hz', { type: 3, double_value: 10.0 })).successful, true);
      const afterRate = await count(actions, 2000);
      assert.ok(afterRate <= 1, `still disabled after a rate change (${afterRate} actions in 2 s)`);
      const enabledParam = await c.call<{ values: { bool_value: boolean }[] }>('rcl_interfaces/srv/GetParameters', `/${name}/get_parameters`, {
        names: ['control.enabled'],
      });
      assert.equal(enabledParam.values[0].bool_value, false, 'the service set the parameter');
      await c.call('std_srvs/srv/SetBool', `/${name}/enable`, { data: true });
      await sleep(500);
      const at10 = await count(actions, 2000);
      assert.ok(at10 >= 14 && at10 <= 26, `${at10} actions in 2 s at 10 Hz after enabling`);

      // features.publish: off → no S2Features; on while running → they appear, without reactivating.
      assert.equal(features.length, 0, 'no S2Features while features.publish is false');
      assert.equal((await c.set(name, 'features.publish', { type: 1, bool_value: true })).successful, true);
      for (let i = 0; i < 60 && features.length < 3; i++) await sleep(50);
      assert.ok(features.length >= 3, 'S2Features once features.publish is true');

      // policy.ensemble_k: applied to the running controller, as /diagnostics reports it.
      assert.equal((await c.set(name, 'policy.ensemble_k', { type: 3, double_value: 0.5 })).successful, true);
      await sleep(2200);
      assert.equal(settings.get('policy.ensemble_k'), '0.5', `diagnostics report the applied k (${settings.get('policy.ensemble_k')})`);
      assert.equal(settings.get('features.publish'), 'true');
      assert.equal(settings.get('control.rate_hz'), '10');
      // A fixed key is refused while configured, and nothing changes.
      const fixed = await c.set(name, 'backbone.model', { type: 4, string_value: '/elsewhere.onnx' });
      assert.equal(fixed.successful, false);
    } finally {
      clearInterval(timer);
      c.destroy();
    }
  });
});
