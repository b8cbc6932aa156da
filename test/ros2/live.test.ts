// Live ROS 2 tests: the node as a separate process under a real ROS 2 (rclnodejs built against it), driven through
// real topics and services from this process. Without a sourced ROS 2 they are skipped with one line.
// Run alone with `npm run test:ros2` (after `colcon build` of this package, so that S2Features exists).
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

interface Received {
  actions: { t: number; v: number[] }[];
  diagnostics: { t: number; level: number; message: string }[];
  features: { t: number; cameras: string[]; n: number }[];
  /** Actions on the parameter file's topic when another one is expected (drive's actionsTopic). */
  elsewhere: number;
}

function params(kit: DemoKit, ns: string, nodeNames: string[]): string {
  const p = {
    backbone: { model: kit.backbone },
    s2: { img_sizes: ['32', '64'] },
    image: { base_size: '32' },
    cameras: { names: ['wrist', 'front'], topics: [`${ns}/wrist/image_raw`, `${ns}/front/image_raw/compressed`], transports: ['raw', 'compressed'] },
    sync: { mode: 'approximate', slop_ms: 20.0 },
    joint_states: { topic: `${ns}/joint_states`, names: ['joint1', 'joint2'], max_age_ms: 200.0 },
    features: { pool: 'cls', publish: true, topic: `${ns}/features` },
    policy: { model: kit.policy, features_input: 'features', state_input: 'state' },
    control: { rate_hz: 20.0, command_type: 'velocity', action_topic: `${ns}/actions`, lower: [-0.5, -0.5], upper: [0.5, 0.5], max_delta: [0.05, 0.05] },
    watchdog: { stale_after_ms: 300.0 },
    autostart: true,
  };
  const file = join(kit.dir, `params${ns.replace(/\//g, '_')}.yaml`);
  writeFileSync(file, stringifyParamsFile(p, nodeNames));
  return file;
}

function startNode(mode: string, file: string, name: string, extra: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [BIN, 'ros', '--node', mode, '--ros-args', '--params-file', file, '-r', `__node:=${name}`, ...extra], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => process.env.S2_TEST_VERBOSE && process.stdout.write(`[${name}] ${d.toString()}`));
  child.stderr?.on('data', (d: Buffer) => process.stdout.write(`[${name} stderr] ${d.toString()}`));
  return child;
}

function exited(child: ChildProcess): Promise<{ code: number | null; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, ms: performance.now() - t0 })));
}

describe('ROS 2 live', function () {
  this.timeout(180000);
  let rcl: Rcl;
  let kit: DemoKit;

  before(async function () {
    rcl = await liveRclnodejs(this);
    kit = await writeDemoKit(tempDir('s2-ros2-'), { durationS: 1 });
  });

  after(() => {
    if (rcl && !rcl.isShutdown()) rcl.shutdown();
  });

  /** Publishes both cameras and joint states at 20 Hz until `front` is turned off; records what comes back. */
  async function drive(
    ns: string,
    tester: string,
    scenario: (ctl: { frontOn: boolean; rec: Received; call: <T>(srv: string, name: string, req: object) => Promise<T> }) => Promise<void>,
    actionsTopic = `${ns}/actions`,
  ): Promise<Received> {
    const node = rcl.createNode(tester);
    const rec: Received = { actions: [], diagnostics: [], features: [], elsewhere: 0 };
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    node.createSubscription(
      'std_msgs/msg/Float64MultiArray' as never,
      actionsTopic,
      (m: unknown) => void rec.actions.push({ t: now(), v: Array.from((m as { data: ArrayLike<number> }).data) }),
    );
    if (actionsTopic !== `${ns}/actions`) node.createSubscription('std_msgs/msg/Float64MultiArray' as never, `${ns}/actions`, () => void rec.elsewhere++);
    node.createSubscription('diagnostic_msgs/msg/DiagnosticArray' as never, '/diagnostics', (m: unknown) => {
      const s = (m as { status: { level: number; message: string; name: string }[] }).status[0];
      if (s && s.name.includes('pipeline')) rec.diagnostics.push({ t: now(), level: Number(s.level), message: s.message });
    });
    node.createSubscription('s2_policy/msg/S2Features' as never, `${ns}/features`, (m: unknown) => {
      const f = m as { camera_names: string[]; data: ArrayLike<number> };
      rec.features.push({ t: now(), cameras: [...f.camera_names], n: f.data.length });
    });
    const qos = { qos: rcl.QoS.profileSensorData };
    // Plain message objects: rclnodejs's message typings exist only where they were generated.
    type Pub = { publish(m: object): void };
    const wrist = node.createPublisher('sensor_msgs/msg/Image' as never, `${ns}/wrist/image_raw`, qos) as unknown as Pub;
    const front = node.createPublisher('sensor_msgs/msg/CompressedImage' as never, `${ns}/front/image_raw/compressed`, qos) as unknown as Pub;
    const joints = node.createPublisher('sensor_msgs/msg/JointState' as never, `${ns}/joint_states`, qos) as unknown as Pub;
    rcl.spin(node);
    const w = 160;
    const h = 120;
    const pixels = new Uint8Array(w * h * 3).map((_, i) => (i * 7) % 251);
    const jpeg = new Uint8Array(
      await sharp(pixels, { raw: { width: w, height: h, channels: 3 } })
        .jpeg()
        .toBuffer(),
    );
    const ctl = {
      frontOn: true,
      rec,
      call: async <T>(srv: string, name: string, req: object): Promise<T> => {
        const client = node.createClient(srv as never, name);
        assert.ok(await client.waitForService(10000), `service ${name}`);
        return await client.sendRequestAsync(req as never);
      },
    };
    let k = 0;
    const timer = setInterval(() => {
      const stamp = node.now().secondsAndNanoseconds;
      const header = { stamp: { sec: Number(stamp.seconds), nanosec: Number(stamp.nanoseconds) }, frame_id: 'cam' };
      wrist.publish({ header, height: h, width: w, encoding: 'rgb8', is_bigendian: 0, step: w * 3, data: pixels });
      if (ctl.frontOn) front.publish({ header, format: 'rgb8; jpeg compressed bgr8', data: jpeg });
      const t = k++ * 0.05;
      joints.publish({ header, name: ['joint1', 'joint2'], position: [Math.sin(t), Math.cos(t)], velocity: [], effort: [] });
    }, 50);
    try {
      await scenario(ctl);
    } finally {
      clearInterval(timer);
      node.destroy();
    }
    return rec;
  }

  function checkStreaming(rec: Received, from: number, to: number): void {
    const acts = rec.actions.filter((a) => a.t >= from && a.t < to);
    assert.ok(acts.length >= ((to - from) / 1000) * 20 * 0.6, `${acts.length} actions in ${to - from} ms at 20 Hz`);
    for (const a of acts) for (const v of a.v) assert.ok(v >= -0.5 - 1e-9 && v <= 0.5 + 1e-9, `action ${v} within limits`);
    assert.ok(
      acts.some((a) => a.v.some((v) => v !== 0)),
      'the policy commands motion while both cameras stream',
    );
  }

  async function scenario(mode: 'combined' | 'split'): Promise<void> {
    const ns = `/t_${mode}`;
    const names = mode === 'combined' ? ['s2_policy_live'] : ['s2_features_live', 's2_head_live'];
    const file = params(kit, ns, names);
    const children =
      mode === 'combined' ? [startNode('combined', file, names[0])] : [startNode('features', file, names[0]), startNode('policy_head', file, names[1])];
    const headName = names[names.length - 1];
    try {
      const rec = await drive(ns, `tester_${mode}`, async (ctl) => {
        // Wait for the node(s) to configure, activate and start acting.
        for (let i = 0; i < 600 && ctl.rec.actions.filter((a) => a.v.some((v) => v !== 0)).length < 5; i++) await sleep(50);
        const start = performance.now();
        await sleep(2500);
        const t1 = ctl.rec.actions.at(-1)?.t ?? 0;
        checkStreaming(ctl.rec, t1 - 2000, t1);
        assert.ok(
          ctl.rec.features.length > 10 && ctl.rec.features.every((f) => f.cameras.join() === 'wrist,front' && f.n === 96),
          'S2Features from both cameras',
        );
        // Dynamic parameters: the control rate changes at run time; an invalid value is refused.
        const setRate = (hz: number) =>
          ctl.call<{ results: { successful: boolean; reason: string }[] }>('rcl_interfaces/srv/SetParameters', `/${headName}/set_parameters`, {
            parameters: [{ name: 'control.rate_hz', value: { type: 3, double_value: hz } }],
          });
        assert.equal((await setRate(-5)).results[0].successful, false, 'a negative rate is refused');
        assert.equal((await setRate(10)).results[0].successful, true);
        await sleep(300);
        const slowFrom = ctl.rec.actions.length;
        await sleep(2000);
        const slow = ctl.rec.actions.length - slowFrom;
        assert.ok(slow >= 16 && slow <= 24, `${slow} actions in 2 s at 10 Hz`);
        assert.equal((await setRate(20)).results[0].successful, true);
        // A stalled camera: the watchdog switches to zero velocity.
        ctl.frontOn = false;
        const stalledAt = ctl.rec.actions.at(-1)?.t ?? 0;
        await sleep(1200);
        const late = ctl.rec.actions.filter((a) => a.t > stalledAt + 300 + 100);
        assert.ok(late.length >= 10 && late.every((a) => a.v.every((v) => v === 0)), `zero velocity after the front camera stalls (${late.length} actions)`);
        assert.ok(
          ctl.rec.diagnostics.some((d) => d.t > stalledAt + 500 && d.level === 1),
          'diagnostics WARN while stale',
        );
        ctl.frontOn = true;
        await sleep(1500);
        const recovered = ctl.rec.actions.filter((a) => a.t > performance.now() - start - 700);
        assert.ok(
          recovered.some((a) => a.v.some((v) => v !== 0)),
          'actions resume when the camera returns',
        );
        // ~/enable false gates the actions; features keep flowing.
        const en = await ctl.call<{ success: boolean }>('std_srvs/srv/SetBool', `/${headName}/enable`, { data: false });
        assert.equal(en.success, true);
        const gated = ctl.rec.actions.length;
        const featuresBefore = ctl.rec.features.length;
        await sleep(800);
        assert.ok(ctl.rec.actions.length - gated <= 1, 'no actions while disabled');
        assert.ok(ctl.rec.features.length > featuresBefore, 'features keep flowing while disabled');
        await ctl.call('std_srvs/srv/SetBool', `/${headName}/enable`, { data: true });
        // Lifecycle: deactivate → one safe action, then silence.
        const res = await ctl.call<{ success: boolean }>('lifecycle_msgs/srv/ChangeState', `/${headName}/change_state`, {
          transition: { id: 4, label: 'deactivate' },
        });
        assert.equal(res.success, true);
        const n = ctl.rec.actions.length;
        await sleep(800);
        const after = ctl.rec.actions.slice(n);
        assert.ok(after.length <= 2, `${after.length} actions after deactivate`);
        assert.ok(
          ctl.rec.actions.slice(n - 2).some((a) => a.v.every((v) => v === 0)),
          'a zero (safe) action on deactivate',
        );
      });
      assert.ok(rec.actions.length > 0);
    } finally {
      // SIGINT: a clean exit within a second.
      const exits = children.map((c) => exited(c));
      for (const c of children) c.kill('SIGINT');
      for (const e of await Promise.all(exits)) {
        assert.equal(e.code, 0);
        assert.ok(e.ms < 1000, `exit took ${e.ms.toFixed(0)} ms`);
      }
    }
  }

  it('one node: actions within limits, S2Features, watchdog on a stalled camera, enable, lifecycle, SIGINT', () => scenario('combined'));
  it('two nodes (features → policy head): the same behaviour', () => scenario('split'));

  it('-p after --params-file wins: the rate and the action topic given with -p are the ones used', async () => {
    const ns = '/t_precedence';
    const name = 's2_policy_precedence';
    // The file says 20 Hz on <ns>/actions; the command line says 10 Hz on /x.
    const file = params(kit, ns, [name]);
    const child = startNode('combined', file, name, ['-p', 'control.rate_hz:=10.0', '-p', 'control.action_topic:=/x']);
    try {
      const rec = await drive(
        ns,
        'tester_precedence',
        async (ctl) => {
          for (let i = 0; i < 600 && ctl.rec.actions.length < 5; i++) await sleep(50);
          const from = ctl.rec.actions.length;
          const t0 = performance.now();
          await sleep(3000);
          const hz = ((ctl.rec.actions.length - from) * 1000) / (performance.now() - t0);
          console.log(`    -p control.rate_hz:=10.0: ${hz.toFixed(2)} actions/s on /x, ${ctl.rec.elsewhere} on the file's ${ns}/actions`);
          assert.ok(hz > 9 && hz < 11, `${hz.toFixed(2)} actions/s on /x`);
        },
        '/x',
      );
      assert.equal(rec.elsewhere, 0, "nothing on the parameter file's topic");
    } finally {
      const e = exited(child);
      child.kill('SIGINT');
      assert.equal((await e).code, 0);
    }
  });
});
