// A backbone input whose buffer an earlier run took over (transferred to the inference thread) is refused at once,
// naming the input, instead of a request the worker can never answer.
import { strict as assert } from 'node:assert';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { modelPath } from './helpers/util.js';

describe('backbone input hand-over', () => {
  it('refuses a second run on a buffer handed to an earlier one, in one message', async () => {
    const bb = await OnnxBackbone.load(modelPath('vit-tiny'));
    try {
      const x = { dims: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) };
      const y = await bb.forward(x);
      assert.equal(y.dims[0], 1);
      await assert.rejects(bb.forward(x), /has 0 values for dims \[1, 3, 32, 32\] \(its buffer was handed to an earlier run\)/);
      const fresh = await bb.forward({ dims: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) });
      assert.deepEqual(fresh.dims, y.dims, 'the session still works');
    } finally {
      await bb.release();
    }
  });
});
