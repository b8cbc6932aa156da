// The ROS 2 node: an rclnodejs lifecycle node that plugs live camera and joint-state topics into the same pipeline
// the replay uses, and publishes actions, S2Features and /diagnostics. The only module that imports rclnodejs.
import { MessageReader } from '@foxglove/rosmsg2-serialization';
import rclnodejs from 'rclnodejs';
import { registeredDefinitions } from '../msgs/definitions.js';
import { Subject, asyncScheduler, type SchedulerLike, type Subscription as RxSubscription } from 'rxjs';
import type { Config } from '../config/config.js';
import { ENTRIES } from '../config/table.js';
import { resolveName } from '../msgs/names.js';
import type { CompressedImageMsg, ImageMsg, JointStateMsg, S2FeaturesMsg, Time } from '../msgs/types.js';
import { ManualClock } from '../pipeline/clock.js';
import type { ActionCommand } from '../pipeline/controller.js';
import { ACTION_TYPES, actionMessage, diagnosticsMessage, featureResultFromMessage, featuresMessage, msToTime } from '../pipeline/messages.js';
import type { CameraFrame } from '../pipeline/operators.js';
import { PolicyPipeline, type FeatureResult } from '../pipeline/pipeline.js';
import { buildRuntime, type Runtime } from '../runtime/build.js';
import { PARAMS, configFromParams, remappedName, rosArgParams, withConfigFile, type ParamSpec, type ParamValue } from './params.js';

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

/** combined: features and policy in one process; features: publishes S2Features only; policy_head: consumes them. */
export type NodeMode = 'combined' | 'features' | 'policy_head';

export const DEFAULT_NODE_NAMES: Record<NodeMode, string> = { combined: 's2_policy', features: 's2_features', policy_head: 's2_policy_head' };

export interface NodeRunOptions {
  mode?: NodeMode;
  nodeName?: string;
  namespace?: string;
  argv?: string[];
  /** A YAML config (as replay takes it): its values underneath the parameters given. */
  configFile?: string;
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
  /** The configuration the loaded models were built from (set by a successful configure). */
  config?: Config;
  pipeline?: PolicyPipeline;
  private runtime?: Runtime;
  /** Outcome of the first phase of configure (loading and checking the models), reported by the transition. */
  private prepared?: { ok: true; config: Config; runtime: Runtime } | { ok: false; error: string };
  private preparing?: Promise<void>;
  private active?: Active;
  private actionPub?: Pub;
  private featuresPub?: Pub;
  private diagPub?: Pub;
  private clock?: ManualClock;
  private clockSub?: rclnodejs.Subscription;

  constructor(
    readonly name = 's2_policy',
    namespace = '',
    readonly mode: NodeMode = 'combined',
    argv: readonly string[] = [],
    configFile?: string,
  ) {
    // Parameter files and -p values are read here, in rcl's order (a later one wins), not left to rclnodejs, which
    // only applies sections named exactly like the node (not '/name'), refuses an integer for a double or integer
    // arrays from a file, and lets a file's value win over a later -p. A config_file parameter brings the YAML
    // config's values underneath the others.
    const options = new rclnodejs.NodeOptions();
    const actual = remappedName(argv, name, namespace);
    const given = rosArgParams(argv, actual.name, actual.namespace);
    if (configFile !== undefined && !given.has('config_file')) given.set('config_file', configFile);
    for (const [k, v] of withConfigFile(given)) {
      const spec = PARAMS.find((p) => p.name === k);
      if (spec) options.parameterOverrides.push(new rclnodejs.Parameter(k, TYPE[spec.type], rosValue(spec, v)));
      else if (k === 'use_sim_time') options.parameterOverrides.push(new rclnodejs.Parameter(k, rclnodejs.ParameterType.PARAMETER_BOOL, v));
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
    this.deferConfigureRequests();
    type Reply = { send(response: object): void };
    const service = (type: string, name: string, handle: (request: Record<string, unknown>) => object): void => {
      this.node.createService(type as never, name, (request: unknown, response: unknown) =>
        (response as Reply).send(handle(request as Record<string, unknown>)),
      );
    };
    // The service and the parameter are one switch: the service sets control.enabled, and every parameter change
    // is applied as a whole config that carries the current value, so a later change cannot undo a disable.
    service('std_srvs/srv/SetBool', '~/enable', (req) => {
      const on = req.data === true;
      const r = setResult(this.node.setParameter(new rclnodejs.Parameter('control.enabled', rclnodejs.ParameterType.PARAMETER_BOOL, on)));
      if (!r.successful) return { success: false, message: r.reason };
      return { success: true, message: `actions ${on ? 'enabled' : 'disabled'}${this.pipeline ? '' : ' (applies once configured)'}` };
    });
    service('std_srvs/srv/Trigger', '~/reset', () => {
      this.pipeline?.reset();
      return { success: this.pipeline !== undefined, message: this.pipeline ? 'chunk buffers and ensembling state cleared' : 'not configured' };
    });
  }

  /**
   * rclnodejs runs transition callbacks synchronously, and loading models is asynchronous. A configure request to
   * the change_state service is therefore answered in two phases: first the models are loaded and checked (phase
   * one, asynchronous), then the transition runs and its callback reports that outcome. The lifecycle manager gets
   * its answer only when the node really is configured, or has failed to be.
   */
  private deferConfigureRequests(): void {
    const lc = this.node as unknown as { _onChangeState?: (request: unknown, response: unknown) => void };
    const original = lc._onChangeState?.bind(this.node);
    if (!original) return; // an rclnodejs without this handler: configure() callers must await prepare() first
    lc._onChangeState = (request: unknown, response: unknown) => {
      const t = (request as { transition?: { id?: number; label?: string } }).transition;
      const configure = t?.id === TRANSITION_CONFIGURE || t?.label === 'configure';
      if (configure && stateId(this.node.currentState) === STATE_UNCONFIGURED) void this.prepare().finally(() => original(request, response));
      else original(request, response);
    };
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
    return configFromParams(this.paramValues(), `${this.name} parameters`);
  }

  private useSimTime(): boolean {
    return this.node.hasParameter('use_sim_time') && this.node.getParameter('use_sim_time').value === true;
  }

  /** Phase one of configure: reads the parameters, loads, warms up and checks the models. Never rejects. */
  prepare(): Promise<void> {
    this.preparing ??= (async () => {
      try {
        const config = this.readConfig();
        const source = `${this.name} parameters`;
        const runtime = await buildRuntime(config, source, {
          features: this.mode !== 'policy_head',
          policy: this.mode !== 'features',
          by: `the ${this.mode} node`,
        });
        this.prepared = { ok: true, config, runtime };
      } catch (e) {
        this.prepared = { ok: false, error: e instanceof Error ? e.message : String(e) };
      } finally {
        this.preparing = undefined;
      }
    })();
    return this.preparing;
  }

  /** Phase two: the transition callback reports what prepare() found. */
  private onConfigure(): rclnodejs.lifecycle.CallbackReturnCode {
    const p = this.prepared;
    this.prepared = undefined;
    if (!p) {
      this.log(
        'error',
        'configure failed: the models were not loaded (send configure through the change_state service, or await prepare() before configure())',
      );
      return CallbackReturnCode.FAILURE;
    }
    if (!p.ok) {
      this.log('error', `configure failed: ${p.error}`);
      return CallbackReturnCode.FAILURE;
    }
    let scheduler: SchedulerLike = asyncScheduler;
    if (this.useSimTime()) {
      // Simulated time: the control clock and the watchdog follow /clock.
      this.clock = new ManualClock(0);
      scheduler = this.clock;
    }
    this.config = p.config;
    this.runtime = p.runtime;
    this.pipeline = p.runtime.pipeline(scheduler);
    const l = p.runtime.extractor?.layout;
    const h = p.runtime.head?.shape;
    for (const n of p.runtime.notes) this.log(n.level, n.text);
    this.log(
      'info',
      `configured (${this.mode}): ${l ? `${p.config.cameras.length} camera(s), S² sizes ${l.scaleSizes.map((x) => `${x[0]}x${x[1]}`).join(',')}, ${l.perCamera} features per camera` : 'features from S2Features'}${h ? `, chunk ${h.chunk}×${h.actionDim}` : ''}`,
    );
    return CallbackReturnCode.SUCCESS;
  }

  private resolve(name: string): string {
    return resolveName(name, this.node.name(), this.node.namespace());
  }

  private onActivate(): rclnodejs.lifecycle.CallbackReturnCode {
    const pipeline = this.pipeline;
    const config = this.config;
    if (!pipeline || !config) return CallbackReturnCode.FAILURE;
    const publisher = (type: string, topic: string): Pub => this.node.createPublisher(type as never, this.resolve(topic));
    const control = config.control;
    if (this.mode !== 'features' && control) this.actionPub = publisher(ACTION_TYPES[control.action_interface], control.action_topic);
    if (this.mode === 'features') this.featuresPub = publisher('s2_policy/msg/S2Features', config.features.topic);
    this.diagPub = publisher('diagnostic_msgs/msg/DiagnosticArray', '/diagnostics');
    const frames = new Subject<CameraFrame>();
    const joints = new Subject<JointStateMsg>();
    const active: Active = { frames, joints, subs: [], rx: [] };
    const sensorQos = rclnodejs.QoS.profileSensorData;
    const received = new Subject<FeatureResult>();
    if (this.mode === 'policy_head') {
      active.subs.push(
        this.node.createSubscription(
          's2_policy/msg/S2Features' as never,
          this.resolve(config.features.topic),
          { qos: featuresQos(), enableTypedArray: true },
          (msg: unknown) => {
            const m = msg as S2FeaturesMsg;
            m.header.stamp = stampOf(m.header.stamp);
            try {
              received.next(featureResultFromMessage(m, pipeline.scheduler.now()));
            } catch (e) {
              pipeline.metrics.drop('features:bad_message');
              this.log('warn', (e as Error).message);
            }
          },
        ),
      );
    }
    // Images arrive serialized and are decoded here: rclnodejs copies the CDR payload once into a Buffer and the
    // decoder returns the pixel data as a view into it (npm run bench:ros2 measured this cheaper than rclnodejs's
    // own typed-array deserialisation). A message that does not decode is dropped and counted.
    for (const cam of this.mode === 'policy_head' ? [] : config.cameras) {
      const type = cam.transport === 'raw' ? 'sensor_msgs/msg/Image' : 'sensor_msgs/msg/CompressedImage';
      const reader = new MessageReader(registeredDefinitions(type));
      active.subs.push(
        this.node.createSubscription(type as never, this.resolve(cam.topic), { qos: cameraQos(cam.qos), isRaw: true }, (raw: unknown) => {
          const buf = raw as Buffer;
          let m: ImageMsg | CompressedImageMsg;
          try {
            m = reader.readMessage<ImageMsg | CompressedImageMsg>(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
          } catch (e) {
            pipeline.metrics.drop('frame:rejected:undecodable_cdr');
            pipeline.metrics.lastError = `${cam.topic}: ${(e as Error).message.split('\n')[0]}`;
            return;
          }
          frames.next({ camera: cam.name, kind: cam.transport, msg: m });
        }),
      );
    }
    if (config.joint_states) {
      active.subs.push(
        this.node.createSubscription(
          'sensor_msgs/msg/JointState' as never,
          this.resolve(config.joint_states.topic),
          { qos: sensorQos, enableTypedArray: true },
          (msg: unknown) => {
            const m = msg as JointStateMsg;
            m.header.stamp = stampOf(m.header.stamp);
            joints.next(m);
          },
        ),
      );
    }
    if (this.clock && !this.clockSub) {
      const clock = this.clock;
      this.clockSub = this.node.createSubscription(
        'rosgraph_msgs/msg/Clock' as never,
        '/clock',
        { qos: rclnodejs.QoS.profileSystemDefault },
        (msg: unknown) => {
          const t = stampOf((msg as { clock: Time }).clock);
          clock.jumpTo(t.sec * 1000 + t.nanosec / 1e6);
        },
      );
    }
    const out = this.mode === 'policy_head' ? pipeline.connectFeatures({ features: received, joints }) : pipeline.connect({ frames, joints });
    active.rx.push(out.actions.subscribe((cmd) => this.publishAction(cmd)));
    const layout = this.runtime?.extractor?.layout;
    if (layout) {
      // features.publish may change while running: the publisher is made on the first message it is wanted for.
      active.rx.push(
        out.features.subscribe((f) => {
          if (this.mode !== 'features' && !pipeline.config.features.publish) return;
          this.featuresPub ??= publisher('s2_policy/msg/S2Features', config.features.topic);
          this.featuresPub.publish(featuresMessage(f, layout));
        }),
      );
    }
    const diag = this.diagPub;
    active.rx.push(out.metrics.subscribe((m) => diag.publish(diagnosticsMessage(m, this.now(), `${this.node.name()}: pipeline`, this.node.name()))));
    this.active = active;
    return CallbackReturnCode.SUCCESS;
  }

  private now(): Time {
    if (this.clock) return msToTime(this.clock.now());
    const t = this.node.now().secondsAndNanoseconds;
    return { sec: Number(t.seconds), nanosec: Number(t.nanoseconds) };
  }

  private publishAction(cmd: ActionCommand): void {
    const c = this.pipeline?.config.control;
    if (!c) return;
    this.actionPub?.publish(
      actionMessage(cmd, this.now(), { interface: c.action_interface, commandType: c.command_type, jointNames: c.joint_names, periodMs: 1000 / c.rate_hz }),
    );
  }

  /** Publishes the safe action once (deactivation, shutdown). */
  publishSafeAction(): void {
    const pipeline = this.pipeline;
    const cmd = pipeline?.safeCommand(pipeline.scheduler.now());
    if (cmd) this.publishAction(cmd);
  }

  /**
   * Waits up to `timeoutMs` until every subscriber has acknowledged the actions published so far. A stop published
   * just before the process exits is otherwise lost with the publisher (measured: a forward velocity controller
   * kept the arm moving after SIGINT). Returns false when not all were acknowledged in time.
   */
  flushActions(timeoutMs: number): boolean {
    const pub = this.actionPub as { waitForAllAcked?(timeoutNs: bigint): boolean } | undefined;
    try {
      return pub?.waitForAllAcked?.(BigInt(Math.round(timeoutMs * 1e6))) ?? true;
    } catch {
      return false; // an rmw without acknowledgements
    }
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
    // A model call still running when its session is released aborts the process (seen on SIGINT of a busy features
    // node): the call in flight finishes first, for at most half a second.
    const busy = this.pipeline?.idle();
    if (busy) await Promise.race([busy, new Promise((r) => setTimeout(r, 500))]);
    const runtime = this.runtime;
    this.runtime = undefined;
    this.pipeline = undefined;
    this.config = undefined;
    if (this.prepared?.ok) await this.prepared.runtime.release();
    this.prepared = undefined;
    await runtime?.release();
  }

  /**
   * Parameter changes: before configure any well-typed value is taken (configure validates the whole). Once
   * configured, the current parameters with the changes form the next config, which is validated whole and given
   * to the pipeline's reconfigure: every dynamic key applies together, or the change is refused with the reason.
   */
  private onSetParameters(params: rclnodejs.Parameter[]): { successful: boolean; reason: string } {
    const pipeline = this.pipeline;
    if (!pipeline) return { successful: true, reason: '' };
    const values = this.paramValues();
    for (const prm of params) values.set(prm.name, plain(prm.value));
    let next: Config;
    try {
      next = configFromParams(values, `${this.name} parameters`);
    } catch (e) {
      return { successful: false, reason: (e as Error).message };
    }
    // File paths are fixed once configured; the running config keeps the ones its models were loaded from (a stats
    // file that appeared since would otherwise read as a change of policy.stats).
    const r = pipeline.reconfigure(withPathsOf(pipeline.config, next));
    return r.ok ? { successful: true, reason: '' } : { successful: false, reason: r.reason };
  }
}

/** The id of a lifecycle State (rclnodejs's typings omit the field its State objects carry). */
function stateId(s: unknown): number {
  return (s as { id: number }).id;
}

/** setParameter's result (typed only where rclnodejs's interface typings were generated). */
function setResult(r: unknown): { successful: boolean; reason: string } {
  return r as { successful: boolean; reason: string };
}

const TRANSITION_CONFIGURE = 1;
const STATE_UNCONFIGURED = 1;

/** `next` with the values of `current` for every file-path key of the configuration table. */
function withPathsOf(current: Config, next: Config): Config {
  const out = structuredClone(next) as unknown as Record<string, Record<string, unknown> | undefined>;
  const cur = current as unknown as Record<string, Record<string, unknown> | undefined>;
  for (const e of ENTRIES) {
    if (!e.spec.codec.path || e.list) continue;
    const from = cur[e.section];
    const to = out[e.section];
    if (from && to) to[e.field] = from[e.field];
  }
  return out as unknown as Config;
}

/**
 * The policy head's subscription to S2Features: best effort, keep last 1. A feature set is worth acting on only while
 * it is new: the watchdog counts freshness from arrival, so a sample repaired or queued behind newer ones (reliable
 * delivery after a link comes back, a deeper history while the head is busy) would reach the policy late yet count
 * as fresh. A lost sample is replaced by the next one a camera period later, and the watchdog covers a longer gap.
 * The publisher offers reliable (a recorder may ask for it); matched with this reader, delivery is best effort.
 */
export function featuresQos(): rclnodejs.QoS {
  const { HistoryPolicy, ReliabilityPolicy, DurabilityPolicy } = rclnodejs.QoS;
  return new rclnodejs.QoS(
    HistoryPolicy.RMW_QOS_POLICY_HISTORY_KEEP_LAST,
    1,
    ReliabilityPolicy.RMW_QOS_POLICY_RELIABILITY_BEST_EFFORT,
    DurabilityPolicy.RMW_QOS_POLICY_DURABILITY_VOLATILE,
  );
}

/** The subscription QoS of a camera (cameras.qos). */
function cameraQos(q: 'sensor_data' | 'default' | 'reliable'): rclnodejs.QoS | string {
  if (q === 'sensor_data') return rclnodejs.QoS.profileSensorData;
  if (q === 'default') return rclnodejs.QoS.profileDefault;
  const { HistoryPolicy, ReliabilityPolicy, DurabilityPolicy } = rclnodejs.QoS;
  return new rclnodejs.QoS(
    HistoryPolicy.RMW_QOS_POLICY_HISTORY_KEEP_LAST,
    1,
    ReliabilityPolicy.RMW_QOS_POLICY_RELIABILITY_RELIABLE,
    DurabilityPolicy.RMW_QOS_POLICY_DURABILITY_VOLATILE,
  );
}

/** Runs the node until SIGINT/SIGTERM; returns the exit code. */
export async function runNode(options: NodeRunOptions = {}): Promise<number> {
  await rclnodejs.init(undefined, options.argv);
  const mode = options.mode ?? 'combined';
  let n: S2PolicyNode;
  try {
    n = new S2PolicyNode(options.nodeName ?? DEFAULT_NODE_NAMES[mode], options.namespace ?? '', mode, options.argv ?? [], options.configFile);
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
      const acked = n.flushActions(400);
      n.node.getLogger().info(`${signal}: published the safe action${acked ? '' : ' (not acknowledged within 400 ms)'}, shutting down`);
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
  // rclnodejs shuts every context down on SIGINT by itself, before this handler could publish the stop; the node
  // shuts down on its own terms instead.
  rclnodejs.removeSignalHandlers();
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  if (n.node.getParameter('autostart').value === true) {
    await n.prepare();
    const configured = new rclnodejs.lifecycle.CallbackReturnValue();
    n.node.configure(configured);
    if (!configured.isSuccess()) return 1;
    n.node.activate();
  }
  return await new Promise<number>(() => undefined);
}
