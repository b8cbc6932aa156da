// The ONNX metadata contract (what scripts/export_backbone.py writes and the node reads), on the project's models
// with metadata appended exactly as the export script appends it.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxBackbone } from '../src/backbone/onnx-backbone.js';
import { OnnxGraph } from '../src/onnx/builder.js';
import { encodeModel, metadataProps, newModel } from '../src/onnx/model.js';
import sharp from 'sharp';
import { readNpy } from '../src/io/npy.js';
import { cli, modelPath, tempDir } from './helpers/util.js';

/** ModelProto field 14 entries appended to a serialized model, as the export script does. */
function withMetadata(file: string, meta: Record<string, string>, out: string): string {
  const entries = encodeModel(newModel({ metadataProps: metadataProps(meta) }));
  writeFileSync(out, Buffer.concat([readFileSync(file), entries]));
  return out;
}

describe('ONNX metadata contract', () => {
  const dir = tempDir('s2-meta-');

  it('reads appended metadata and uses s2.image_size as the default crop of a dynamic-size model', async () => {
    const file = withMetadata(modelPath('convnet-tiny'), { 's2.image_size': '48', 's2.kind': 'convnet' }, join(dir, 'conv48.onnx'));
    const bb = await OnnxBackbone.load(file);
    assert.equal(bb.metadata['s2.image_size'], '48');
    assert.equal(bb.nativeSize, 48);
    await bb.release();
    const r = cli(['inspect', '--model', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /layout {5}bchw, 0 prefix tokens, 12 channels, grid 12×12 per 48×48 crop/);
  });

  it('takes s2.num_prefix_tokens over guessing, and says so when it does not fit the tokens', async () => {
    const wrong = withMetadata(modelPath('vit-tiny-noprefix'), { 's2.num_prefix_tokens': '1' }, join(dir, 'wrong.onnx'));
    const bb = await OnnxBackbone.load(wrong);
    await assert.rejects(bb.layoutFor([32, 32]), /wrong\.onnx: 16 tokens with 1 prefix tokens leave 15 spatial tokens, not a square grid/);
    await bb.release();
  });

  it('uses s2.mean/s2.std for --image unless given otherwise', async () => {
    const file = withMetadata(modelPath('vit-tiny-noprefix'), { 's2.mean': '0.5,0.5,0.5', 's2.std': '0.5,0.5,0.5' }, join(dir, 'half.onnx'));
    const png = join(dir, 'scene.png');
    const raw = Buffer.alloc(40 * 40 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 256;
    await sharp(raw, { raw: { width: 40, height: 40, channels: 3 } })
      .png()
      .toFile(png);
    const run = (out: string, extra: string[]) => {
      const r = cli(['features', '--model', file, '--image', png, '--size', '32', '--out', join(dir, out), '--scales', '1', ...extra]);
      assert.equal(r.status, 0, r.stderr);
      return readNpy(join(dir, out)).data;
    };
    const fromMeta = run('meta.npy', []);
    const explicit = run('explicit.npy', ['--mean', '0.5,0.5,0.5', '--std', '0.5,0.5,0.5']);
    const imagenet = run('imagenet.npy', ['--preset', 'imagenet']);
    assert.deepEqual(fromMeta, explicit);
    assert.notDeepEqual(fromMeta, imagenet);
    // A bare model with no metadata at all.
    const g = new OnnxGraph('bare');
    const x = g.input('pixel_values', ['batch', 3, 'height', 'width']);
    g.op('Conv', [x, g.weight('w', [4, 3, 1, 1], new Float32Array(12).fill(0.1))], { kernel_shape: [1, 1] }, 'features');
    g.output('features', ['batch', 4, 'height', 'width']);
    const noMeta = join(dir, 'nometa.onnx');
    writeFileSync(noMeta, g.serialize());
    const r = cli(['features', '--model', noMeta, '--image', png, '--size', '32', '--out', join(dir, 'b.npy'), '--scales', '1']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /nometa\.onnx has no s2\.mean\/s2\.std metadata: pass --preset imagenet\|clip\|none or --mean\/--std/);
  });
});
