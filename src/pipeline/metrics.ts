// Pipeline metrics: per-stage latency percentiles, input/output rates, drops and rejections by reason, last error.

const WINDOW = 512;

class Samples {
  private buf = new Float64Array(WINDOW);
  private n = 0;
  add(v: number): void {
    this.buf[this.n % WINDOW] = v;
    this.n++;
  }
  summary(): { p50: number; p95: number; max: number; count: number } {
    const k = Math.min(this.n, WINDOW);
    if (k === 0) return { p50: NaN, p95: NaN, max: NaN, count: 0 };
    const s = Array.from(this.buf.subarray(0, k)).sort((a, b) => a - b);
    const q = (p: number) => s[Math.min(k - 1, Math.floor(p * k))];
    return { p50: q(0.5), p95: q(0.95), max: s[k - 1], count: this.n };
  }
}

/**
 * ingest: decode + geometry + normalise of a group; s2: the whole S² pass; backbone: its inference part; policy: the
 * head; queue: from the group being complete to its processing start (waiting for the busy backbone); end_to_end:
 * from the group being complete to its action chunk; overhead: processing time minus ingest, backbone and policy
 * (S² resize/merge, pooling, glue).
 */
export type Stage = 'ingest' | 's2' | 'backbone' | 'policy' | 'queue' | 'end_to_end' | 'overhead';

export interface MetricsSnapshot {
  /** Scheduler time of the snapshot, ms. */
  at: number;
  latencyMs: Record<Stage, { p50: number; p95: number; max: number; count: number }>;
  counts: {
    framesIn: number;
    framesProcessed: number;
    groupsProcessed: number;
    chunks: number;
    actions: number;
    safeActions: number;
    /** Fresh ticks past the end of every chunk, holding the newest chunk's last action. */
    heldPastChunk: number;
  };
  /** Per second over the time since the previous snapshot. */
  rates: { framesIn: number; groups: number; actions: number };
  /** Frames and results that were not used, by reason (frame drops, ingest rejections, policy rejections). */
  dropped: Record<string, number>;
  /** Per camera: frames in = processed + Σ dropped (by frame:* reason) + in flight. */
  cameras: Record<string, CameraCounts>;
  /** The joint-state topic: messages in, used (all configured joints present), rate over the window, age of the newest. */
  joints: { in: number; used: number; ratePerS: number; ageMs: number };
  state: 'ok' | 'stale' | 'disabled';
  lastError?: string;
  /** The dynamic settings in force (as the pipeline applied them), by config key. */
  settings?: Record<string, string>;
}

export interface CameraCounts {
  in: number;
  processed: number;
  dropped: Record<string, number>;
}

export class Metrics {
  private samples: Record<Stage, Samples> = {
    ingest: new Samples(),
    s2: new Samples(),
    backbone: new Samples(),
    policy: new Samples(),
    queue: new Samples(),
    end_to_end: new Samples(),
    overhead: new Samples(),
  };
  readonly counts = { framesIn: 0, framesProcessed: 0, groupsProcessed: 0, chunks: 0, actions: 0, safeActions: 0, heldPastChunk: 0 };
  readonly dropped: Record<string, number> = {};
  state: 'ok' | 'stale' | 'disabled' = 'stale';
  lastError?: string;
  readonly cameras: Record<string, CameraCounts> = {};
  readonly joints = { in: 0, used: 0, lastAt: NaN };
  private last = { at: NaN, framesIn: 0, groups: 0, actions: 0, joints: 0 };

  /** Starts the first rate window (without it the first snapshot has no window and reports zero rates). */
  begin(now: number): void {
    if (!Number.isFinite(this.last.at)) this.last.at = now;
  }

  private camera(name: string): CameraCounts {
    return (this.cameras[name] ??= { in: 0, processed: 0, dropped: {} });
  }

  frameIn(camera: string): void {
    this.counts.framesIn++;
    this.camera(camera).in++;
  }

  frameProcessed(camera: string): void {
    this.counts.framesProcessed++;
    this.camera(camera).processed++;
  }

  /** A frame not processed, counted by reason for its camera and in the totals. */
  frameDropped(camera: string, reason: string, n = 1): void {
    if (n <= 0) return;
    this.drop(reason, n);
    const c = this.camera(camera);
    c.dropped[reason] = (c.dropped[reason] ?? 0) + n;
  }

  jointState(used: boolean, now: number): void {
    this.joints.in++;
    if (used) {
      this.joints.used++;
      this.joints.lastAt = now;
    }
  }

  latency(stage: Stage, ms: number): void {
    this.samples[stage].add(ms);
  }

  drop(reason: string, n = 1): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + n;
  }

  /** Frames not processed, all reasons together. */
  get framesDropped(): number {
    return Object.entries(this.dropped)
      .filter(([k]) => k.startsWith('frame:'))
      .reduce((n, [, v]) => n + v, 0);
  }

  error(e: unknown): void {
    this.lastError = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    this.drop('error');
  }

  snapshot(now: number): MetricsSnapshot {
    const dt = (now - this.last.at) / 1000;
    const rate = (v: number, prev: number) => (Number.isFinite(dt) && dt > 0 ? (v - prev) / dt : 0);
    const snap: MetricsSnapshot = {
      at: now,
      latencyMs: Object.fromEntries(Object.entries(this.samples).map(([k, v]) => [k, v.summary()])) as MetricsSnapshot['latencyMs'],
      counts: { ...this.counts },
      rates: {
        framesIn: rate(this.counts.framesIn, this.last.framesIn),
        groups: rate(this.counts.groupsProcessed, this.last.groups),
        actions: rate(this.counts.actions, this.last.actions),
      },
      dropped: { ...this.dropped },
      cameras: Object.fromEntries(Object.entries(this.cameras).map(([k, c]) => [k, { in: c.in, processed: c.processed, dropped: { ...c.dropped } }])),
      joints: { in: this.joints.in, used: this.joints.used, ratePerS: rate(this.joints.in, this.last.joints), ageMs: now - this.joints.lastAt },
      state: this.state,
      lastError: this.lastError,
    };
    this.last = { at: now, framesIn: this.counts.framesIn, groups: this.counts.groupsProcessed, actions: this.counts.actions, joints: this.joints.in };
    return snap;
  }
}
