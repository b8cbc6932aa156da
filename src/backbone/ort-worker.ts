// Worker thread that owns one onnxruntime session. onnxruntime-node runs inference synchronously on the calling
// thread, so sessions live here and the main thread (control clock, I/O, ingestion) is never blocked by a model.
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { RunReply, RunRequest, WorkerInit, WorkerReady } from './ort-session.js';

const port = parentPort;
if (!port) throw new Error('ort-worker must run as a worker thread');
const init = workerData as WorkerInit;

function ioInfo(meta: readonly ort.InferenceSession.ValueMetadata[]) {
  return meta.map((m) => (m.isTensor ? { name: m.name, type: m.type, dims: [...m.shape] } : { name: m.name, type: 'non-tensor', dims: [] }));
}

async function main(): Promise<void> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(init.model, init.options);
  } catch (e) {
    const ready: WorkerReady = { ok: false, error: (e instanceof Error ? e.message : String(e)).split('\n')[0] };
    port?.postMessage(ready);
    return;
  }
  const ready: WorkerReady = { ok: true, inputs: ioInfo(session.inputMetadata), outputs: ioInfo(session.outputMetadata) };
  port?.postMessage(ready);
  port?.on('message', (req: RunRequest) => {
    void (async () => {
      try {
        const feeds: Record<string, ort.Tensor> = {};
        for (const [name, t] of Object.entries(req.feeds)) feeds[name] = new ort.Tensor('float32', t.data, t.dims);
        const res = await session.run(feeds, req.fetches);
        const outputs: RunReply['outputs'] = {};
        const transfer: ArrayBuffer[] = [];
        for (const name of req.fetches) {
          const t = res[name];
          const data = t.data as Float32Array;
          outputs[name] = { type: t.type, dims: [...t.dims], data };
          if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) transfer.push(data.buffer as ArrayBuffer);
        }
        const reply: RunReply = { id: req.id, outputs };
        port.postMessage(reply, transfer);
      } catch (e) {
        const reply: RunReply = { id: req.id, error: (e instanceof Error ? e.message : String(e)).split('\n')[0] };
        port.postMessage(reply);
      }
    })();
  });
}

void main();
