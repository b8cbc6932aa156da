// Live ros2_control: the node's actions consumed and executed by the controllers they are named for. A
// controller_manager runs a 2-joint arm on mock hardware (config/ros2_control: the URDF and one controller YAML per
// pairing, every controller at its defaults except joints and interfaces); for each supported action_interface ×
// command_type the node runs a constant policy against the matching controller, and the arm's /joint_states (from
// joint_state_broadcaster) must follow it with no rejection in the controller's log. Then the safety paths are
// measured on /joint_states: ~/enable false, a stalled camera, deactivate, SIGINT and SIGKILL. Skipped with one
// line without a sourced ROS 2 with ros2_control.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/config.js';
import { buildLinearPolicy } from '../../src/models/policy.js';
import { FeatureExtractor } from '../../src/pipeline/extractor.js';
import { stringifyParamsFile } from '../../src/ros/params.js';
import { BIN, ROOT, modelPath, tempDir } from '../helpers/util.js';
import { liveRos2Control, type Ros2Control } from './live-env.js';

type Rcl = typeof import('rclnodejs');
type Pub = { publish(m: object): void };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CONFIG = join(ROOT, 'config', 'ros2_control');
const JOINTS = ['joint1', 'joint2'];
/** The velocity the velocity policies command, rad/s. */
const V = [0.3, -0.2];
const RATE_HZ = 20;
const PERIOD_MS = 1000 / RATE_HZ;
const STALE_AFTER_MS = 300;
const CAMERA = '/ctl_test/image_raw';

interface Pair {
  action_interface: 'joint_trajectory' | 'float64_multi_array';
  command_type: 'velocity' | 'position';
  controller: string;
  topic: string;
}

const PAIRS: Record<string, Pair> = {
  jtcVelocity: { action_interface: 'joint_trajectory', command_type: 'velocity', controller: 'arm_controller', topic: '/arm_controller/joint_trajectory' },
  jtcPosition: { action_interface: 'joint_trajectory', command_type: 'position', controller: 'arm_controller', topic: '/arm_controller/joint_trajectory' },
  forwardVelocity: {
    action_interface: 'float64_multi_array',
    command_type: 'velocity',
    controller: 'velocity_controller',
    topic: '/velocity_controller/commands',
  },
  forwardPosition: {
    action_interface: 'float64_multi_array',
    command_type: 'position',
    controller: 'position_controller',
    topic: '/position_controller/commands',
  },
};
const CONTROLLERS = ['arm_controller', 'velocity_controller', 'position_controller', 'arm_controller_timeout'];
/** The controller's cmd_timeout in jtc_cmd_timeout.yaml, s. */
const CMD_TIMEOUT_S = 0.5;
/** The position targets of the position policies (each away from the home pose and from the other). */
const TARGET: Record<string, number[]> = { arm_controller: [0.6, -0.4], position_controller: [-0.3, 0.5] };

/** A process of the test's own, in a process group of its own, with its output kept. */
interface Proc {
  name: string;
  child: ChildProcess;
  log: string[];
  exit: Promise<number | null>;
}

/** /joint_states as joint_state_broadcaster publishes them: header stamp (ms, system clock) and positions. */
class ArmRecord {
  samples: { t: number; q: number[] }[] = [];

  add(t: number, names: string[], position: ArrayLike<number>): void {
    const q = JOINTS.map((n) => position[names.indexOf(n)]);
    if (q.every((x) => Number.isFinite(x))) this.samples.push({ t, q });
  }

  /** Positions at time t (the newest sample at or before it). */
  at(t: number): number[] {
    let last = this.samples[0]?.q ?? [NaN, NaN];
    for (const s of this.samples) {
      if (s.t > t) break;
      last = s.q;
    }
    return last;
  }

  latest(): number[] {
    return this.samples.at(-1)?.q ?? [NaN, NaN];
  }

  /** Mean velocity per joint over [from, to], rad/s. */
  slope(from: number, to: number): number[] {
    const a = this.at(from);
    const b = this.at(to);
    return a.map((x, i) => (b[i] - x) / ((to - from) / 1000));
  }

  /**
   * How the arm comes to rest after an event at `te`: the resting pose (the mean over the window's last 300 ms), the
   * time from te to the first joint state from which on the arm stays within `tol` rad of it, and the distance
   * moved along the commanded velocity after te (coast).
   */
  stop(te: number, windowMs: number, tol = 5e-4): { settleMs: number; coast: number[]; rest: number[] } {
    const tail = this.samples.filter((s) => s.t > te + windowMs - 300 && s.t <= te + windowMs);
    assert.ok(tail.length > 5, `joint states in the last 300 ms of the window (${tail.length})`);
    const rest = JOINTS.map((_, i) => tail.reduce((n, s) => n + s.q[i], 0) / tail.length);
    const window = this.samples.filter((s) => s.t > te && s.t <= te + windowMs);
    let settled = window[0]?.t ?? te;
    window.forEach((s, k) => {
      if (s.q.some((x, i) => Math.abs(x - rest[i]) > tol)) settled = window[k + 1]?.t ?? s.t;
    });
    const q0 = this.at(te);
    return { settleMs: settled - te, coast: rest.map((x, i) => (x - q0[i]) * Math.sign(V[i])), rest };
  }

  async waitFor(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
    const t0 = Date.now();
    while (!ok()) {
      if (Date.now() - t0 > timeoutMs)
        assert.fail(
          `timed out after ${timeoutMs} ms waiting for ${what} (arm at ${this.latest()
            .map((x) => x.toFixed(3))
            .join(', ')})`,
        );
      await sleep(20);
    }
  }
}

describe('ROS 2 live: ros2_control controllers execute the actions', function () {
  this.timeout(600000);
  let rcl: Rcl;
  let control: Ros2Control;
  let dir: string;
  const procs: Proc[] = [];
  let cm: Proc;
  let node: import('rclnodejs').Node;
  const arm = new ArmRecord();
  let camera: { on: boolean; lastAt: number };
  let heads: { velocity: string; [controller: string]: string };
  const results: string[] = [];
  let cameraTimer: ReturnType<typeof setInterval> | undefined;

  function start(name: string, cmd: string, args: string[]): Proc {
    const child = spawn(cmd, args, {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RCUTILS_LOGGING_BUFFERED_STREAM: '0' },
    });
    const log: string[] = [];
    const keep = (d: Buffer) => {
      log.push(d.toString());
      if (process.env.S2_TEST_VERBOSE) process.stdout.write(`[${name}] ${d.toString()}`);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const p = { name, child, log, exit };
    procs.push(p);
    return p;
  }

  /** Stops one of our processes: SIGINT to its group, SIGKILL after 5 s. */
  async function stopProc(p: Proc): Promise<void> {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return;
    try {
      process.kill(-(p.child.pid as number), 'SIGINT');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-(p.child.pid as number), 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 5000);
    await p.exit;
    clearTimeout(timer);
  }

  async function run(name: string, cmd: string, args: string[], timeoutMs: number): Promise<void> {
    const p = start(name, cmd, args);
    const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
    const code = await p.exit;
    clearTimeout(timer);
    assert.equal(code, 0, `${name} exited with ${code}: ${p.log.join('').slice(-2000)}`);
  }

  async function call<T>(srv: string, service: string, req: object): Promise<T> {
    const c = node.createClient(srv as never, service);
    assert.ok(await c.waitForService(30000), `service ${service}`);
    const r = (await c.sendRequestAsync(req as never, { timeout: 30000 })) as T;
    node.destroyClient(c);
    return r;
  }

  /** Makes `controller` the only active one of the arm's command controllers. */
  async function activate(controller: string): Promise<void> {
    const r = await call<{ ok: boolean }>('controller_manager_msgs/srv/SwitchController', '/controller_manager/switch_controller', {
      activate_controllers: [controller],
      deactivate_controllers: CONTROLLERS.filter((c) => c !== controller),
      strictness: 1, // BEST_EFFORT: controllers already inactive are no error
      activate_asap: false,
      timeout: { sec: 10, nanosec: 0 },
    });
    assert.equal(r.ok, true, `switch to ${controller}`);
  }

  /** Brings the arm back to 0, 0 through the position controller (keeps it inside its limits between runs). */
  async function home(): Promise<void> {
    await activate('position_controller');
    const pub = node.createPublisher('std_msgs/msg/Float64MultiArray' as never, '/position_controller/commands') as unknown as Pub;
    const t = setInterval(() => pub.publish({ layout: { dim: [], data_offset: 0 }, data: [0, 0] }), 50);
    try {
      await arm.waitFor('the arm at home', () => arm.latest().every((x) => Math.abs(x) < 1e-3), 20000);
    } finally {
      clearInterval(t);
      node.destroyPublisher(pub as never);
    }
  }

  function nodeParams(pair: Pair, name: string): string {
    const p = {
      backbone: { model: modelPath('vit-tiny') },
      s2: { img_sizes: ['32', '64'] },
      image: { base_size: '32' },
      cameras: { names: ['cam'], topics: [CAMERA], transports: ['raw'] },
      joint_states: { topic: '/joint_states', names: JOINTS },
      policy: { model: pair.command_type === 'velocity' ? heads.velocity : heads[pair.controller], features_input: 'features' },
      control: {
        rate_hz: RATE_HZ,
        command_type: pair.command_type,
        action_interface: pair.action_interface,
        action_topic: pair.topic,
        joint_names: JOINTS,
      },
      watchdog: { stale_after_ms: STALE_AFTER_MS },
      autostart: true,
    };
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, stringifyParamsFile(p, [name]));
    return file;
  }

  function startNode(pair: Pair, name: string): Proc {
    return start(name, process.execPath, [BIN, 'ros', '--ros-args', '--params-file', nodeParams(pair, name), '-r', `__node:=${name}`]);
  }

  /** The controller's ERROR lines (a rejected message, a wrong size) and the manager deactivating a controller. */
  function rejections(from: number, controller: string): string[] {
    return cm.log
      .slice(from)
      .join('')
      .split('\n')
      .filter((l) => (l.includes('[ERROR]') && l.includes(controller)) || l.includes('Deactivating controllers'));
  }

  const moving = () => {
    const t = Date.now();
    // Along V at about its speed (homing jumps the arm: fast, and often the other way).
    return arm.slope(t - 300, t).every((v, i) => v / V[i] > 0.5 && v / V[i] < 1.5);
  };
  const fmt = (v: number[], d = 3) => `[${v.map((x) => x.toFixed(d)).join(', ')}]`;

  before(async function () {
    ({ rcl, control } = await liveRos2Control(this));
    dir = tempDir('s2-ros2-control-');
    // The constant policies: zero weights, the bias is the action.
    const probe = parseConfig(
      { backbone: { model: modelPath('vit-tiny') }, s2: { img_sizes: [32, 64] }, image: { base_size: 32 }, cameras: [{ name: 'cam', topic: CAMERA }] },
      'probe',
    );
    const extractor = await FeatureExtractor.create(probe);
    const featureDim = extractor.layout.perCamera;
    await extractor.release();
    const headFile = (name: string, action: number[]) => {
      const file = join(dir, `${name}.onnx`);
      const graph = buildLinearPolicy({
        featureDim,
        stateDim: 0,
        chunk: 1,
        actionDim: 2,
        weight: new Float32Array(featureDim * 2),
        bias: Float32Array.from(action),
      });
      writeFileSync(file, graph.serialize());
      return file;
    };
    heads = { velocity: headFile('velocity', V) };
    for (const [c, target] of Object.entries(TARGET)) heads[c] = headFile(c, target);

    // robot_state_publisher latches /robot_description, which the controller manager reads its hardware from.
    const rsp = join(dir, 'rsp.yaml');
    writeFileSync(rsp, stringify({ robot_state_publisher: { ros__parameters: { robot_description: readFileSync(join(CONFIG, 'mock_arm.urdf'), 'utf8') } } }));
    start('robot_state_publisher', control.robotStatePublisher, ['--ros-args', '--params-file', rsp]);
    const files = ['jtc.yaml', 'forward_velocity.yaml', 'forward_position.yaml']
      .map((f) => join(CONFIG, f))
      .concat(join(ROOT, 'test', 'ros2', 'jtc_cmd_timeout.yaml'))
      .flatMap((f) => ['--params-file', f]);
    cm = start('controller_manager', control.controlNode, ['--ros-args', ...files]);

    node = rcl.createNode('s2_control_test');
    node.createSubscription('sensor_msgs/msg/JointState' as never, '/joint_states', { enableTypedArray: true }, (m: unknown) => {
      const js = m as { header: { stamp: { sec: number; nanosec: number } }; name: string[]; position: ArrayLike<number> };
      arm.add(Number(js.header.stamp.sec) * 1000 + Number(js.header.stamp.nanosec) / 1e6, js.name, js.position);
    });
    const cam = node.createPublisher('sensor_msgs/msg/Image' as never, CAMERA, { qos: rcl.QoS.profileSensorData }) as unknown as Pub;
    rcl.spin(node);
    const w = 64;
    const h = 48;
    const pixels = new Uint8Array(w * h * 3).map((_, i) => (i * 7) % 251);
    camera = { on: false, lastAt: 0 };
    const timer = setInterval(() => {
      if (!camera.on) return;
      const t = Date.now();
      const header = { stamp: { sec: Math.floor(t / 1000), nanosec: (t % 1000) * 1e6 }, frame_id: 'cam' };
      cam.publish({ header, height: h, width: w, encoding: 'rgb8', is_bigendian: 0, step: w * 3, data: pixels });
      camera.lastAt = t;
    }, 50);
    cameraTimer = timer;

    await run('spawner_jsb', control.spawner, ['joint_state_broadcaster', '-c', '/controller_manager'], 120000);
    await run('spawner_arm', control.spawner, [...CONTROLLERS, '--inactive', '-c', '/controller_manager'], 120000);
    await arm.waitFor('joint states', () => arm.samples.length > 10, 30000);
  });

  after(async () => {
    clearInterval(cameraTimer);
    for (const p of procs.slice().reverse()) await stopProc(p);
    if (rcl && !rcl.isShutdown()) rcl.shutdown();
    if (results.length > 0) console.log(['  ros2_control measurements:', ...results.map((r) => `    ${r}`)].join('\n'));
  });

  /** The transition of a lifecycle node (deactivate 4, activate 3). */
  async function transition(name: string, id: number, label: string): Promise<void> {
    const r = await call<{ success: boolean }>('lifecycle_msgs/srv/ChangeState', `/${name}/change_state`, { transition: { id, label } });
    assert.equal(r.success, true, `${label} ${name}`);
  }

  /** Runs a velocity pairing: tracking, then every way of stopping, each measured on /joint_states. */
  async function velocityPair(key: string): Promise<void> {
    const pair = PAIRS[key];
    await home();
    await activate(pair.controller);
    const logFrom = cm.log.length;
    const name = `s2_${key}`;
    let n = startNode(pair, name);
    camera.on = true;
    await arm.waitFor('the arm moving', moving, 180000);
    await sleep(500);
    const t1 = Date.now();
    await sleep(2000);
    const slope = arm.slope(t1, Date.now());
    const ratio = slope.map((v, i) => v / V[i]);
    results.push(`${key} (${pair.controller}): velocity ${fmt(slope)} rad/s for ${fmt(V, 2)} commanded, ratio ${fmt(ratio, 2)}`);
    for (const r of ratio) assert.ok(r > 0.8 && r < 1.05, `executed velocity ratio ${fmt(ratio)}`);

    const stopped = async (what: string, te: number, maxSettleMs: number, windowMs = 1500) => {
      await sleep(Math.max(0, te + windowMs + 100 - Date.now()));
      const s = arm.stop(te, windowMs);
      results.push(`${key}: ${what}: at rest ${s.settleMs.toFixed(0)} ms after, moved ${fmt(s.coast)} rad on`);
      assert.ok(s.settleMs <= maxSettleMs, `${what}: at rest ${s.settleMs.toFixed(0)} ms after (at most ${maxSettleMs})`);
      for (const [i, c] of s.coast.entries()) assert.ok(Math.abs(c) <= Math.abs(V[i]) * ((maxSettleMs + 50) / 1000), `${what}: moved ${fmt(s.coast)} rad on`);
      return s;
    };

    // ~/enable false: the safe action at once.
    let te = Date.now();
    await call('std_srvs/srv/SetBool', `/${name}/enable`, { data: false });
    await stopped('~/enable false', te, 2 * PERIOD_MS + 100);
    await call('std_srvs/srv/SetBool', `/${name}/enable`, { data: true });
    await arm.waitFor('the arm moving after enable', moving, 10000);

    // A stalled camera: the watchdog's safe action after stale_after_ms.
    camera.on = false;
    await sleep(10);
    te = camera.lastAt;
    const stall = await stopped('camera stall (watchdog)', te, STALE_AFTER_MS + 3 * PERIOD_MS + 150);
    assert.ok(stall.settleMs >= STALE_AFTER_MS - PERIOD_MS, `the arm kept moving until the watchdog (${stall.settleMs.toFixed(0)} ms)`);
    camera.on = true;
    await arm.waitFor('the arm moving after the camera returns', moving, 10000);

    // Lifecycle deactivate: one safe action.
    te = Date.now();
    await transition(name, 4, 'deactivate');
    await stopped('deactivate', te, 2 * PERIOD_MS + 150);
    await transition(name, 3, 'activate');
    await arm.waitFor('the arm moving after activate', moving, 10000);

    // SIGINT: one safe action, then exit.
    te = Date.now();
    n.child.kill('SIGINT');
    assert.equal(await n.exit, 0);
    await stopped('SIGINT', te, 2 * PERIOD_MS + 150);

    // SIGKILL: no safe action. The trajectory controller comes to rest at the last point; a forward velocity
    // controller keeps the last velocity.
    n = startNode(pair, `${name}_2`);
    await arm.waitFor('the arm moving (second node)', moving, 180000);
    await sleep(500);
    te = Date.now();
    n.child.kill('SIGKILL');
    await n.exit;
    if (pair.action_interface === 'joint_trajectory') {
      await stopped('SIGKILL', te, 2 * PERIOD_MS + PERIOD_MS + 100);
    } else {
      await sleep(1300);
      const drift = arm.slope(te + 200, te + 1200);
      results.push(`${key}: SIGKILL: still moving at ${fmt(drift)} rad/s 1.2 s later (the controller keeps the last velocity)`);
      drift.forEach((v, i) => assert.ok(Math.abs(v - V[i]) < 0.1 * Math.abs(V[i]), `still moving at ${fmt(drift)} after SIGKILL`));
    }
    camera.on = false;
    assert.deepEqual(rejections(logFrom, pair.controller), [], 'no rejection in the controller log');
  }

  /** Runs a position pairing: the arm settles on the target and holds on disable and SIGINT. */
  async function positionPair(key: string): Promise<void> {
    const pair = PAIRS[key];
    const target = TARGET[pair.controller];
    await home();
    await activate(pair.controller);
    const logFrom = cm.log.length;
    const name = `s2_${key}`;
    const n = startNode(pair, name);
    camera.on = true;
    await arm.waitFor('the arm at the target', () => arm.latest().every((x, i) => Math.abs(x - target[i]) < 0.01), 180000);
    await sleep(1000);
    const error = arm.latest().map((x, i) => x - target[i]);
    results.push(`${key} (${pair.controller}): settled at ${fmt(arm.latest())} for ${fmt(target, 2)}, error ${fmt(error, 4)} rad`);
    for (const e of error) assert.ok(Math.abs(e) < 1e-3, `settle error ${fmt(error, 4)}`);
    const holds = async (what: string) => {
      const q0 = arm.latest();
      await sleep(1000);
      const moved = arm.latest().map((x, i) => x - q0[i]);
      for (const m of moved) assert.ok(Math.abs(m) < 1e-3, `${what}: moved ${fmt(moved, 4)}`);
    };
    await call('std_srvs/srv/SetBool', `/${name}/enable`, { data: false });
    await holds('~/enable false');
    n.child.kill('SIGINT');
    assert.equal(await n.exit, 0);
    await holds('SIGINT');
    camera.on = false;
    assert.deepEqual(rejections(logFrom, pair.controller), [], 'no rejection in the controller log');
  }

  it('joint_trajectory + velocity → JointTrajectoryController: executed; stops on disable, stall, deactivate, SIGINT and SIGKILL', () =>
    velocityPair('jtcVelocity'));
  it('float64_multi_array + velocity → JointGroupVelocityController: executed; stops on disable, stall, deactivate, SIGINT; SIGKILL leaves it moving', () =>
    velocityPair('forwardVelocity'));
  it('cmd_timeout or the node: with the node running its watchdog stops the arm; after SIGKILL the last point does, before cmd_timeout', async () => {
    const pair: Pair = { ...PAIRS.jtcVelocity, controller: 'arm_controller_timeout', topic: '/arm_controller_timeout/joint_trajectory' };
    await home();
    await activate(pair.controller);
    const logFrom = cm.log.length;
    const n = startNode(pair, 's2_cmd_timeout');
    camera.on = true;
    await arm.waitFor('the arm moving', moving, 180000);
    // A stall: the node keeps publishing (safe actions), so cmd_timeout never counts; the watchdog stops the arm.
    camera.on = false;
    await sleep(10);
    let te = camera.lastAt;
    await sleep(2000);
    const stall = arm.stop(te, 1500);
    const aborts = () =>
      cm.log
        .slice(logFrom)
        .join('')
        .split('\n')
        .filter((l) => l.includes('Aborted due to command timeout'));
    results.push(
      `cmd_timeout ${CMD_TIMEOUT_S} s, camera stall: at rest ${stall.settleMs.toFixed(0)} ms after the last frame (watchdog), ${aborts().length} command timeouts`,
    );
    assert.equal(aborts().length, 0, 'no command timeout while the node publishes');
    camera.on = true;
    await arm.waitFor('the arm moving after the camera returns', moving, 10000);
    await sleep(500);
    te = Date.now();
    n.child.kill('SIGKILL');
    await n.exit;
    await sleep(2000);
    const kill = arm.stop(te, 1500);
    const line = aborts()[0];
    const at = line ? Number(/\[(\d+\.\d+)\]/.exec(line)?.[1]) * 1000 : NaN;
    results.push(
      `cmd_timeout ${CMD_TIMEOUT_S} s, SIGKILL: at rest ${kill.settleMs.toFixed(0)} ms after the kill (the last point), command timeout logged ${(at - te).toFixed(0)} ms after`,
    );
    assert.ok(line, 'the command timeout fires once messages stop');
    assert.ok(kill.settleMs < at - te, 'the arm was at rest before the command timeout');
    camera.on = false;
    assert.deepEqual(rejections(logFrom, pair.controller), [], 'no rejection in the controller log');
  });

  it('joint_trajectory + position → JointTrajectoryController: settles on the target, holds', () => positionPair('jtcPosition'));
  it('float64_multi_array + position → JointGroupPositionController: settles on the target, holds', () => positionPair('forwardPosition'));
});
