// The built-in simulation as a ROS 2 node: publishes the overhead camera, joint states and /clock, and executes the
// policy node's actions (std_msgs/Float64MultiArray joint velocities), so the whole system runs with `ros2 launch`.
// With arm_joint_states_topic set, the arm is a ros2_control arm instead: the simulation reads its pose from that
// topic (joint_state_broadcaster's /joint_states) and leaves executing the actions to the arm's controller. With
// expert_topic set, the scripted expert drives the arm as a teleoperator would, publishing each command it executes
// on that topic, so that `ros2 bag record` records demonstrations: camera, joint states and commands.
import rclnodejs from 'rclnodejs';
import { UserError } from '../errors.js';
import { JOINT_NAMES, TabletopSim, type StepResult } from '../sim/tabletop.js';

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
  /** '' : the simulation integrates the actions itself; a topic: the arm's pose comes from its joint states. */
  arm_joint_states_topic: '',
  /** The arm's JointTrajectoryController topic, used to bring the arm to each episode's start pose. */
  arm_trajectory_topic: '/arm_controller/joint_trajectory',
  /** '': the policy's actions drive the arm; a topic: the scripted expert does, publishing its commands there. */
  expert_topic: '',
  /** A camera frame every this many control periods (1: every period, the control rate). */
  camera_every: 1,
};

type Pub = { publish(m: object): void };

/** Within this of the start pose (rad per joint), a ros2_control arm is placed. */
const PLACED_RAD = 2e-3;

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
  const INTEGER = rclnodejs.ParameterType.PARAMETER_INTEGER;
  const STRING = rclnodejs.ParameterType.PARAMETER_STRING;
  const seed = param<number>('seed', INTEGER);
  const episodes = param<number>('episodes', INTEGER);
  const cameraTopic = param<string>('camera_topic', STRING);
  const jointTopic = param<string>('joint_states_topic', STRING);
  const actionTopic = param<string>('action_topic', STRING);
  const armTopic = param<string>('arm_joint_states_topic', STRING);
  const armTrajectoryTopic = param<string>('arm_trajectory_topic', STRING);
  const expertTopic = param<string>('expert_topic', STRING);
  const cameraEvery = param<number>('camera_every', INTEGER);
  if (!Number.isInteger(cameraEvery) || cameraEvery < 1) throw new UserError(`camera_every: must be an integer ≥ 1, got ${cameraEvery}`);
  if (expertTopic !== '' && armTopic !== '') throw new UserError('expert_topic: the expert drives the simulated arm; leave arm_joint_states_topic empty');

  const sim = new TabletopSim({ seed });
  const qos = { qos: rclnodejs.QoS.profileSensorData };
  const camera = node.createPublisher('sensor_msgs/msg/Image' as never, cameraTopic, qos) as unknown as Pub;
  const clock = node.createPublisher('rosgraph_msgs/msg/Clock' as never, '/clock') as unknown as Pub;
  const log = node.getLogger();
  let episode = 0;
  let successes = 0;

  /** One simulated control period: the arm moved by the last action, or to where the ros2_control arm is. */
  let advance: () => StepResult | undefined;
  let publishState: () => void;
  /** Before an episode runs: true once the arm is at the episode's start pose. */
  let ready: (elapsedMs: number) => boolean = () => true;
  let onReset: () => void;
  /** Sent after each period's frame (the expert's command). */
  let afterFrame: () => void = () => undefined;
  if (armTopic === '') {
    const joints = node.createPublisher('sensor_msgs/msg/JointState' as never, jointTopic, qos) as unknown as Pub;
    let action: Float32Array = new Float32Array(2);
    if (expertTopic === '') {
      node.createSubscription('std_msgs/msg/Float64MultiArray' as never, actionTopic, (m: unknown) => {
        const d = (m as { data: ArrayLike<number> }).data;
        if (d.length === 2 && Number.isFinite(d[0]) && Number.isFinite(d[1])) action = Float32Array.of(d[0], d[1]);
      });
      publishState = () => joints.publish(sim.jointState());
    } else {
      // The expert sees the state just published and commands from it; the command moves the arm at the next
      // period, as a policy's would: a recording holds state k, frame k, then command k, in that order.
      const commands = node.createPublisher('std_msgs/msg/Float64MultiArray' as never, expertTopic) as unknown as Pub;
      publishState = () => {
        joints.publish(sim.jointState());
        action = sim.expertAction();
        afterFrame = () => commands.publish({ layout: { dim: [], data_offset: 0 }, data: Array.from(action) });
      };
      // Before the first episode: every recorded topic has a subscriber (the recorder), so no demonstration starts
      // unrecorded.
      const topics = [cameraTopic, jointTopic, expertTopic];
      let recorderNoticed = false;
      ready = () => {
        if (recorderNoticed) return true;
        if (!topics.every((t) => node.countSubscribers(t) > 0)) return false;
        recorderNoticed = true;
        log.info(`${topics.join(', ')} have subscribers: starting`);
        return true;
      };
    }
    advance = () => sim.step(action);
    onReset = () => (action = new Float32Array(2));
  } else {
    // The arm's joint_state_broadcaster publishes the joint states the policy reads; the simulation only renders
    // the arm where the controller has put it. Between episodes the simulated clock stands still (the policy node,
    // on simulated time, sends nothing), and the arm is brought to the next start pose through its controller.
    let measured: number[] | undefined;
    node.createSubscription('sensor_msgs/msg/JointState' as never, armTopic, { enableTypedArray: true }, (m: unknown) => {
      const js = m as { name: string[]; position: ArrayLike<number> };
      const q = JOINT_NAMES.map((n) => js.position[js.name.indexOf(n)]);
      if (q.every((x) => Number.isFinite(x))) measured = q;
    });
    const trajectory = node.createPublisher('trajectory_msgs/msg/JointTrajectory' as never, armTrajectoryTopic) as unknown as Pub;
    advance = () => (measured ? sim.stepTo(measured) : undefined);
    publishState = () => undefined;
    let lastPlacing = -Infinity;
    let policyNoticed = false;
    ready = (elapsedMs: number) => {
      // Wait for the policy node's publisher on the controller's topic, so no episode runs without a policy.
      if (!policyNoticed) {
        if (node.countPublishers(armTrajectoryTopic) < 2) return false;
        policyNoticed = true;
        log.info(`a policy publishes on ${armTrajectoryTopic}: starting`);
      }
      const start = sim.joints;
      if (measured && measured.every((x, i) => Math.abs(x - start[i]) < PLACED_RAD)) return true;
      if (elapsedMs - lastPlacing >= 200) {
        lastPlacing = elapsedMs;
        trajectory.publish({
          header: { stamp: { sec: 0, nanosec: 0 }, frame_id: '' },
          joint_names: [...JOINT_NAMES],
          points: [{ positions: [...start], velocities: [], accelerations: [], effort: [], time_from_start: { sec: 0, nanosec: 500_000_000 } }],
        });
      }
      return false;
    };
    onReset = () => (lastPlacing = -Infinity);
  }
  const publish = () => {
    clock.publish({ clock: sim.time });
    publishState();
    if (sim.status.steps % cameraEvery === 0) camera.publish(sim.render());
    afterFrame();
  };
  rclnodejs.spin(node);
  return new Promise<number>((resolve) => {
    const finish = (code: number) => {
      clearInterval(timer);
      log.info(`simulation: ${successes}/${episode} episodes succeeded`);
      node.destroy();
      rclnodejs.shutdown();
      resolve(code);
    };
    // Real time: one control period per timer tick; the action last received (or the arm's pose) moves the arm.
    const t0 = performance.now();
    let running = false;
    const timer = setInterval(() => {
      if (!running) {
        if (!ready(performance.now() - t0)) return;
        running = true;
        publish();
        return;
      }
      const r = advance();
      if (!r) return;
      if (r.done) {
        episode++;
        if (r.success) successes++;
        log.info(
          `episode ${episode}/${episodes} (seed ${seed + episode - 1}): ${r.success ? 'success' : 'failure'} after ${r.steps} steps, final distance ${r.distance.toFixed(3)} m`,
        );
        if (episode >= episodes) return finish(0);
        sim.reset(seed + episode);
        onReset();
        running = false;
        if (!ready(performance.now() - t0)) return;
        running = true;
      }
      publish();
    }, sim.options.dt * 1000);
    rclnodejs.removeSignalHandlers(); // finish() shuts rclnodejs down itself, after destroying the node
    process.once('SIGINT', () => finish(0));
    process.once('SIGTERM', () => finish(0));
  });
}
