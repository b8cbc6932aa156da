// The ROS 2 side without a ROS 2: package files, launch files, the parameter file → config mapping, the parameter
// table against the config schema, and rclnodejs-shaped messages through the pipeline's conversions.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { configSchema } from '../src/config/config.js';
import {
  PARAMS,
  configFromParams,
  configToParams,
  flattenParams,
  loadParamsFile,
  rosArgParams,
  paramsToConfigObject,
  remappedName,
  stringifyParamsFile,
} from '../src/ros/params.js';
import { actionMessage, diagnosticsMessage } from '../src/pipeline/messages.js';
import { Metrics } from '../src/pipeline/metrics.js';
import { createIngester } from '../src/image/ingest.js';
import { NORMALIZATION_PRESETS } from '../src/image/normalize.js';
import { ROOT, tempDir } from './helpers/util.js';

const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');

describe('ROS 2 package (static)', () => {
  it('package.xml is format 3, ament_cmake, generates interfaces and depends on the message packages used', () => {
    const x = read('package.xml');
    assert.match(x, /<package format="3">/);
    assert.match(x, /<name>s2_policy<\/name>/);
    assert.match(x, /<build_type>ament_cmake<\/build_type>/);
    assert.match(x, /<buildtool_depend>rosidl_default_generators<\/buildtool_depend>/);
    assert.match(x, /<member_of_group>rosidl_interface_packages<\/member_of_group>/);
    for (const dep of ['sensor_msgs', 'trajectory_msgs', 'geometry_msgs', 'diagnostic_msgs', 'std_srvs', 'std_msgs', 'rosgraph_msgs'])
      assert.match(x, new RegExp(`<(exec_)?depend>${dep}</`), dep);
  });

  it('CMakeLists generates S2Features and installs the node, launch and config', () => {
    const c = read('CMakeLists.txt');
    assert.match(c, /rosidl_generate_interfaces\(\$\{PROJECT_NAME\}\s+"msg\/S2Features\.msg"/);
    assert.match(c, /install\(PROGRAMS .* DESTINATION lib\/\$\{PROJECT_NAME\}\)/);
    assert.match(c, /install\(DIRECTORY launch config DESTINATION share\/\$\{PROJECT_NAME\}\)/);
    assert.match(read('scripts/ros/launcher.in'), /exec node "@S2_POLICY_ROOT@\/bin\/s2-policy\.js" ros --node @S2_POLICY_MODE@ "\$@"/);
    for (const exe of ['s2_policy_node:combined', 's2_features_node:features', 's2_policy_head_node:policy_head', 's2_sim_node:sim'])
      assert.ok(c.includes(`"${exe}"`), exe);
    const sim = read('launch/sim.launch.py');
    assert.match(sim, /Node\(package='s2_policy', executable='s2_sim_node'/);
    assert.match(sim, /LifecycleNode\(package='s2_policy', executable='s2_policy_node'/);
  });

  it('the Python and XML launch files declare the same arguments and start the lifecycle node', () => {
    const py = read('launch/s2_policy.launch.py');
    const xml = read('launch/s2_policy.launch.xml');
    const pyArgs = [...py.matchAll(/DeclareLaunchArgument\('([a-z_0-9]+)'/g)].map((m) => m[1]).sort();
    const xmlArgs = [...xml.matchAll(/<arg name="([a-z_0-9]+)"/g)].map((m) => m[1]).sort();
    assert.deepEqual(pyArgs, ['autostart', 'camera0', 'camera1', 'joint_states', 'log_level', 'mode', 'namespace', 'params_file', 'use_sim_time']);
    assert.deepEqual(xmlArgs, pyArgs);
    for (const exe of ['s2_policy_node', 's2_features_node', 's2_policy_head_node']) {
      assert.match(py, new RegExp(`LifecycleNode\\(package='s2_policy', executable='${exe}'`), exe);
      assert.match(xml, new RegExp(`<node pkg="s2_policy" exec="${exe}"`), exe);
    }
  });

  it('every parameter maps onto a config key, and the shipped parameter file parses', () => {
    const shape = configSchema.shape;
    for (const spec of PARAMS) {
      const [section] = spec.name.split('.');
      if (spec.name === 'autostart' || spec.name === 'config_file') continue;
      assert.ok(section in shape, `${spec.name} → config section ${section}`);
    }
    const dir = tempDir('s2-params-');
    const file = join(dir, 'params.yaml');
    writeFileSync(file, read('config/s2_policy.yaml'));
    const cfg = loadParamsFile(file);
    assert.deepEqual(cfg.cameras, [
      { name: 'wrist', topic: 'camera0/image_raw', transport: 'raw', qos: 'sensor_data' },
      { name: 'front', topic: 'camera1/image_raw/compressed', transport: 'compressed', qos: 'sensor_data' },
    ]);
    assert.deepEqual(cfg.s2.img_sizes, [224, 448]);
    assert.equal(cfg.control?.rate_hz, 20);
    assert.equal(cfg.backbone.model, join(dir, 'models/backbone.onnx'));
    assert.equal(cfg.s2.num_prefix_token, undefined, '-1 means detect');
  });

  it('writes a parameter file from a config that reads back as the same config', () => {
    const dir = tempDir('s2-params-');
    const original = loadParamsFile(
      (() => {
        const f = join(dir, 'a.yaml');
        writeFileSync(f, read('config/s2_policy.yaml'));
        return f;
      })(),
    );
    const f2 = join(dir, 'b.yaml');
    const text = stringifyParamsFile(configToParams(original), ['s2_policy']);
    assert.match(text, /rate_hz: 20\.0\n/, 'doubles keep a decimal point for ROS 2');
    assert.match(text, /- -0\.5\n/);
    writeFileSync(f2, text);
    assert.deepEqual(loadParamsFile(f2), original);
  });

  it('names a bad parameter', () => {
    const dir = tempDir('s2-params-');
    const file = join(dir, 'p.yaml');
    const base = { backbone: { model: 'b.onnx' }, s2: { img_sizes: ['224x336'] }, cameras: { names: ['a'], topics: ['x'] }, policy: { model: 'p.onnx' } };
    writeFileSync(file, stringify({ s2_policy: { ros__parameters: { ...base, control: { rate_hz: 10, command_type: 'velocity', bogus: 1 } } } }));
    assert.throws(() => loadParamsFile(file), /p\.yaml: unknown parameter control\.bogus/);
    writeFileSync(file, stringify({ s2_policy: { ros__parameters: { ...base, control: { rate_hz: -1, command_type: 'velocity' } } } }));
    assert.throws(() => loadParamsFile(file), /p\.yaml: control\.rate_hz: /);
    writeFileSync(file, stringify({ other_node: { ros__parameters: base } }));
    assert.throws(() => loadParamsFile(file), /no 's2_policy: ros__parameters:' section/);
    const values = flattenParams({ ...base, cameras: { names: ['a', 'b'], topics: ['x'] } });
    assert.throws(() => paramsToConfigObject(values), /cameras\.topics has 1 entries, cameras\.names 2/);
    assert.deepEqual(configFromParams(flattenParams(base), 'p').s2.img_sizes, [[224, 336]]);
  });

  it('ingests an Image shaped as rclnodejs delivers it (typed-array data, numeric stamp)', async () => {
    const ingester = createIngester({ crop: 'center', resize: 'reference', baseSize: [4, 4], normalization: NORMALIZATION_PRESETS.none, maxPixels: 1e6 });
    const data = new Uint8Array(4 * 4 * 3).map((_, i) => (i % 3 === 0 ? 255 : 0));
    // rclnodejs: uint8[] as Uint8Array, is_bigendian as a number, header.stamp as {sec, nanosec}.
    const msg = { header: { stamp: { sec: 12, nanosec: 5 }, frame_id: 'cam' }, height: 4, width: 4, encoding: 'rgb8', is_bigendian: 0, step: 12, data };
    const r = await ingester.ingest(msg, 'raw');
    assert.ok(r.ok);
    if (r.ok) {
      assert.deepEqual(r.base.dims, [1, 3, 4, 4]);
      assert.ok(r.base.data.subarray(0, 16).every((v) => Math.abs(v - 1) < 1e-6) && r.base.data.subarray(16).every((v) => v === 0));
    }
  });

  it('builds the action and diagnostics messages the node publishes', () => {
    const cmd = { tick: 3, at: 150, values: Float32Array.of(0.1, -0.2), state: 'ok' as const };
    const stamp = { sec: 1, nanosec: 2 };
    const fm = actionMessage(cmd, stamp, { interface: 'float64_multi_array', commandType: 'velocity', periodMs: 50 });
    assert.ok('data' in fm && fm.data instanceof Float64Array && Math.abs(fm.data[1] + 0.2) < 1e-7);
    // A JointTrajectory: stamped zero (start on receipt), one point two periods ahead, positions only.
    const jt = actionMessage(cmd, stamp, { interface: 'joint_trajectory', commandType: 'position', jointNames: ['a', 'b'], periodMs: 50 });
    assert.ok('points' in jt);
    assert.deepEqual(jt.header.stamp, { sec: 0, nanosec: 0 });
    assert.deepEqual(Array.from(jt.points[0].positions), [Math.fround(0.1), Math.fround(-0.2)]);
    assert.equal(jt.points[0].velocities.length, 0);
    assert.deepEqual(jt.points[0].time_from_start, { sec: 0, nanosec: 100_000_000 });
    // A velocity command: the measured positions advanced by v·T (T = 0.1 s), still positions only.
    const measured = Float64Array.of(1, 2);
    const jv = actionMessage({ ...cmd, measured }, stamp, { interface: 'joint_trajectory', commandType: 'velocity', jointNames: ['a', 'b'], periodMs: 50 });
    assert.ok('points' in jv);
    const p = Array.from(jv.points[0].positions);
    assert.ok(Math.abs(p[0] - (1 + 0.1 * 0.1)) < 1e-7 && Math.abs(p[1] - (2 - 0.2 * 0.1)) < 1e-7, `positions ${p.join(', ')}`);
    // A state received 20 ms before the tick: the arm has moved on since, so the span is T + 20 ms; an age over one
    // period counts as one period.
    const aged = (ms: number) => {
      const m = actionMessage({ ...cmd, measured, measuredAgeMs: ms }, stamp, {
        interface: 'joint_trajectory',
        commandType: 'velocity',
        jointNames: ['a', 'b'],
        periodMs: 50,
      });
      return 'points' in m ? Array.from(m.points[0].positions) : [];
    };
    assert.ok(Math.abs(aged(20)[0] - (1 + 0.1 * 0.12)) < 1e-7, `positions ${aged(20).join(', ')}`);
    assert.ok(Math.abs(aged(500)[1] - (2 - 0.2 * 0.15)) < 1e-7, `positions ${aged(500).join(', ')}`);
    assert.equal(jv.points[0].velocities.length, 0);
    assert.throws(
      () => actionMessage(cmd, stamp, { interface: 'joint_trajectory', commandType: 'velocity', jointNames: ['a', 'b'], periodMs: 50 }),
      /a velocity command needs the 2 measured joint positions/,
    );
    assert.throws(
      () => actionMessage(cmd, stamp, { interface: 'twist_stamped', commandType: 'velocity', periodMs: 50 }),
      /twist_stamped needs 6 action values/,
    );
    const m = new Metrics();
    m.state = 'stale';
    m.drop('frame:busy', 3);
    const d = diagnosticsMessage(m.snapshot(1000), stamp, 's2_policy: pipeline');
    assert.equal(d.status[0].level, 1);
    assert.ok(d.status[0].values.some((kv) => kv.key === 'dropped_frame:busy' && kv.value === '3'));
  });
});

describe('ROS 2 parameter files as the node reads them', () => {
  it('applies /**, name, /name and /ns/name sections, coerces doubles, and follows __node/__ns remaps', () => {
    const dir = tempDir('s2-overrides-');
    const f1 = join(dir, 'one.yaml');
    const f2 = join(dir, 'two.yaml');
    writeFileSync(f1, stringify({ '/**': { ros__parameters: { control: { rate_hz: 10 } } }, s2_policy: { ros__parameters: { sync: { slop_ms: 30 } } } }));
    writeFileSync(
      f2,
      stringify({ '/robot/arm_policy': { ros__parameters: { autostart: true, image: { base_size: 96 } } }, other: { ros__parameters: { autostart: false } } }),
    );
    const argv = ['--ros-args', '-r', '__node:=arm_policy', '-r', '__ns:=/robot', '--params-file', f1, '--params-file', f2];
    const who = remappedName(argv, 's2_policy', '');
    assert.deepEqual(who, { name: 'arm_policy', namespace: '/robot' });
    const o = rosArgParams(argv, who.name, who.namespace);
    assert.deepEqual(Object.fromEntries(o), { 'control.rate_hz': 10, autostart: true, 'image.base_size': '96' });
    writeFileSync(f2, stringify({ s2_policy: { ros__parameters: { backbone: { model: 'models/b.onnx' }, policy: { model: '/abs/p.onnx' } } } }));
    const paths = rosArgParams(['--params-file', f2], 's2_policy', '');
    assert.equal(paths.get('backbone.model'), join(dir, 'models/b.onnx'));
    assert.equal(paths.get('policy.model'), '/abs/p.onnx');
    const asDefault = rosArgParams(['--params-file', f1], 's2_policy', '');
    assert.equal(asDefault.get('sync.slop_ms'), 30);
    writeFileSync(f1, stringify({ '/**': { ros__parameters: { control: { enabled: 'yes' } } } }));
    assert.throws(() => rosArgParams(['--params-file', f1], 's2_policy', ''), /one\.yaml: parameter control\.enabled must be bool, got "yes"/);
  });

  it('applies --params-file and -p in the order given, as rcl does: a later value wins, for every key', () => {
    const dir = tempDir('s2-precedence-');
    const file = join(dir, 'params.yaml');
    const other = join(dir, 'other.yaml');
    writeFileSync(file, stringify({ s2_policy: { ros__parameters: { control: { rate_hz: 20, action_topic: '~/joint_trajectory', enabled: true } } } }));
    writeFileSync(other, stringify({ '/**': { ros__parameters: { control: { rate_hz: 5 } } } }));
    const pAfter = ['--ros-args', '--params-file', file, '-p', 'control.rate_hz:=10.0', '-p', 'control.action_topic:=/arm/commands'];
    const o = rosArgParams(pAfter, 's2_policy', '');
    assert.equal(o.get('control.rate_hz'), 10);
    assert.equal(o.get('control.action_topic'), '/arm/commands');
    assert.equal(o.get('control.enabled'), true, 'a key no -p names keeps the file value');
    // -p before the file: the file wins; a second file after both wins over both.
    assert.equal(rosArgParams(['-p', 'control.rate_hz:=10', '--params-file', file], 's2_policy', '').get('control.rate_hz'), 20);
    assert.equal(rosArgParams([...pAfter, '--params-file', other], 's2_policy', '').get('control.rate_hz'), 5);
    // use_sim_time in a '/name' section, as launch_ros writes a launch file's parameters (rclnodejs would miss it).
    const launched = join(dir, 'launch_params.yaml');
    writeFileSync(launched, stringify({ '/s2_policy': { ros__parameters: { use_sim_time: true, 'control.rate_hz': 7.0 } } }));
    const l = rosArgParams(['--params-file', file, '--params-file', launched], 's2_policy', '');
    assert.equal(l.get('use_sim_time'), true);
    assert.equal(l.get('control.rate_hz'), 7);
    // Every kind of value, read as YAML as rcl reads it; node-qualified -p applies only to this node.
    const kinds = rosArgParams(
      [
        '-p',
        'control.enabled:=false',
        '-p',
        'control.lower:=[-1, -2]',
        '-p',
        'cameras.names:=[wrist, front]',
        '-p',
        'image.base_size:=224',
        '-p',
        'other_node:control.rate_hz:=99',
        '-p',
        's2_policy:watchdog.stale_after_ms:=250',
      ],
      's2_policy',
      '',
    );
    assert.deepEqual(Object.fromEntries(kinds), {
      'control.enabled': false,
      'control.lower': [-1, -2],
      'cameras.names': ['wrist', 'front'],
      'image.base_size': '224',
      'watchdog.stale_after_ms': 250,
    });
    assert.throws(
      () => rosArgParams(['-p', 'control.enabled:=maybe'], 's2_policy', ''),
      /-p control\.enabled:=maybe: parameter control\.enabled must be bool, got "maybe"/,
    );
    assert.throws(() => rosArgParams(['-p', 'control.rate_hz'], 's2_policy', ''), /-p control\.rate_hz: expected name:=value/);
  });
});
