// make-input: the README's way to a test batch without Python.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy } from '../src/io/npy.js';
import { cli, tempDir } from './helpers/util.js';

describe('make-input', () => {
  it('writes a seeded N×C×H×W float32 batch in [0, 1) that features takes; the same seed gives the same bytes', () => {
    const dir = tempDir('s2-make-input-');
    const a = join(dir, 'a.npy');
    const b = join(dir, 'b.npy');
    const c = join(dir, 'c.npy');
    assert.equal(cli(['make-input', '--shape', '2x3x16x24', '--out', a]).status, 0);
    assert.equal(cli(['make-input', '--shape', '2x3x16x24', '--out', b]).status, 0);
    assert.equal(cli(['make-input', '--shape', '2x3x16x24', '--seed', '5', '--out', c]).status, 0);
    const t = readNpy(a);
    assert.deepEqual(t.dims, [2, 3, 16, 24]);
    assert.ok(t.data.every((v) => v >= 0 && v < 1));
    const mean = t.data.reduce((s, v) => s + v, 0) / t.data.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
    assert.deepEqual(readFileSync(a), readFileSync(b));
    assert.notDeepEqual(readFileSync(a), readFileSync(c));
  });

  it('refuses a shape that is not four positive integers, in one line', () => {
    const dir = tempDir('s2-make-input-');
    for (const shape of ['3x32x32', '1x3x0x32', '1x3x32xq']) {
      const r = cli(['make-input', '--shape', shape, '--out', join(dir, 'x.npy')]);
      assert.equal(r.status, 2);
      assert.equal(r.stderr.trim(), `s2-policy: make-input: --shape '${shape}': expected four positive integers N x C x H x W, e.g. 1x3x224x224`);
    }
  });
});
