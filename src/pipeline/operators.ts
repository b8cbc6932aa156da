// RxJS operators of the frame path: keep-the-newest backpressure and multi-camera synchronisation.
import { Observable, from, type ObservableInput, type OperatorFunction, type Subscription } from 'rxjs';
import type { CompressedImageMsg, ImageMsg } from '../msgs/types.js';
import { timeToMs } from '../msgs/types.js';

export interface CameraFrame {
  camera: string;
  kind: 'raw' | 'compressed';
  msg: ImageMsg | CompressedImageMsg;
}

/** A frame as the pipeline holds it: with its arrival times (scheduler clock, and wall clock for latency). */
export interface ArrivedFrame extends CameraFrame {
  arrivedAt: number;
  arrivedWall: number;
}

/**
 * Runs `project` on one value at a time. While it is busy only the newest arriving value is kept (each value it
 * replaces is handed to `onDrop`); when it finishes, that newest value runs next. Nothing else is queued.
 */
export function processLatest<T, R>(project: (v: T) => ObservableInput<R>, onDrop?: (v: T) => void): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      let busy = false;
      let pending: { value: T } | undefined;
      let sourceDone = false;
      let inner: Subscription | undefined;
      const start = (value: T): void => {
        busy = true;
        inner = from(project(value)).subscribe({
          next: (r) => subscriber.next(r),
          error: (e: unknown) => subscriber.error(e),
          complete: () => {
            busy = false;
            if (pending) {
              const next = pending.value;
              pending = undefined;
              start(next);
            } else if (sourceDone) {
              subscriber.complete();
            }
          },
        });
      };
      const outer = source.subscribe({
        next: (value) => {
          if (!busy) return start(value);
          if (pending && onDrop) onDrop(pending.value);
          pending = { value };
        },
        error: (e: unknown) => subscriber.error(e),
        complete: () => {
          sourceDone = true;
          if (!busy) subscriber.complete();
        },
      });
      return () => {
        outer.unsubscribe();
        inner?.unsubscribe();
      };
    });
}

export type SyncMode = 'approximate' | 'latest';
export type SyncDropReason = 'superseded' | 'unmatched' | 'unknown_camera' | 'unused_at_end';

export interface SyncOptions {
  mode: SyncMode;
  /** approximate: largest spread of header stamps within a group, ms. */
  slopMs: number;
  /** approximate: frames kept per camera while looking for a match (bounded). */
  queueSize?: number;
}

function stampMs(f: CameraFrame): number {
  return timeToMs(f.msg.header.stamp);
}

/**
 * Groups one frame per camera, in `cameras` order. 'latest': as soon as every camera has a frame newer than the last
 * group, the newest of each. 'approximate' (message_filters' ApproximateTime idea): when a frame arrives, the frame
 * of each other camera nearest to its stamp is chosen, and the group is emitted if all stamps lie within slopMs;
 * frames older than a group's are discarded. Every frame that does not end up in a group goes to `onDrop`.
 */
export function syncCameras<F extends CameraFrame>(
  cameras: readonly string[],
  options: SyncOptions,
  onDrop: (f: F, reason: SyncDropReason) => void,
): OperatorFunction<F, F[]> {
  const depth = options.mode === 'latest' ? 1 : Math.max(1, options.queueSize ?? 5);
  return (source) =>
    new Observable<F[]>((subscriber) => {
      const queues = new Map<string, F[]>(cameras.map((c) => [c, []]));
      const sub = source.subscribe({
        next: (f) => {
          const q = queues.get(f.camera);
          if (!q) return onDrop(f, 'unknown_camera');
          q.push(f);
          while (q.length > depth) onDrop(q.shift() as F, 'superseded');
          if ([...queues.values()].some((x) => x.length === 0)) return;
          if (options.mode === 'latest') {
            const group = cameras.map((c) => (queues.get(c) as F[]).pop() as F);
            subscriber.next(group);
            return;
          }
          const t = stampMs(f);
          const chosen = cameras.map((c) => {
            const cq = queues.get(c) as F[];
            return cq.reduce((best, x) => (Math.abs(stampMs(x) - t) < Math.abs(stampMs(best) - t) ? x : best));
          });
          const stamps = chosen.map(stampMs);
          if (Math.max(...stamps) - Math.min(...stamps) > options.slopMs) return;
          cameras.forEach((c, i) => {
            const cq = queues.get(c) as F[];
            const idx = cq.indexOf(chosen[i]);
            for (const old of cq.splice(0, idx + 1)) if (old !== chosen[i]) onDrop(old, 'unmatched');
          });
          subscriber.next(chosen);
        },
        error: (e: unknown) => subscriber.error(e),
        complete: () => {
          for (const q of queues.values()) for (const f of q.splice(0)) onDrop(f, 'unused_at_end');
          subscriber.complete();
        },
      });
      return () => sub.unsubscribe();
    });
}
