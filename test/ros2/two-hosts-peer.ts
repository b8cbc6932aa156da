// The simulation's halves for the two-host test, each run as its own process inside a network namespace:
// `camera` (the overhead camera, on the features host) and `arm` (joint states and the action consumer, on the
// robot host). The arm also reports, as JSON lines on stdout, every action, every S2Features message and every
// pipeline diagnostic it sees, with the wall-clock time it saw them, so that the test can check them.
import rclnodejs from 'rclnodejs';
import { msToTime } from '../../src/pipeline/messages.js';
import { featuresQos } from '../../src/ros/node.js';
import { TabletopSim } from '../../src/sim/tabletop.js';

type Pub = { publish(m: object): void };

/** Wall-clock time in ms with sub-ms resolution: the clock the nodes stamp with (ROS time is the system clock). */
const wall = () => performance.timeOrigin + performance.now();
const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

/** Renders the simulated scene at `rateHz`, the arm driven by the expert, each frame stamped with the wall clock. */
function camera(node: rclnodejs.Node, topic: string, rateHz: number, seed: number): void {
  const sim = new TabletopSim({ seed });
  const pub = node.createPublisher('sensor_msgs/msg/Image' as never, topic, { qos: rclnodejs.QoS.profileSensorData }) as unknown as Pub;
  let episode = 0;
  setInterval(() => {
    const frame = sim.render();
    frame.header.stamp = msToTime(wall());
    pub.publish(frame);
    if (sim.step(sim.expertAction()).done) sim.reset(seed + ++episode);
  }, 1000 / rateHz);
}

/** The robot host's side: the arm integrates the actions; everything the test checks is reported on stdout. */
function arm(node: rclnodejs.Node, ns: string, rateHz: number, seed: number, featuresTopic: string): void {
  const sim = new TabletopSim({ seed });
  let episode = 0;
  let action = new Float32Array(2);
  const joints = node.createPublisher('sensor_msgs/msg/JointState' as never, `${ns}/joint_states`, {
    qos: rclnodejs.QoS.profileSensorData,
  }) as unknown as Pub;
  node.createSubscription('std_msgs/msg/Float64MultiArray' as never, `${ns}/actions`, (m: unknown) => {
    const v = Array.from((m as { data: ArrayLike<number> }).data);
    emit({ k: 'action', t: wall(), v });
    if (v.length === 2 && v.every((x) => Number.isFinite(x))) action = Float32Array.from(v);
  });
  // Serialized, so the size on the wire is known and 1.2 MB maps are not deserialised here. The CDR payload starts
  // with the 4-byte encapsulation header, then header.stamp (int32 sec, uint32 nanosec), little-endian here.
  node.createSubscription('s2_policy/msg/S2Features' as never, featuresTopic, { qos: featuresQos(), isRaw: true }, (raw: unknown) => {
    const b = raw as Buffer;
    const ms = b.readInt32LE(4) * 1000 + b.readUInt32LE(8) / 1e6;
    emit({ k: 'features', t: wall(), stamp: ms, bytes: b.byteLength });
  });
  node.createSubscription('diagnostic_msgs/msg/DiagnosticArray' as never, '/diagnostics', (m: unknown) => {
    const s = (m as { status: { level: number; message: string; name: string }[] }).status[0];
    if (s?.name.includes('pipeline')) emit({ k: 'diag', t: wall(), node: s.name, level: Number(s.level), message: s.message });
  });
  setInterval(() => {
    const r = sim.step(action);
    if (r.done) {
      sim.reset(seed + ++episode);
      action = new Float32Array(2);
    }
    const js = sim.jointState();
    js.header.stamp = msToTime(wall());
    joints.publish(js);
  }, 1000 / rateHz);
  // The QoS the features topic's subscribers asked for, as the graph reports it (the policy head's among them).
  setInterval(() => {
    const subs = node.getSubscriptionsInfoByTopic(featuresTopic, false) as unknown as {
      node_name: string;
      qos_profile: { reliability: number; history: number; depth: number };
    }[];
    for (const s of subs)
      emit({ k: 'qos', node: s.node_name, reliability: s.qos_profile.reliability, history: s.qos_profile.history, depth: s.qos_profile.depth });
  }, 2000);
}

async function main(): Promise<void> {
  const [role, ns, rate, seed, featuresTopic] = process.argv.slice(2);
  await rclnodejs.init();
  const node = rclnodejs.createNode(`two_hosts_${role}`);
  if (role === 'camera') camera(node, `${ns}/camera/image_raw`, Number(rate), Number(seed));
  else if (role === 'arm') arm(node, ns, Number(rate), Number(seed), featuresTopic ?? `${ns}/features`);
  else throw new Error(`two-hosts-peer: role must be camera or arm, got '${role}'`);
  rclnodejs.spin(node);
  emit({ k: 'ready', t: wall() });
  const stop = () => {
    node.destroy();
    rclnodejs.shutdown();
    process.exit(0);
  };
  rclnodejs.removeSignalHandlers();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

await main();
