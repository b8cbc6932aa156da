// Driving the pipeline from timed inputs on their own clock (a recording, a simulation): as fast as possible on a
// virtual clock, or paced in real time. The control clock and the watchdog follow the inputs' time either way.
import { Subject, Subscription, VirtualTimeScheduler, type SchedulerAction, type SchedulerLike } from 'rxjs';
import type { JointStateMsg } from '../msgs/types.js';
import type { ActionCommand } from './controller.js';
import type { MetricsSnapshot } from './metrics.js';
import type { CameraFrame } from './operators.js';
import type { FeatureResult, PolicyPipeline } from './pipeline.js';

export interface TimedInput {
  /** Time of the input on its source's clock, ms (e.g. an MCAP log time). */
  timeMs: number;
  frame?: CameraFrame;
  joints?: JointStateMsg;
}

export interface ClockSinks {
  action?: (cmd: ActionCommand) => void | Promise<void>;
  features?: (f: FeatureResult) => void | Promise<void>;
  metrics?: (m: MetricsSnapshot) => void | Promise<void>;
}

/**
 * A virtual clock whose time only moves when told to: `advanceTo(t)` runs every scheduled action (control ticks,
 * watchdog checks, metrics) due up to t, in order, and leaves the clock at t.
 */
export class ManualClock extends VirtualTimeScheduler {
  constructor(start = 0) {
    super();
    this.frame = start;
  }

  advanceTo(t: number): void {
    if (t < this.frame) return;
    this.maxFrames = t;
    this.flush();
    this.frame = t;
  }

  /**
   * Moves to t as a clock that jumped (e.g. the first /clock message of a simulation): everything due before t
   * runs once, at t, so periodic work sees one late call (and skips what it missed) instead of replaying every
   * period in between.
   */
  jumpTo(t: number): void {
    if (t < this.frame) return;
    for (const a of this.actions) if (a.delay < t) a.delay = t;
    this.frame = t;
    this.advanceTo(t);
  }
}

/**
 * A clock paced by the wall clock but reading the inputs' time: now() starts at `startMs` (e.g. 0 = the recording's
 * start) and runs at `rate` × real time, and delays are in that clock's ms. So everything stamped from now() — actions,
 * features, diagnostics — lies on the recording's clock in real-time replay just as on the virtual clock.
 */
export class PacedClock implements SchedulerLike {
  private readonly wallStart = performance.now();

  constructor(
    readonly rate: number,
    readonly startMs = 0,
  ) {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`PacedClock: rate must be a positive finite number, got ${rate}`);
  }

  now(): number {
    return this.startMs + (performance.now() - this.wallStart) * this.rate;
  }

  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay = 0, state?: T): Subscription {
    return new PacedAction<T>(this, work).schedule(state, delay);
  }
}

/** One scheduled piece of work of a PacedClock; work may reschedule itself (periodic timers do). */
class PacedAction<T> extends Subscription implements SchedulerAction<T> {
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly clock: PacedClock,
    private readonly work: (this: SchedulerAction<T>, state?: T) => void,
  ) {
    super(() => {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
    });
  }

  schedule(state?: T, delay = 0): Subscription {
    if (this.closed) return this;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.work.call(this, state);
        // Not rescheduled by the work: done.
        if (this.timer === undefined) this.unsubscribe();
      },
      Math.max(0, delay) / this.clock.rate,
    );
    return this;
  }
}

export interface RunOptions {
  /** 0: as fast as possible on a virtual clock; r > 0: r × real time. */
  rate: number;
  /** Keep the control clock running this long after the last input (so the watchdog's reaction is recorded). */
  tailMs?: number;
}

/** A scheduler for a pipeline that will be driven by `runOnClock` with these options. */
export function schedulerFor(options: RunOptions, startMs: number): SchedulerLike {
  return options.rate > 0 ? new PacedClock(options.rate, startMs) : new ManualClock(startMs);
}

/**
 * Feeds timed inputs into a connected pipeline. With a ManualClock, time jumps to each input's time and the next
 * input waits until the pipeline is idle, so results do not depend on the machine's speed. In real time, inputs
 * are released at their times scaled by 1/rate, and frames that arrive while inference is busy are dropped as live.
 */
export async function runOnClock(
  pipeline: PolicyPipeline,
  inputs: AsyncIterable<TimedInput> | Iterable<TimedInput>,
  options: RunOptions,
  sinks: ClockSinks,
): Promise<void> {
  const frames = new Subject<CameraFrame>();
  const joints = new Subject<JointStateMsg>();
  const out = pipeline.connect({ frames, joints });
  const pending: Promise<void>[] = [];
  const keep = (p: void | Promise<void>) => {
    if (p) pending.push(p);
  };
  const subs: Subscription[] = [
    out.actions.subscribe((a) => keep(sinks.action?.(a))),
    out.features.subscribe((f) => keep(sinks.features?.(f))),
    out.metrics.subscribe((m) => keep(sinks.metrics?.(m))),
  ];
  const clock = pipeline.scheduler instanceof ManualClock ? pipeline.scheduler : undefined;
  const paced = pipeline.scheduler instanceof PacedClock ? pipeline.scheduler : undefined;
  const wallStart = performance.now();
  let first: number | undefined;
  let last = 0;
  try {
    for await (const input of inputs as AsyncIterable<TimedInput>) {
      first ??= input.timeMs;
      last = input.timeMs;
      if (clock) clock.advanceTo(input.timeMs);
      else {
        // On a PacedClock an input is due when the clock reads its time; on another clock, relative to the first.
        const wait = paced ? (input.timeMs - paced.now()) / paced.rate : wallStart + (input.timeMs - first) / options.rate - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      if (input.joints) joints.next(input.joints);
      if (input.frame) frames.next(input.frame);
      if (clock) await pipeline.idle();
      if (pending.length > 64) await Promise.all(pending.splice(0));
    }
    // End of input: frames still waiting for a partner are counted, a pending group is still processed.
    frames.complete();
    joints.complete();
    await pipeline.idle();
    const tail = options.tailMs ?? 0;
    if (clock) clock.advanceTo(last + tail);
    else if (paced) {
      // Until the recording's clock reads the last input's time plus the tail (processing may already have used it).
      const wait = (last + tail - paced.now()) / paced.rate;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    } else if (tail > 0) await new Promise((r) => setTimeout(r, tail / options.rate));
    await Promise.all(pending);
  } finally {
    for (const s of subs) s.unsubscribe();
  }
}
