// The whole data path from camera frames to robot actions, independent of the transport (ROS 2, MCAP replay,
// simulation): frames → sync → (newest only while busy) → ingest → S² → pool → policy → chunks → control ticks.
import {
  EMPTY,
  Observable,
  Subject,
  Subscription,
  asyncScheduler,
  defer,
  filter,
  ignoreElements,
  interval,
  map,
  merge,
  share,
  tap,
  type SchedulerLike,
} from 'rxjs';
import type { Config } from '../config/config.js';
import { ENTRIES } from '../config/table.js';
import type { JointStateMsg } from '../msgs/types.js';
import { timeToMs } from '../msgs/types.js';
import type { PolicyHead } from '../policy/head.js';
import { ActionController, type ActionCommand, type ControllerOptions } from './controller.js';
import type { CameraInput, FeatureExtractor } from './extractor.js';
import { Metrics, type MetricsSnapshot } from './metrics.js';
import { processLatest, syncCameras, type ArrivedFrame, type CameraFrame } from './operators.js';

/** Features of one synchronised group of frames, with the policy's chunk when it ran. */
export interface FeatureResult {
  /** Header stamp of the group (newest frame), ms. */
  stampMs: number;
  /** Scheduler time when the result was ready, ms. */
  at: number;
  cameras: string[];
  perCamera: Float32Array[];
  /** header.frame_id of the group's first camera (S2Features.header.frame_id). */
  frameId?: string;
  state?: Float32Array;
  chunk?: Float32Array;
}

export interface PipelineInputs {
  frames: Observable<CameraFrame>;
  joints?: Observable<JointStateMsg>;
}

export interface PipelineOutputs {
  actions: Observable<ActionCommand>;
  features: Observable<FeatureResult>;
  metrics: Observable<MetricsSnapshot>;
}

interface StateSample {
  values: Float32Array;
  at: number;
}

/**
 * The joint positions of `msg` in the order of `names`, or undefined when a named joint is missing or its position
 * is not finite. The live pipeline and extract read joint states with this one function.
 */
export function jointStateVector(names: readonly string[], msg: JointStateMsg): Float32Array | undefined {
  const out = new Float32Array(names.length);
  for (let i = 0; i < names.length; i++) {
    const k = msg.name.indexOf(names[i]);
    const v = k >= 0 ? msg.position[k] : undefined;
    if (v === undefined || !Number.isFinite(v)) return undefined;
    out[i] = v;
  }
  return out;
}

/** More missed ticks than this at once is a clock that jumped, not a late tick. */
const CLOCK_JUMP_TICKS = 100;

/**
 * Control ticks without drift: tick k is due at anchor + (k + 1)·period on the scheduler's clock, whatever the
 * callbacks' own delays. A tick that comes too late to be on time is skipped (the next one carries the current
 * index) and reported to `onLate`, so the tick index always matches the clock. The period is read before every
 * tick (a rate changed at run time applies from the next tick; indices keep counting up).
 */
export function controlTicks(periodMs: number | (() => number), scheduler: SchedulerLike, onLate?: (skipped: number) => void): Observable<number> {
  const period = typeof periodMs === 'number' ? () => periodMs : periodMs;
  return new Observable<number>((subscriber) => {
    let p = period();
    let anchor = scheduler.now();
    let base = 0; // index of the first tick after the anchor
    let next = 0;
    const subscription = new Subscription();
    const run = (): void => {
      const q = period();
      if (q !== p) {
        // Re-anchor at the last tick's time with the new period.
        anchor = anchor + (next - base) * p;
        base = next;
        p = q;
      }
      subscription.add(
        scheduler.schedule(
          () => {
            const due = base + Math.floor((scheduler.now() - anchor) / p + 1e-9) - 1;
            if (due - next > CLOCK_JUMP_TICKS) {
              // The clock jumped (e.g. the first /clock of a simulation): start counting from now, nothing was missed.
              anchor = scheduler.now() - p;
              base = next;
            } else if (due > next) {
              onLate?.(due - next);
              next = due;
            }
            subscriber.next(next);
            next++;
            run();
          },
          Math.max(0, anchor + (next - base + 1) * p - scheduler.now()),
        ),
      );
    };
    run();
    return subscription;
  });
}

/** One command per control tick at `rateHz` (a number, or read before every tick) on `scheduler`'s clock. */
export function atControlRate(
  controller: ActionController,
  rateHz: number | (() => number),
  scheduler: SchedulerLike,
  onLate?: (skipped: number) => void,
): Observable<ActionCommand> {
  const rate = typeof rateHz === 'number' ? () => rateHz : rateHz;
  return controlTicks(() => 1000 / rate(), scheduler, onLate).pipe(
    map((tick) => controller.tick(tick, scheduler.now())),
    filter((c): c is ActionCommand => c !== undefined),
  );
}

/** The outcome of reconfigure: applied, or refused with the reason (nothing was applied). */
export type ReconfigureResult = { ok: true; changed: string[] } | { ok: false; reason: string };

/** The values of one config key, comparable with JSON (list sections compare as a whole). */
function keyValue(c: Config, section: string, field: string, list: boolean): string {
  const sec = (c as unknown as Record<string, unknown>)[section];
  if (list || sec === undefined) return JSON.stringify(sec ?? null);
  return JSON.stringify((sec as Record<string, unknown>)[field] ?? null);
}

/** Config keys whose values differ between a and b. */
export function changedKeys(a: Config, b: Config): string[] {
  const out: string[] = [];
  for (const e of ENTRIES) if (keyValue(a, e.section, e.field, e.list) !== keyValue(b, e.section, e.field, e.list)) out.push(e.list ? e.section : e.key);
  return [...new Set(out)];
}

function controllerOptions(config: Config): Omit<ControllerOptions, 'dim' | 'commandType'> {
  const c = config.control;
  return {
    chunkMode: config.policy?.chunk_mode ?? 'ensemble',
    ensembleK: config.policy?.ensemble_k ?? 0.01,
    staleAfterMs: config.watchdog.stale_after_ms,
    limits: { lower: c?.lower, upper: c?.upper, maxDelta: c?.max_delta },
  };
}

export class PolicyPipeline {
  readonly metrics = new Metrics();
  readonly controller: ActionController;
  private cfg: Config;
  /** Groups accepted for processing (running or pending) and not yet finished or dropped. */
  private outstanding = 0;
  private idleWaiters: (() => void)[] = [];
  private state?: StateSample;
  /**
   * Where each commanded joint (control.joint_names) sits in the state vector (joint_states.names), when the action
   * message needs the measured positions (a joint trajectory carrying a velocity command); fixed keys, so fixed here.
   */
  private readonly measuredIndex?: number[];
  /** Commands sent between ticks: the safe action when actions are disabled. */
  private readonly between = new Subject<ActionCommand>();

  constructor(
    config: Config,
    /** Undefined for a policy-head-only pipeline fed with S2Features (see connectFeatures). */
    readonly extractor: FeatureExtractor | undefined,
    /** Undefined for a features-only pipeline (frames → S2Features, no actions). */
    readonly head: PolicyHead | undefined,
    readonly scheduler: SchedulerLike = asyncScheduler,
  ) {
    this.cfg = config;
    this.controller = new ActionController({
      dim: head?.shape.actionDim ?? 0,
      commandType: config.control?.command_type ?? 'velocity',
      ...controllerOptions(config),
    });
    const c = config.control;
    if (c?.action_interface === 'joint_trajectory' && c.command_type === 'velocity') {
      const names = config.joint_states?.names ?? [];
      this.measuredIndex = (c.joint_names ?? []).map((n) => names.indexOf(n));
    }
  }

  /** The configuration in force. */
  get config(): Config {
    return this.cfg;
  }

  /** The dynamic settings as applied (the controller's own options, not a copy of the request), by config key. */
  settings(): Record<string, string> {
    const o = this.controller.o;
    const list = (v?: readonly number[]) => (v ? `[${v.join(', ')}]` : 'unset');
    return {
      'control.enabled': String(this.enabled),
      'control.rate_hz': String(this.cfg.control?.rate_hz ?? 20),
      'control.lower': list(o.limits.lower),
      'control.upper': list(o.limits.upper),
      'control.max_delta': list(o.limits.maxDelta),
      'policy.chunk_mode': o.chunkMode,
      'policy.ensemble_k': String(o.ensembleK),
      'watchdog.stale_after_ms': String(o.staleAfterMs),
      'features.publish': String(this.cfg.features.publish),
    };
  }

  /** Actions are published (control.enabled). */
  get enabled(): boolean {
    return this.cfg.control?.enabled ?? true;
  }

  /**
   * Applies a whole validated next configuration: every dynamic key (rate, limits, max_delta, chunk mode,
   * ensemble_k, watchdog, features.publish, enabled) together from the next tick, or nothing when any other key
   * differs (those are fixed once the models are loaded: configure again to change them).
   */
  reconfigure(next: Config): ReconfigureResult {
    const changed = changedKeys(this.cfg, next);
    const fixed = changed.filter((k) => !ENTRIES.some((e) => e.key === k && e.spec.dynamic));
    if (fixed.length > 0)
      return {
        ok: false,
        reason: `${fixed.join(', ')} ${fixed.length > 1 ? 'are' : 'is'} fixed while configured (deactivate and clean up, then configure again)`,
      };
    const wasEnabled = this.enabled;
    this.controller.reconfigure(controllerOptions(next));
    this.cfg = next;
    if (wasEnabled && !this.enabled) {
      // Silence is not a stop: a forward velocity controller keeps the last velocity it got. The safe action goes
      // out now, once; then nothing until actions are enabled again.
      const stop = this.safeCommand(this.scheduler.now());
      if (stop) this.between.next(stop);
    }
    return { ok: true, changed };
  }

  /** Resolves when no frame group is being processed (used to replay recordings as fast as possible). */
  async idle(): Promise<void> {
    while (this.outstanding > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private settle(): void {
    this.outstanding--;
    if (this.outstanding === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /**
   * The command with the measured positions of its joints attached when its message needs them, or undefined
   * (counted as `control:state_stale`) when no joint state within joint_states.max_age_ms has them. A trajectory
   * controller then comes to rest at the last point it got, within its time_from_start.
   */
  private withMeasured(cmd: ActionCommand): ActionCommand | undefined {
    const index = this.measuredIndex;
    if (!index) return cmd;
    const now = this.scheduler.now();
    const q = this.freshState(now);
    if (!q || !this.state) {
      this.metrics.drop('control:state_stale');
      return undefined;
    }
    return { ...cmd, measured: Float64Array.from(index, (k) => q[k]), measuredAgeMs: now - this.state.at };
  }

  /** The safe action now, ready to send (deactivation, shutdown, disable), or undefined when there is none. */
  safeCommand(now: number): ActionCommand | undefined {
    const cmd = this.controller.safeCommand(now);
    return cmd && this.withMeasured(cmd);
  }

  /** Clears the chunk buffers and ensembling state. */
  reset(): void {
    this.controller.reset();
  }

  /** Joint state vector in config order, or undefined (counted) when a configured joint is missing. */
  private stateFrom(msg: JointStateMsg): Float32Array | undefined {
    const out = jointStateVector(this.config.joint_states?.names ?? [], msg);
    if (!out) {
      this.metrics.drop('joint_state:missing_joint');
      this.metrics.jointState(false, this.scheduler.now());
    }
    return out;
  }

  private freshState(now: number): Float32Array | undefined {
    const maxAge = this.config.joint_states?.max_age_ms ?? Infinity;
    return this.state && now - this.state.at <= maxAge ? this.state.values : undefined;
  }

  /** Ingest, S² and pooling for one group, then the policy when there is one; never throws (failures are counted). */
  private async processGroup(group: ArrivedFrame[]): Promise<FeatureResult | undefined> {
    const m = this.metrics;
    const extractor = this.extractor as FeatureExtractor;
    try {
      const begin = performance.now();
      const complete = Math.max(...group.map((f) => f.arrivedWall));
      m.latency('queue', begin - complete);
      let t = begin;
      const ingested = await Promise.all(group.map((f) => extractor.ingestFrame(f)));
      const ingestMs = performance.now() - t;
      m.latency('ingest', ingestMs);
      const inputs: CameraInput[] = [];
      let rejected = false;
      ingested.forEach((r, i) => {
        if (r.ok) inputs.push({ base: r.base, scales: r.scales });
        else {
          rejected = true;
          m.frameDropped(group[i].camera, `frame:rejected:${r.reason}`);
          m.lastError = `${group[i].camera}: ${r.detail}`;
        }
      });
      if (rejected) {
        ingested.forEach((r, i) => r.ok && m.frameDropped(group[i].camera, 'frame:group_incomplete'));
        return undefined;
      }
      t = performance.now();
      const perCamera = await extractor.extract(inputs);
      m.latency('s2', performance.now() - t);
      const backboneMs = extractor.timings.inferenceMs;
      m.latency('backbone', backboneMs);
      // Features with a NaN or Inf are neither published nor fed to the policy.
      if (perCamera.some((v) => v.some((x) => !Number.isFinite(x)))) {
        for (const f of group) m.frameDropped(f.camera, 'frame:nonfinite_features');
        return undefined;
      }
      for (const f of group) m.frameProcessed(f.camera);
      m.counts.groupsProcessed++;
      const stampMs = Math.max(...group.map((f) => timeToMs(f.msg.header.stamp)));
      const result: FeatureResult = {
        stampMs,
        at: this.scheduler.now(),
        cameras: group.map((f) => f.camera),
        perCamera,
        frameId: group[0]?.msg.header.frame_id,
      };
      const policyMs = await this.act(result);
      const done = performance.now();
      m.latency('end_to_end', done - complete);
      m.latency('overhead', done - begin - ingestMs - backboneMs - policyMs);
      return result;
    } catch (e) {
      m.error(e);
      for (const f of group) m.frameDropped(f.camera, 'frame:error');
      return undefined;
    }
  }

  /**
   * The policy on one feature result: joint state, head, chunk into the controller (result.chunk and result.state
   * are filled in). Returns the time the head took, ms. Throws only on model failures (the caller counts them).
   */
  private async act(result: FeatureResult): Promise<number> {
    const head = this.head;
    if (!head) return 0;
    const m = this.metrics;
    const now = this.scheduler.now();
    const needsState = this.config.policy?.state_input !== undefined;
    const state = needsState ? this.freshState(now) : undefined;
    result.state = state;
    if (needsState && !state) {
      m.drop('policy:state_stale');
      return 0;
    }
    const features = new Float32Array(result.perCamera.reduce((n, v) => n + v.length, 0));
    if (features.length !== head.shape.featureDim) {
      m.drop('policy:feature_size');
      m.lastError = `features of ${features.length} values, the policy takes ${head.shape.featureDim}`;
      return 0;
    }
    let o = 0;
    for (const v of result.perCamera) {
      features.set(v, o);
      o += v.length;
    }
    const t = performance.now();
    const chunk = await head.act(features, state);
    const policyMs = performance.now() - t;
    m.latency('policy', policyMs);
    if (!this.controller.addChunk(this.scheduler.now(), chunk, head.shape.chunk)) {
      m.drop('policy:nonfinite_output');
      return policyMs;
    }
    m.counts.chunks++;
    result.chunk = chunk;
    return policyMs;
  }

  private tracked<T>(work: () => Promise<T>): Observable<T> {
    return defer(async () => {
      try {
        return await work();
      } finally {
        this.settle();
      }
    });
  }

  private jointsInto(joints?: Observable<JointStateMsg>): Observable<never> {
    return (joints ?? EMPTY).pipe(
      tap((msg) => {
        const values = this.stateFrom(msg);
        if (values) {
          this.state = { values, at: this.scheduler.now() };
          this.metrics.jointState(true, this.state.at);
        }
      }),
      ignoreElements(),
    );
  }

  private ticks(): Observable<ActionCommand> {
    const m = this.metrics;
    const ticks = atControlRate(
      this.controller,
      () => this.config.control?.rate_hz ?? 20,
      this.scheduler,
      (n) => m.drop('control:late_tick', n),
    ).pipe(
      tap(() => (m.state = this.enabled ? this.controller.state : 'disabled')),
      filter(() => this.enabled),
      map((cmd) => this.withMeasured(cmd)),
      filter((cmd): cmd is ActionCommand => cmd !== undefined),
    );
    return merge(ticks, this.between).pipe(
      tap((cmd) => {
        m.counts.actions++;
        if (cmd.state === 'stale') m.counts.safeActions++;
        m.counts.heldPastChunk = this.controller.uncovered;
      }),
    );
  }

  /**
   * Wires the inputs to the outputs. Subscribe to `actions` (which drives the processing and the control clock);
   * `features` and `metrics` are shared views. The streams do not complete on bad data.
   */
  connect(inputs: PipelineInputs): PipelineOutputs {
    if (!this.extractor) throw new Error('connect() needs a feature extractor; a policy-head-only pipeline uses connectFeatures()');
    const m = this.metrics;
    const cameras = this.config.cameras.map((c) => c.name);
    const features$ = new Subject<FeatureResult>();
    const frames$ = inputs.frames.pipe(
      map((f): ArrivedFrame => {
        m.frameIn(f.camera);
        return { ...f, arrivedAt: this.scheduler.now(), arrivedWall: performance.now() };
      }),
    );
    const processed$ = frames$.pipe(
      syncCameras<ArrivedFrame>(cameras, { mode: this.config.sync.mode, slopMs: this.config.sync.slop_ms }, (f, reason) =>
        m.frameDropped(f.camera, `frame:${reason}`),
      ),
      tap(() => this.outstanding++),
      processLatest(
        (group) => this.tracked(() => this.processGroup(group)),
        (superseded) => {
          for (const f of superseded) m.frameDropped(f.camera, 'frame:busy');
          this.settle();
        },
      ),
      tap((r) => {
        if (r) features$.next(r);
      }),
      ignoreElements(),
    );
    const joints$ = this.jointsInto(inputs.joints);
    const ticks$ = this.ticks();
    const actions = merge(processed$, joints$, this.head ? ticks$ : EMPTY).pipe(share());
    m.begin(this.scheduler.now());
    const metrics = interval(1000, this.scheduler).pipe(map(() => ({ ...m.snapshot(this.scheduler.now()), settings: this.settings() })));
    return { actions, features: features$.asObservable(), metrics };
  }

  /**
   * The policy-head half on its own: feature results (e.g. decoded S2Features from another machine) and joint
   * states in, actions out at the control rate. The newest result is kept while the head is busy.
   */
  connectFeatures(inputs: { features: Observable<FeatureResult>; joints?: Observable<JointStateMsg> }): PipelineOutputs {
    const m = this.metrics;
    const processed$ = inputs.features.pipe(
      // Features whose frames are already older than the watchdog period when they arrive (late over a link, held
      // in a queue) are stale: counted, never acted on. The watchdog counts from arrival, so without this a late
      // feature set would move the arm for another watchdog period. The stamp is the camera's; with the camera on
      // the head's machine the age needs no clock shared between machines.
      filter((r) => {
        if (r.at - r.stampMs <= this.config.watchdog.stale_after_ms) return true;
        m.drop('features:too_old');
        return false;
      }),
      tap(() => {
        m.counts.groupsProcessed++;
        this.outstanding++;
      }),
      processLatest(
        (r: FeatureResult) =>
          this.tracked(async () => {
            try {
              await this.act(r);
            } catch (e) {
              m.error(e);
            }
          }),
        () => {
          m.drop('features:busy');
          this.settle();
        },
      ),
      ignoreElements(),
    );
    const joints$ = this.jointsInto(inputs.joints);
    const ticks$ = this.ticks();
    const actions = merge(processed$, joints$, ticks$).pipe(share());
    const metrics = interval(1000, this.scheduler).pipe(map(() => ({ ...m.snapshot(this.scheduler.now()), settings: this.settings() })));
    return { actions, features: EMPTY, metrics };
  }
}
