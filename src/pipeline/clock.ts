// Driving the pipeline from timed inputs on their own clock (a recording, a simulation): as fast as possible on a
// virtual clock, or paced in real time. The control clock and the watchdog follow the inputs' time either way.
import { Subject, VirtualTimeScheduler, asyncScheduler, type SchedulerLike, type Subscription } from 'rxjs';
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

export interface RunOptions {
  /** 0: as fast as possible on a virtual clock; r > 0: r × real time. */
  rate: number;
  /** Keep the control clock running this long after the last input (so the watchdog's reaction is recorded). */
  tailMs?: number;
}

/** A scheduler for a pipeline that will be driven by `runOnClock` with these options. */
export function schedulerFor(options: RunOptions, startMs: number): SchedulerLike {
  return options.rate > 0 ? asyncScheduler : new ManualClock(startMs);
}

/**
 * Feeds timed inputs into a connected pipeline. With a ManualClock, time jumps to each input's time and the next
 * input waits until the pipeline is idle, so results do not depend on the machine's speed. In real time, inputs
 * are released at their times scaled by 1/rate, and frames that arrive while inference is busy are dropped as live.
 */
export async function runOnClock(pipeline: PolicyPipeline, inputs: AsyncIterable<TimedInput> | Iterable<TimedInput>, options: RunOptions, sinks: ClockSinks): Promise<void> {
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
  const wallStart = performance.now();
  let first: number | undefined;
  let last = 0;
  try {
    for await (const input of inputs as AsyncIterable<TimedInput>) {
      first ??= input.timeMs;
      last = input.timeMs;
      if (clock) clock.advanceTo(input.timeMs);
      else {
        const due = wallStart + (input.timeMs - first) / options.rate;
        const wait = due - performance.now();
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
    else if (tail > 0) await new Promise((r) => setTimeout(r, tail / options.rate));
    await Promise.all(pending);
  } finally {
    for (const s of subs) s.unsubscribe();
  }
}
