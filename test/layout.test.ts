// Output layout and prefix-token detection.
import { strict as assert } from 'node:assert';
import { inferLayout, prefixCandidates, LayoutError } from '../src/backbone/layout.js';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { modelPath } from './helpers/util.js';

describe('layout detection', () => {
  it('reads the prefix-token count from common ViT token counts', () => {
    assert.deepEqual(prefixCandidates(197, 224), [1]); // ViT-B/16 with CLS
    assert.deepEqual(prefixCandidates(196, 224), [0]); // without CLS
    assert.deepEqual(prefixCandidates(261, 224), [5]); // DINOv2/14 with CLS + 4 registers
    assert.deepEqual(prefixCandidates(256, 224), [0]); // SigLIP/14
    assert.deepEqual(prefixCandidates(17, 32), [1]);
  });

  it('infers bnc and bchw from rank, honours overrides and metadata', () => {
    assert.deepEqual(inferLayout([1, 197, 768], [224, 224]), { outputShape: 'bnc', numPrefixToken: 1, channels: 768, grid: [14, 14] });
    assert.deepEqual(inferLayout([1, 512, 7, 7], [224, 224]), { outputShape: 'bchw', numPrefixToken: 0, channels: 512, grid: [7, 7] });
    assert.equal(inferLayout([1, 197, 8], [224, 224], { metadataPrefix: 1 }).numPrefixToken, 1);
    assert.equal(inferLayout([1, 20, 8], [32, 32], { numPrefixToken: 4 }).grid[0], 4);
  });

  it('refuses ambiguous or impossible token counts with a hint', () => {
    // 64 tokens at 224: an 8×8 grid of 28-pixel patches, or 15 prefix tokens and a 7×7 grid of 32-pixel patches.
    assert.throws(
      () => inferLayout([1, 64, 8], [224, 224]),
      (e: unknown) => e instanceof LayoutError && /\(could be 0 or 15\); pass --num-prefix-token/.test(e.message),
    );
    assert.throws(() => inferLayout([1, 50, 8], [32, 32]), /cannot tell the prefix-token count from 50 tokens/);
    assert.throws(() => inferLayout([1, 20, 8], [32, 32], { numPrefixToken: 2 }), /not a square grid/);
    assert.throws(() => inferLayout([1, 8], [32, 32]), /rank 2/);
    assert.throws(() => inferLayout([1, 512, 7, 7], [224, 224], { numPrefixToken: 1 }), /prefix tokens only exist in bnc/);
  });

  it('probes the project models', async () => {
    const cases = [
      ['vit-tiny', 'bnc', 1],
      ['vit-tiny-noprefix', 'bnc', 0],
      ['vit-tiny-reg', 'bnc', 5],
      ['convnet-tiny', 'bchw', 0],
    ] as const;
    for (const [preset, shape, prefix] of cases) {
      const bb = await OnnxBackbone.load(modelPath(preset));
      const l = await bb.layoutFor([32, 32]);
      assert.equal(l.outputShape, shape, preset);
      assert.equal(l.numPrefixToken, prefix, preset);
      await bb.release();
    }
  });

  it('finds the feature output among several and the image input', async () => {
    const bb = await OnnxBackbone.load(modelPath('vit-tiny'));
    assert.equal(bb.inputName, 'pixel_values');
    assert.equal(bb.outputName, 'features');
    assert.deepEqual(
      bb.outputs.map((o) => o.name),
      ['features', 'pooled'],
    );
    assert.deepEqual(bb.fixedSize, [32, 32]);
    await bb.release();
    const pooled = OnnxBackbone.load(modelPath('vit-tiny'), { outputName: 'nope' });
    await assert.rejects(pooled, /no output named 'nope' \(outputs: features, pooled\)/);
  });
});
