// An onnxruntime session in its own worker thread (see ort-worker.ts): load once, then run float32 feeds; tensors
// cross the thread boundary by transfer, not by copy, wherever the caller hands over a whole buffer.
import { Worker } from 'node:worker_threads';
import type ort from 'onnxruntime-node';

export interface IoInfo {
  name: string;
  type: string;
  dims: (number | string)[];
}

export interface WorkerInit {
  model: Uint8Array;
  options: ort.InferenceSession.SessionOptions;
}

export type WorkerReady = { ok: true; inputs: IoInfo[]; outputs: IoInfo[] } | { ok: false; error: string };

export interface TensorData {
  dims: number[];
  data: Float32Array;
}

export interface RunRequest {
  id: number;
  feeds: Record<string, TensorData>;
  fetches: string[];
}

export interface RunReply {
  id: number;
  outputs?: Record<string, TensorData & { type: string }>;
  error?: string;
}

export class OrtSession {
  private nextId = 1;
  private waiting = new Map<number, { resolve: (r: RunReply) => void; reject: (e: Error) => void }>();
  private failure?: Error;

  private constructor(
    private readonly worker: Worker,
    readonly inputs: IoInfo[],
    readonly outputs: IoInfo[],
  ) {
    worker.on('message', (r: RunReply) => {
      const w = this.waiting.get(r.id);
      if (!w) return;
      this.waiting.delete(r.id);
      w.resolve(r);
    });
    const fail = (e: Error) => {
      this.failure = e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`onnxruntime worker exited (code ${code})`)));
  }

  /** Starts a worker and loads the model into it; rejects with onnxruntime's first error line. */
  static async create(model: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<OrtSession> {
    const init: WorkerInit = { model, options };
    const worker = new Worker(new URL('./ort-worker.js', import.meta.url), { workerData: init });
    const ready = await new Promise<WorkerReady>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    if (!ready.ok) {
      await worker.terminate();
      throw new Error(ready.error);
    }
    return new OrtSession(worker, ready.inputs, ready.outputs);
  }

  /**
   * Runs the model. A feed whose data spans its whole ArrayBuffer is transferred to the worker (the caller must not
   * use it afterwards); any other view is copied.
   */
  run(feeds: Record<string, TensorData>, fetches: string[]): Promise<Record<string, TensorData & { type: string }>> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const transfer: ArrayBuffer[] = [];
    const sent: Record<string, TensorData> = {};
    for (const [name, t] of Object.entries(feeds)) {
      // A view of a buffer that an earlier run took over is empty (detached); sending it would never be answered.
      const need = t.dims.reduce((a, b) => a * b, 1);
      if (t.data.length !== need)
        return Promise.reject(
          new Error(
            `input '${name}' has ${t.data.length} values for dims [${t.dims.join(', ')}]${t.data.buffer.byteLength === 0 ? ' (its buffer was handed to an earlier run)' : ''}`,
          ),
        );
      const whole = t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength && t.data.buffer instanceof ArrayBuffer;
      const data = whole ? t.data : t.data.slice();
      sent[name] = { dims: t.dims, data };
      transfer.push(data.buffer as ArrayBuffer);
    }
    return new Promise((resolve, reject) => {
      this.waiting.set(id, {
        resolve: (r) => (r.outputs ? resolve(r.outputs) : reject(new Error(r.error ?? 'no output'))),
        reject,
      });
      const req: RunRequest = { id, feeds: sent, fetches };
      this.worker.postMessage(req, transfer);
    });
  }

  async release(): Promise<void> {
    this.failure ??= new Error('session released');
    await this.worker.terminate();
  }
}
