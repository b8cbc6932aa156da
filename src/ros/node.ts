// The ROS 2 node: an rclnodejs lifecycle node that plugs live camera and joint-state topics into the same pipeline
// the replay uses, and publishes actions, S2Features and /diagnostics. The only module that imports rclnodejs.
import { MessageReader } from '@foxglove/rosmsg2-serialization';
import rclnodejs from 'rclnodejs';
import { registeredDefinitions } from '../msgs/definitions.js';
import { Subject, asyncScheduler, type SchedulerLike, type Subscription as RxSubscription } from 'rxjs';
import { parseConfig, type Config } from '../config/config.js';
import { UserError } from '../errors.js';
import type { CompressedImageMsg, ImageMsg, JointStateMsg, S2FeaturesMsg, Time } from '../msgs/types.js';
import { ManualClock } from '../pipeline/clock.js';
import type { ActionCommand } from '../pipeline/controller.js';
import { FeatureExtractor } from '../pipeline/extractor.js';
import { ACTION_TYPES, actionMessage, diagnosticsMessage, featureResultFromMessage, featuresMessage, msToTime } from '../pipeline/messages.js';
import type { CameraFrame } from '../pipeline/operators.js';
import { PolicyPipeline, type FeatureResult } from '../pipeline/pipeline.js';
import { PolicyHead } from '../policy/head.js';
import { PARAMS, paramFileOverrides, paramsToConfigObject, remappedName, type ParamSpec, type ParamValue } from './params.js';

const { CallbackReturnCode } = rclnodejs.lifecycle;

const TYPE: Record<ParamSpec['type'], rclnodejs.ParameterType> = {
  bool: rclnodejs.ParameterType.PARAMETER_BOOL,
  integer: rclnodejs.ParameterType.PARAMETER_INTEGER,
  double: rclnodejs.ParameterType.PARAMETER_DOUBLE,
  string: rclnodejs.ParameterType.PARAMETER_STRING,
  integer_array: rclnodejs.ParameterType.PARAMETER_INTEGER_ARRAY,
  double_array: rclnodejs.ParameterType.PARAMETER_DOUBLE_ARRAY,
  string_array: rclnodejs.ParameterType.PARAMETER_STRING_ARRAY,
};

/** Parameter values as plain JS values (rclnodejs gives integers as bigint). */
function plain(v: unknown): ParamValue {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return (v as unknown[]).map((x) => (typeof x === 'bigint' ? Number(x) : x)) as ParamValue;
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>).map(Number);
  return v as ParamValue;
}

function rosValue(spec: ParamSpec, v: ParamValue): unknown {
  if (spec.type === 'integer') return BigInt(Math.trunc(v as number));
  if (spec.type === 'integer_array') return (v as number[]).map((x) => BigInt(Math.trunc(x)));
  return v;
}

function stampOf(t: { sec: number | bigint; nanosec: number | bigint }): Time {
  return { sec: Number(t.sec), nanosec: Number(t.nanosec) };
}

/** A ROS name resolved for this node: '~/x' stays private to the node, others are used as given. */
const topicName = (t: string) => t;

/** combined: features and policy in one process; features: publishes S2Features only; policy_head: consumes them. */
export type NodeMode = 'combined' | 'features' | 'policy_head';

export const DEFAULT_NODE_NAMES: Record<NodeMode, string> = { combined: 's2_policy', features: 's2_features', policy_head: 's2_policy_head' };

export interface NodeRunOptions {
  mode?: NodeMode;
  nodeName?: string;
  namespace?: string;
  argv?: string[];
}

/** A publisher of our message shapes (rclnodejs checks them against the ROS type at publish time). */
interface Pub {
  publish(message: object): void;
}

/** Live parts created on activate and destroyed on deactivate. */
interface Active {
  frames: Subject<CameraFrame>;
  joints: Subject<JointStateMsg>;
  subs: rclnodejs.Subscription[];
  rx: RxSubscription[];
}

export class S2PolicyNode {
  readonly node: rclnodejs.lifecycle.LifecycleNode;
  config?: Config;
  pipeline?: PolicyPipeline;
  private extractor?: FeatureExtractor;
  private head?: PolicyHead;
  private loading?: Promise<void>;
  private active?: Active;
  private actionPub?: Pub;
  private featuresPub?: Pub;
  private diagPub?: Pub;
  private clock?: ManualClock;
  private clockSub?: rclnodejs.Subscription;
  private lastError?: string;

  constructor(
    readonly name = 's2_policy',
    namespace = '',
    readonly mode: NodeMode = 'combined',
    argv: readonly string[] = [],
  ) {
    // Parameter files are read here, not left to rclnodejs, which only applies sections named exactly like the node
    // (not '/name'), and refuses an integer for a double or integer arrays from a file.
    const options = new rclnodejs.NodeOptions();
    const actual = remappedName(argv, name, namespace);
    for (const [k, v] of paramFileOverrides(argv, actual.name, actual.namespace)) {
      const spec = PARAMS.find((p) => p.name === k) as ParamSpec;
      options.parameterOverrides.push(new rclnodejs.Parameter(k, TYPE[spec.type], rosValue(spec, v)));
    }
    this.node = rclnodejs.createLifecycleNode(name, namespace, undefined, options);
    for (const spec of PARAMS) {
      this.node.declareParameter(
        new rclnodejs.Parameter(spec.name, TYPE[spec.type], rosValue(spec, spec.default)),
        new rclnodejs.ParameterDescriptor(spec.name, TYPE[spec.type], spec.description, spec.readOnly),
      );
    }
    this.node.addOnSetParametersCallback((params) => this.onSetParameters(params));
    this.node.registerOnConfigure(() => this.onConfigure());
    this.node.registerOnActivate(() => this.onActivate());
    this.node.registerOnDeactivate(() => this.onDeactivate());
    this.node.registerOnCleanup(() => this.onCleanup());
    this.node.registerOnShutdown(() => this.onCleanup());
    type Reply = { send(response: object): void };
    const service = (type: string, name: string, handle: (request: Record<string, unknown>) => object): void => {
      this.node.createService(type as never, name, (request: unknown, response: unknown) => (response as Reply).send(handle(request as Record<string, unknown>)));
    };
    service('std_srvs/srv/SetBool', '~/enable', (req) => {
      const on = req.data === true;
      if (this.pipeline) this.pipeline.enabled = on;
      return { success: this.pipeline !== undefined, message: this.pipeline ? `actions ${on ? 'enabled' : 'disabled'}` : 'not configured' };
    });
    service('std_srvs/srv/Trigger', '~/reset', () => {
      this.pipeline?.reset();
      return { success: this.pipeline !== undefined, message: this.pipeline ? 'chunk buffers and ensembling state cleared' : 'not configured' };
    });
  }

  private log(level: 'info' | 'warn' | 'error', msg: string): void {
    const logger = this.node.getLogger();
    if (level === 'info') logger.info(msg);
    else if (level === 'warn') logger.warn(msg);
    else logger.error(msg);
  }

  private paramValues(): Map<string, ParamValue> {
    const values = new Map<string, ParamValue>();
    for (const spec of PARAMS) values.set(spec.name, plain(this.node.getParameter(spec.name).value));
    return values;
  }

  /** The typed config from the current parameters (throws a UserError naming the parameter). */
  readConfig(): Config {
    return parseConfig(paramsToConfigObject(this.paramValues()), `${this.name} parameters`);
  }

  private useSimTime(): boolean {
    return this.node.hasParameter('use_sim_time') && this.node.getParameter('use_sim_time').value === true;
  }

  /** Loads and warms up the models (async); the configure transition waits for it where it can (autostart). */
  load(): Promise<void> {
    this.loading ??= (async () => {
      const config = this.config as Config;
      if (this.mode !== 'policy_head') this.extractor = await FeatureExtractor.create(config);
      if (this.mode !== 'features') {
        this.head = await PolicyHead.load({
          model: config.policy.model,
          stats: config.policy.stats,
          featuresInput: config.policy.features_input,
          stateInput: config.policy.state_input,
          output: config.policy.output,
        });
      }
      if (this.extractor && this.head) {
        const expected = this.extractor.layout.perCamera * config.cameras.length;
        if (this.head.shape.featureDim !== expected) {
          throw new UserError(`${config.policy.model}: takes ${this.head.shape.featureDim} features, the cameras give ${config.cameras.length} × ${this.extractor.layout.perCamera} = ${expected}`);
        }
      }
      let scheduler: SchedulerLike = asyncScheduler;
      if (this.useSimTime()) {
        // Simulated time: the control clock and the watchdog follow /clock.
        this.clock = new ManualClock(0);
        scheduler = this.clock;
      }
      this.pipeline = new PolicyPipeline(config, this.extractor, this.head, scheduler);
      const l = this.extractor?.layout;
      const h = this.head?.shape;
      this.log('info', `configured (${this.mode}): ${l ? `${config.cameras.length} camera(s), S² sizes ${l.scaleSizes.map((x) => `${x[0]}x${x[1]}`).join(',')}, ${l.perCamera} features per camera` : 'features from S2Features'}${h ? `, chunk ${h.chunk}×${h.actionDim}` : ''}`);
    })().catch((e: unknown) => {
      this.lastError = e instanceof Error ? e.message : String(e);
      this.log('error', `configure failed: ${this.lastError}`);
      this.loading = undefined;
      throw e;
    });
    return this.loading;
  }

  private onConfigure(): rclnodejs.lifecycle.CallbackReturnCode {
    try {
      this.config = this.readConfig();
    } catch (e) {
      this.log('error', (e as Error).message);
      return CallbackReturnCode.FAILURE;
    }
    void this.load().catch(() => undefined);
    return CallbackReturnCode.SUCCESS;
  }

  private onActivate(): rclnodejs.lifecycle.CallbackReturnCode {
    if (!this.config) return CallbackReturnCode.FAILURE;
    const config = this.config;
    const c = config.control;
    const publisher = (type: string, topic: string): Pub => this.node.createPublisher(type as never, topic);
    if (this.mode !== 'features') this.actionPub = publisher(ACTION_TYPES[c.action_interface], topicName(c.action_topic));
    if (this.mode === 'features' || (this.mode === 'combined' && config.features.publish)) this.featuresPub = publisher('s2_policy/msg/S2Features', topicName(config.features.topic));
    this.diagPub = publisher('diagnostic_msgs/msg/DiagnosticArray', '/diagnostics');
    const frames = new Subject<CameraFrame>();
    const joints = new Subject<JointStateMsg>();
    const active: Active = { frames, joints, subs: [], rx: [] };
    const sensorQos = rclnodejs.QoS.profileSensorData;
    const received = new Subject<FeatureResult>();
    if (this.mode === 'policy_head') {
      active.subs.push(
        this.node.createSubscription('s2_policy/msg/S2Features' as never, config.features.topic, { qos: sensorQos, enableTypedArray: true }, (msg: unknown) => {
          const m = msg as S2FeaturesMsg;
          m.header.stamp = stampOf(m.header.stamp);
          try {
            received.next(featureResultFromMessage(m, this.pipeline?.scheduler.now() ?? Date.now()));
          } catch (e) {
            this.pipeline?.metrics.drop('features:bad_message');
            this.log('warn', (e as Error).message);
          }
        }),
      );
    }
    // Images arrive serialized and are decoded here: rclnodejs copies the CDR payload once into a Buffer and the
    // decoder returns the pixel data as a view into it (npm run bench:ros2 measured this cheaper than rclnodejs's
    // own typed-array deserialisation). A message that does not decode is dropped and counted.
    for (const cam of this.mode === 'policy_head' ? [] : config.cameras) {
      const type = cam.transport === 'raw' ? 'sensor_msgs/msg/Image' : 'sensor_msgs/msg/CompressedImage';
      const reader = new MessageReader(registeredDefinitions(type));
      active.subs.push(
        this.node.createSubscription(type as never, cam.topic, { qos: sensorQos, isRaw: true }, (raw: unknown) => {
          const buf = raw as Buffer;
          let m: ImageMsg | CompressedImageMsg;
          try {
            m = reader.readMessage<ImageMsg | CompressedImageMsg>(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
          } catch (e) {
            this.pipeline?.metrics.drop('frame:rejected:undecodable_cdr');
            this.lastError = `${cam.topic}: ${(e as Error).message.split('\n')[0]}`;
            return;
          }
          frames.next({ camera: cam.name, kind: cam.transport, msg: m });
        }),
      );
    }
    if (config.joint_states) {
      active.subs.push(
        this.node.createSubscription('sensor_msgs/msg/JointState' as never, config.joint_states.topic, { qos: sensorQos, enableTypedArray: true }, (msg: unknown) => {
          const m = msg as JointStateMsg;
          m.header.stamp = stampOf(m.header.stamp);
          joints.next(m);
        }),
      );
    }
    if (this.clock && !this.clockSub) {
      const clock = this.clock;
      this.clockSub = this.node.createSubscription('rosgraph_msgs/msg/Clock' as never, '/clock', { qos: rclnodejs.QoS.profileSystemDefault }, (msg: unknown) => {
        const t = stampOf((msg as { clock: Time }).clock);
        clock.jumpTo(t.sec * 1000 + t.nanosec / 1e6);
      });
    }
    const start = () => {
      const pipeline = this.pipeline as PolicyPipeline;
      const out = this.mode === 'policy_head' ? pipeline.connectFeatures({ features: received, joints }) : pipeline.connect({ frames, joints });
      const periodMs = 1000 / c.rate_hz;
      active.rx.push(out.actions.subscribe((cmd) => this.publishAction(cmd, periodMs)));
      if (this.featuresPub) {
        const pub = this.featuresPub;
        const layout = (this.extractor as FeatureExtractor).layout;
        active.rx.push(out.features.subscribe((f) => pub.publish(featuresMessage(f, layout))));
      }
      const diag = this.diagPub;
      if (diag) active.rx.push(out.metrics.subscribe((m) => diag.publish(diagnosticsMessage(m, this.now(), `${this.name}: pipeline`, this.name))));
    };
    this.active = active;
    // Subscriptions are live at once; actions start as soon as the models are loaded (usually already).
    this.load().then(
      () => {
        if (this.active === active) start();
      },
      () => this.log('error', 'not publishing actions: the models failed to load'),
    );
    return CallbackReturnCode.SUCCESS;
  }

  private now(): Time {
    if (this.clock) return msToTime(this.clock.now());
    const t = this.node.now().secondsAndNanoseconds;
    return { sec: Number(t.seconds), nanosec: Number(t.nanoseconds) };
  }

  private publishAction(cmd: ActionCommand, periodMs: number): void {
    const c = (this.config as Config).control;
    this.actionPub?.publish(actionMessage(cmd, this.now(), { interface: c.action_interface, commandType: c.command_type, jointNames: c.joint_names, periodMs }));
  }

  /** Publishes the safe action once (deactivation, shutdown). */
  publishSafeAction(): void {
    const cmd = this.pipeline?.controller.safeCommand(this.clock?.now() ?? Date.now());
    if (cmd && this.config) this.publishAction(cmd, 1000 / this.config.control.rate_hz);
  }

  /** Stops the live streams and subscriptions (deactivate, shutdown). */
  stopActive(): void {
    if (!this.active) return;
    for (const s of this.active.rx) s.unsubscribe();
    for (const s of this.active.subs) this.node.destroySubscription(s);
    this.active.frames.complete();
    this.active.joints.complete();
    this.active = undefined;
  }

  private onDeactivate(): rclnodejs.lifecycle.CallbackReturnCode {
    this.publishSafeAction();
    this.stopActive();
    return CallbackReturnCode.SUCCESS;
  }

  private onCleanup(): rclnodejs.lifecycle.CallbackReturnCode {
    this.stopActive();
    void this.release();
    return CallbackReturnCode.SUCCESS;
  }

  async release(): Promise<void> {
    const loading = this.loading;
    this.loading = undefined;
    await loading?.catch(() => undefined);
    await this.extractor?.release();
    await this.head?.release();
    this.extractor = undefined;
    this.head = undefined;
    this.pipeline = undefined;
  }

  /** Dynamic parameters: checked as a whole config, then applied to the running pipeline. */
  private onSetParameters(params: rclnodejs.Parameter[]): { successful: boolean; reason: string } {
    const values = this.paramValues();
    for (const prm of params) {
      const spec = PARAMS.find((s) => s.name === prm.name);
      if (!spec) continue;
      if (spec.readOnly && this.config) return { successful: false, reason: `${prm.name} is read-only once configured` };
      values.set(prm.name, plain(prm.value));
    }
    let next: Config;
    try {
      next = parseConfig(paramsToConfigObject(values), `${this.name} parameters`);
    } catch (e) {
      return { successful: false, reason: (e as Error).message };
    }
    if (this.config) {
      this.config.control = next.control;
      this.config.watchdog = next.watchdog;
      this.config.policy.ensemble_k = next.policy.ensemble_k;
      this.config.features.publish = next.features.publish;
    }
    if (this.pipeline) {
      const ctl = this.pipeline.controller.o;
      ctl.staleAfterMs = next.watchdog.stale_after_ms;
      ctl.limits = { lower: next.control.lower, upper: next.control.upper, maxDelta: next.control.max_delta };
      this.pipeline.enabled = next.control.enabled;
    }
    return { successful: true, reason: '' };
  }
}

/** Runs the node until SIGINT/SIGTERM; returns the exit code. */
export async function runNode(options: NodeRunOptions = {}): Promise<number> {
  await rclnodejs.init(undefined, options.argv);
  const mode = options.mode ?? 'combined';
  let n: S2PolicyNode;
  try {
    n = new S2PolicyNode(options.nodeName ?? DEFAULT_NODE_NAMES[mode], options.namespace ?? '', mode, options.argv ?? []);
  } catch (e) {
    // Parameter files with the wrong type (e.g. 20 for a double: write 20.0) fail here.
    console.error(`s2-policy: parameters: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
    rclnodejs.shutdown();
    return 2;
  }
  rclnodejs.spin(n.node);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // One safe action, then a clean exit within a second.
    const timer = setTimeout(() => process.exit(0), 900);
    try {
      n.publishSafeAction();
      n.node.getLogger().info(`${signal}: published the safe action, shutting down`);
      // Streams first: a metrics or control tick must not run against a destroyed node.
      n.stopActive();
      await n.release();
      n.node.destroy();
      rclnodejs.shutdown();
    } finally {
      clearTimeout(timer);
      process.exit(0);
    }
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  if (n.node.getParameter('autostart').value === true) {
    n.node.configure();
    try {
      await n.load();
    } catch {
      return 1;
    }
    n.node.activate();
  }
  return await new Promise<number>(() => undefined);
}
