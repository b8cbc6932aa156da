// The s2-policy executable: one-line errors with a non-zero exit for every user mistake, and the image path.
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { encodeNpy, readNpy, writeNpy } from '../src/io/npy.js';
import { cli, modelPath, tempDir } from './helpers/util.js';

function expectError(args: string[], pattern: RegExp): void {
  const r = cli(args);
  assert.equal(r.status, 2, `exit status for ${args.join(' ')}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(lines[0], /^s2-policy: /);
  assert.match(lines[0], pattern);
}

describe('s2-policy CLI errors', () => {
  const dir = tempDir();
  const input32 = join(dir, 'x32.npy');
  const input48x64 = join(dir, 'x48x64.npy');
  const rank3 = join(dir, 'rank3.npy');
  const f64 = join(dir, 'f64.npy');
  const notOnnx = join(dir, 'model.onnx');
  const out = join(dir, 'y.npy');

  before(() => {
    writeNpy(input32, { dims: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(0.1) });
    writeNpy(input48x64, { dims: [1, 3, 48, 64], data: new Float32Array(3 * 48 * 64).fill(0.1) });
    writeNpy(rank3, { dims: [3, 32, 32], data: new Float32Array(3 * 32 * 32) });
    // A float64 .npy: same header layout with '<f8'.
    const f32 = encodeNpy({ dims: [1, 3, 2, 2], data: new Float32Array(12) });
    const text = Buffer.from(f32.subarray(10, 10 + new DataView(f32.buffer).getUint16(8, true)))
      .toString('latin1')
      .replace("'<f4'", "'<f8'");
    writeFileSync(f64, Buffer.concat([Buffer.from(f32.subarray(0, 10)), Buffer.from(text, 'latin1'), Buffer.alloc(12 * 8)]));
    writeFileSync(notOnnx, 'this is not a model\n');
  });

  it('names a missing model file', () =>
    expectError(['features', '--model', join(dir, 'missing.onnx'), '--input', input32, '--out', out, '--scales', '1'], /missing\.onnx: no such model file/));
  it('names a file that is not ONNX', () => expectError(['inspect', '--model', notOnnx], /model\.onnx: (not an ONNX model|onnxruntime cannot load it)/));
  it('names a missing input file', () =>
    expectError(['features', '--model', modelPath('vit-tiny'), '--input', join(dir, 'nope.npy'), '--out', out, '--scales', '1'], /nope\.npy: no such file/));
  it('rejects a .npy of the wrong dtype', () =>
    expectError(['features', '--model', modelPath('vit-tiny'), '--input', f64, '--out', out, '--scales', '1'], /f64\.npy: dtype is '<f8', expected float32/));
  it('rejects a .npy of the wrong rank', () =>
    expectError(
      ['features', '--model', modelPath('vit-tiny'), '--input', rank3, '--out', out, '--scales', '1'],
      /rank3\.npy: expected a 4-D float32 N×C×H×W array, got shape \(3, 32, 32\)/,
    ));
  it('requires --max-split-size for non-square input', () =>
    expectError(
      ['features', '--model', modelPath('convnet-tiny'), '--input', input48x64, '--out', out, '--scales', '1,2'],
      /input is 48×64 \(not square\): --max-split-size is required/,
    ));
  it('says which crop size the model takes and which --max-split-size fits', () =>
    expectError(
      ['features', '--model', modelPath('vit-tiny'), '--input', input32, '--out', out, '--img-sizes', '32,48', '--max-split-size', '32'],
      /crop size 24×24 \(scale 48×48\) does not fit the model's fixed input 32×32; use --max-split-size 32 with scale sizes that are multiples of 32/,
    ));
  it('rejects an unknown flag', () => expectError(['features', '--model', modelPath('vit-tiny'), '--bogus', '1'], /features: Unknown option '--bogus'/));
  it('rejects a malformed size list', () =>
    expectError(['inspect', '--model', modelPath('vit-tiny'), '--img-sizes', '32,abc'], /--img-sizes: expected a size like 224 or 224x336, got 'abc'/));
  it('rejects an unknown command', () => expectError(['frobnicate'], /unknown command 'frobnicate'/));
  it('requires scales', () =>
    expectError(['features', '--model', modelPath('vit-tiny'), '--input', input32, '--out', out], /one of --scales or --img-sizes is required/));

  it('computes features of an image file with the model metadata normalisation', async () => {
    const png = join(dir, 'photo.png');
    const w = 40;
    const h = 30;
    const raw = Buffer.alloc(w * h * 3);
    for (let i = 0; i < w * h; i++) raw.set([(i * 7) % 256, (i * 3) % 256, 128], i * 3);
    await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toFile(png);
    // Its own output: the error cases below give `out`, which must not exist (an existing output is refused first).
    const written = join(dir, 'image.npy');
    const r = cli(['features', '--model', modelPath('vit-tiny'), '--image', png, '--out', written, '--scales', '1,2']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /wrote .*image\.npy: float32 \(1, 17, 48\) \[bnc, 1 prefix tokens\]/);
    const y = readNpy(written);
    assert.deepEqual(y.dims, [1, 17, 48]);
    assert.ok(y.data.every((v) => Number.isFinite(v)));
    expectError(
      ['features', '--model', modelPath('vit-tiny'), '--image', join(dir, 'none.jpg'), '--out', out, '--scales', '1'],
      /none\.jpg: no such image file/,
    );
    expectError(['features', '--model', modelPath('vit-tiny'), '--image', input32, '--out', out, '--scales', '1'], /x32\.npy: cannot decode image/);
  });

  it('inspect prints the S² plan for a model', () => {
    const r = cli(['inspect', '--model', modelPath('vit-tiny'), '--img-sizes', '32,64,96']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /layout {5}bnc, 1 prefix tokens, 24 channels, grid 4×4 per 32×32 crop/);
    assert.match(r.stdout, /scale 2 {4}96×96: 3×3 crops of 32×32/);
    assert.match(r.stdout, /S² output {2}1×17×72/);
    assert.match(r.stdout, /backbone {3}14 crops in 1 call\n/);
  });
});
