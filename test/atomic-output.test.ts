// Outputs under a temporary name, renamed on success: no partial file after a failure, an existing output untouched,
// and an output that is an input refused.
import { strict as assert } from 'node:assert';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AtomicDir, AtomicFile, pendingOutputs, refuseAliases, withAtomicDir, withAtomicFile, writeFileAtomic } from '../src/io/atomic.js';
import { McapRosWriter } from '../src/bag/writer.js';
import { UserError } from '../src/errors.js';
import { tempDir } from './helpers/util.js';

const isUserError = (pattern: RegExp) => (e: unknown) => e instanceof UserError && pattern.test(e.message);

describe('atomic outputs', () => {
  it('writes a file under a hidden temporary name in the target folder and renames it on success', () => {
    const dir = tempDir();
    const target = join(dir, 'a.bin');
    const out = AtomicFile.begin(target);
    assert.equal(join(out.tmp, '..'), dir);
    assert.match(out.tmp, /\/\.a\.bin\.\d+\.[a-z0-9]+\.tmp$/);
    writeFileSync(out.tmp, 'new');
    assert.equal(existsSync(target), false);
    out.commit();
    assert.equal(readFileSync(target, 'utf8'), 'new');
    assert.deepEqual(readdirSync(dir), ['a.bin']);
    assert.deepEqual(pendingOutputs(), []);
  });

  it('leaves an existing output untouched and no temporary file when the writer fails', async () => {
    const dir = tempDir();
    const target = join(dir, 'a.bin');
    writeFileSync(target, 'old');
    await assert.rejects(
      withAtomicFile(target, (tmp) => {
        writeFileSync(tmp, 'half');
        throw new Error('disk on fire');
      }),
      /disk on fire/,
    );
    assert.equal(readFileSync(target, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir), ['a.bin']);
  });

  it('replaces a folder whole on success and keeps the old one on failure', async () => {
    const dir = tempDir();
    const target = join(dir, 'out');
    mkdirSync(target);
    writeFileSync(join(target, 'stale.npy'), 'x');
    await assert.rejects(
      withAtomicDir(target, (tmp) => {
        writeFileSync(join(tmp, 'features.npy'), 'half');
        throw new UserError('no groups');
      }),
      /no groups/,
    );
    assert.deepEqual(readdirSync(target), ['stale.npy']);
    assert.deepEqual(readdirSync(dir), ['out']);
    await withAtomicDir(target, (tmp) => writeFileSync(join(tmp, 'features.npy'), 'full'));
    assert.deepEqual(readdirSync(target), ['features.npy']);
    assert.deepEqual(readdirSync(dir), ['out']);
  });

  it('names a missing folder, a file output that is a folder and a folder output that is a file, in one line', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), '');
    assert.throws(
      () => writeFileAtomic(join(dir, 'nope', 'a.npy'), 'x', '--out'),
      isUserError(/^--out .*nope\/a\.npy: cannot write: folder .*nope does not exist$/),
    );
    assert.throws(() => writeFileAtomic(dir, 'x', '--out'), isUserError(/: is a folder; give a file name$/));
    assert.throws(() => AtomicDir.begin(join(dir, 'file'), '--out'), isUserError(/: is a file; give a folder$/));
    assert.throws(() => writeFileAtomic(join(dir, 'file', 'a.npy'), 'x'), isUserError(/is not a folder$/));
  });

  it('refuses an output that is an input by path, symbolic link or hard link, or that holds an input', () => {
    const dir = tempDir();
    const input = join(dir, 'in.mcap');
    writeFileSync(input, 'recording');
    symlinkSync(input, join(dir, 'sym.mcap'));
    linkSync(input, join(dir, 'hard.mcap'));
    const inputs = [{ path: input, what: '--bag' }];
    for (const o of [input, join(dir, '.', 'in.mcap'), join(dir, 'sym.mcap'), join(dir, 'hard.mcap')]) {
      assert.throws(() => refuseAliases([{ path: o, what: '--out' }], inputs), isUserError(/is the input --bag/), o);
    }
    assert.throws(() => refuseAliases([{ path: dir, what: '--out' }], inputs), isUserError(/holds the input --bag/));
    assert.throws(() => refuseAliases([{ path: join(dir, 'x.mcap'), what: '--out' }], [{ path: dir, what: '--data' }]), isUserError(/inside the input folder/));
    refuseAliases([{ path: join(dir, 'other.mcap'), what: '--out' }], inputs);
    assert.equal(readFileSync(input, 'utf8'), 'recording');
  });

  it('McapRosWriter: the recording appears only on close, and abort leaves an existing file as it was', async () => {
    const dir = tempDir();
    const file = join(dir, 'o.mcap');
    writeFileSync(file, 'previous');
    const w = await McapRosWriter.create(file);
    const ch = await w.addChannel('/x', 'std_msgs/msg/Float64MultiArray');
    await w.write(ch, { layout: { dim: [], data_offset: 0 }, data: Float64Array.from([1]) }, 1n);
    assert.equal(readFileSync(file, 'utf8'), 'previous');
    await w.abort();
    assert.equal(readFileSync(file, 'utf8'), 'previous');
    assert.deepEqual(readdirSync(dir), ['o.mcap']);
    const w2 = await McapRosWriter.create(file);
    await w2.close();
    assert.deepEqual([...readFileSync(file).subarray(1, 5)], [0x4d, 0x43, 0x41, 0x50]);
    assert.deepEqual(readdirSync(dir), ['o.mcap']);
  });
});
