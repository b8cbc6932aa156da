// The built-in simulation as a ROS 2 node: publishes the overhead camera, joint states and /clock, and executes the
// policy node's actions (std_msgs/Float64MultiArray joint velocities), so the whole system runs with `ros2 launch`.
import rclnodejs from 'rclnodejs';
import { TabletopSim } from '../sim/tabletop.js';

export interface SimNodeOptions {
  argv?: string[];
  name?: string;
}

const DEFAULTS = {
  seed: 0,
  episodes: 10,
  camera_topic: '/overhead_camera/image_raw',
  joint_states_topic: '/joint_states',
  action_topic: '/s2_policy/actions',
};

/** Runs the simulation node until SIGINT/SIGTERM or the last episode; returns the exit code. */
export async function runSimNode(options: SimNodeOptions = {}): Promise<number> {
  await rclnodejs.init(undefined, options.argv);
  const node = rclnodejs.createNode(options.name ?? 's2_sim');
  const param = <T>(name: keyof typeof DEFAULTS, type: rclnodejs.ParameterType): T => {
    const def = DEFAULTS[name];
    node.declareParameter(new rclnodejs.Parameter(name, type, typeof def === 'number' ? BigInt(def) : def));
    const v = node.getParameter(name).value as unknown;
    return (typeof v === 'bigint' ? Number(v) : v) as T;
  };
  const seed = param<number>('seed', rclnodejs.ParameterType.PARAMETER_INTEGER);
  const episodes = param<number>('episodes', rclnodejs.ParameterType.PARAMETER_INTEGER);
  const cameraTopic = param<string>('camera_topic', rclnodejs.ParameterType.PARAMETER_STRING);
  const jointTopic = param<string>('joint_states_topic', rclnodejs.ParameterType.PARAMETER_STRING);
  const actionTopic = param<string>('action_topic', rclnodejs.ParameterType.PARAMETER_STRING);

  const sim = new TabletopSim({ seed });
  const qos = { qos: rclnodejs.QoS.profileSensorData };
  const camera = node.createPublisher('sensor_msgs/msg/Image' as never, cameraTopic, qos) as unknown as { publish(m: object): void };
  const joints = node.createPublisher('sensor_msgs/msg/JointState' as never, jointTopic, qos) as unknown as { publish(m: object): void };
  const clock = node.createPublisher('rosgraph_msgs/msg/Clock' as never, '/clock') as unknown as { publish(m: object): void };
  let action = new Float32Array(2);
  node.createSubscription('std_msgs/msg/Float64MultiArray' as never, actionTopic, (m: unknown) => {
    const d = (m as { data: ArrayLike<number> }).data;
    if (d.length === 2 && Number.isFinite(d[0]) && Number.isFinite(d[1])) action = Float32Array.of(d[0], d[1]);
  });
  const log = node.getLogger();
  let episode = 0;
  let successes = 0;
  const publish = () => {
    clock.publish({ clock: sim.time });
    joints.publish(sim.jointState());
    camera.publish(sim.render());
  };
  rclnodejs.spin(node);
  publish();
  return new Promise<number>((resolve) => {
    const finish = (code: number) => {
      clearInterval(timer);
      log.info(`simulation: ${successes}/${episode} episodes succeeded`);
      node.destroy();
      rclnodejs.shutdown();
      resolve(code);
    };
    // Real time: one control period per timer tick; the action last received drives the arm.
    const timer = setInterval(() => {
      const r = sim.step(action);
      if (r.done) {
        episode++;
        if (r.success) successes++;
        log.info(
          `episode ${episode}/${episodes} (seed ${seed + episode - 1}): ${r.success ? 'success' : 'failure'} after ${r.steps} steps, final distance ${r.distance.toFixed(3)} m`,
        );
        if (episode >= episodes) return finish(0);
        sim.reset(seed + episode);
        action = new Float32Array(2);
      }
      publish();
    }, sim.options.dt * 1000);
    process.once('SIGINT', () => finish(0));
    process.once('SIGTERM', () => finish(0));
  });
}
