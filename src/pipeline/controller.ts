// Actions at a fixed control rate: one action per tick from the current chunks, limited, with a watchdog that
// switches to a safe action when features stop arriving.
import { ActionChunks, type ChunkMode } from '../policy/chunks.js';
import { isFiniteArray, limitAction, type ActionLimits } from '../policy/safety.js';

export type CommandType = 'velocity' | 'position';
export type ControlState = 'ok' | 'stale';

export interface ActionCommand {
  tick: number;
  /** Scheduler time of the tick, ms. */
  at: number;
  values: Float32Array;
  state: ControlState;
  /**
   * Measured positions of the commanded joints (control.joint_names order) at the tick, attached by the pipeline
   * where the message needs them: a joint trajectory carrying a velocity command (see messages.ts).
   */
  measured?: Float64Array;
  /** How long before the tick `measured` was received, ms: the arm has moved on by about v times this since. */
  measuredAgeMs?: number;
}

export interface ControllerOptions {
  dim: number;
  commandType: CommandType;
  chunkMode: ChunkMode;
  ensembleK: number;
  staleAfterMs: number;
  limits: ActionLimits;
}

export class ActionController {
  private chunks: ActionChunks;
  private lastTick = -1;
  private lastFreshAt = -Infinity;
  private lastCommand: Float32Array | undefined;
  state: ControlState = 'stale';
  /**
   * Ticks at which no chunk covered the tick while features were fresh. Such a tick holds the newest chunk's last
   * action (limited as any action) rather than falling back to the safe action: the features are fresh, only the
   * chunk was shorter than the gap to the next one. The watchdog still stops the robot after stale_after_ms.
   */
  uncovered = 0;

  private opts: ControllerOptions;

  constructor(o: ControllerOptions) {
    this.opts = { ...o };
    this.chunks = new ActionChunks(o.dim, o.chunkMode, o.ensembleK);
  }

  /** The options in force (a copy). */
  get o(): Readonly<ControllerOptions> {
    return this.opts;
  }

  /** Applies new options at once (from the next tick); the action dimension and command type are fixed. */
  reconfigure(next: Omit<ControllerOptions, 'dim' | 'commandType'>): void {
    this.opts = { ...this.opts, ...next, limits: { ...next.limits } };
    this.chunks.setMode(next.chunkMode, next.ensembleK);
  }

  /** A new chunk computed from fresh features at time `now`; its first action is for the next tick. */
  addChunk(now: number, actions: Float32Array, steps: number): boolean {
    if (!isFiniteArray(actions)) return false;
    this.chunks.add(this.lastTick + 1, actions, steps);
    this.lastFreshAt = now;
    return true;
  }

  /** The safe action: zero velocity, or the last position command held (none before the first command). */
  private safe(): Float32Array | undefined {
    return this.opts.commandType === 'velocity' ? new Float32Array(this.opts.dim) : this.lastCommand?.slice();
  }

  /** The command for control tick `tick` at time `now`, or undefined when there is nothing safe to send. */
  tick(tick: number, now: number): ActionCommand | undefined {
    this.lastTick = tick;
    const stale = now - this.lastFreshAt > this.opts.staleAfterMs;
    this.state = stale ? 'stale' : 'ok';
    let values: Float32Array | undefined;
    if (!stale) {
      let a = this.chunks.at(tick);
      if (!a) {
        a = this.chunks.newestFinal;
        if (a) this.uncovered++;
      }
      if (a) values = limitAction(a, this.opts.limits, this.lastCommand);
    }
    if (!values) {
      // A stop (or hold) is applied at once: it bypasses maxDelta but still respects the clamps.
      const s = this.safe();
      if (!s) return undefined;
      values = limitAction(s, { lower: this.opts.limits.lower, upper: this.opts.limits.upper });
      this.state = 'stale';
    }
    this.lastCommand = values.slice();
    return { tick, at: now, values, state: this.state };
  }

  /** The safe action now, e.g. on deactivation or shutdown. */
  safeCommand(now: number): ActionCommand | undefined {
    const s = this.safe();
    if (!s) return undefined;
    return { tick: this.lastTick, at: now, values: limitAction(s, { lower: this.opts.limits.lower, upper: this.opts.limits.upper }), state: 'stale' };
  }

  /** Clears chunk buffers and ensembling state (between episodes). */
  reset(): void {
    this.chunks.reset();
    this.lastFreshAt = -Infinity;
  }
}
