// The command line as a new user meets it: the documented make-demo → extract → fit → replay chain on a fresh
// folder, the one rule for existing outputs over every command that writes one, "did you mean" for unknown flags,
// and the errors for the usual input mistakes.
import { strict as assert } from 'node:assert';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { join } from 'node:path';
import { COMMANDS, run } from '../src/cli/main.js';
import { editDistance, suggestFlag } from '../src/cli/args.js';
import { encodeArray, readNpy, writeNpy } from '../src/io/npy.js';
import { PolicyHead } from '../src/policy/head.js';
import { demoConfig } from '../src/run/demo-kit.js';
import { stampPeriodMs } from '../src/run/fit.js';
import { cli, maxAbsDiff, modelPath, rms, tempDir } from './helpers/util.js';

/** Runs the CLI in this process; the error lines it printed. */
async function runQuiet(args: string[]): Promise<{ code: number; err: string[]; out: string[] }> {
  const err: string[] = [];
  const out: string[] = [];
  const saved = { log: console.log, error: console.error };
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    return { code: await run(args), err, out };
  } finally {
    console.log = saved.log;
    console.error = saved.error;
  }
}

describe('the documented chain on a fresh folder: make-demo → extract → fit → replay with the fitted head', function () {
  this.timeout(300000);

  it('fits a head on extract’s output (int64 stamps) and the replay publishes its actions', async () => {
    const dir = tempDir('s2-chain-');
    const demo = join(dir, 'demo');
    let r = cli(['make-demo', '--out', demo]);
    assert.equal(r.status, 0, r.stderr);
    const features = join(demo, 'features');
    r = cli([
      'extract',
      '--bag',
      join(demo, 'demo.mcap'),
      '--config',
      join(demo, 'config.yaml'),
      '--out',
      features,
      '--actions-topic',
      '/teleop/joint_velocity',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const model = join(features, 'policy.onnx');
    r = cli(['fit', '--data', features, '--out', model]);
    assert.equal(r.status, 0, r.stderr);
    // The chunk's frame period comes from extract's int64 stamps: the 30 fps wrist camera's 33.3 ms (not the 50 ms
    // a missing period would default to at 20 Hz).
    assert.match(r.stdout, /^chunk 2: covers a frame period of 33\.3 ms plus 50\.0 ms of processing at 20 Hz/m);
    assert.match(r.stdout, /wrote .*policy\.onnx and .*policy\.stats\.json: 96 features \+ 2 state → 2×2 actions/);

    const head = await PolicyHead.load({
      model,
      stats: join(features, 'policy.stats.json'),
      featuresInput: 'features',
      stateInput: 'state',
      output: 'actions',
    });
    try {
      const a = await head.act(new Float32Array(96).fill(0.1), Float32Array.of(0.05, -0.05));
      assert.equal(a.length, 4);
      assert.ok(a.every(Number.isFinite) && a.some((v) => v !== 0), String(a));
    } finally {
      await head.release();
    }
    const config = join(demo, 'fitted.yaml');
    writeFileSync(config, readFileSync(join(demo, 'config.yaml'), 'utf8').replace('model: policy.onnx', 'model: features/policy.onnx'));
    r = cli(['replay', '--bag', join(demo, 'demo.mcap'), '--config', config, '--out', join(dir, 'out.mcap')]);
    assert.equal(r.status, 0, r.stderr);
    const m = /^actions {3}(\d+) on \/s2_policy\/joint_trajectory .* limits respected$/m.exec(r.stdout);
    assert.ok(m && Number(m[1]) > 50, r.stdout);
  });

  it('reads the stamp period from int64 and float32 stamps_ns.npy (median positive spacing)', () => {
    const dir = tempDir('s2-stamps-');
    const base = 1_700_000_000_000_000_000n;
    // Spacings 20, 50, 50, 0 (a repeated stamp), 50 ms: median of the positive ones is 50 ms, kept to the nanosecond.
    const ns = [0n, 20_000_000n, 70_000_000n, 120_000_000n, 120_000_000n, 170_000_123n].map((d) => base + d);
    writeFileSync(join(dir, 'stamps_ns.npy'), encodeArray([ns.length], BigInt64Array.from(ns)));
    assert.equal(stampPeriodMs(dir), 50);
    writeNpy(join(dir, 'stamps_ns.npy'), { dims: [4], data: Float32Array.of(0, 25e6, 50e6, 100e6) });
    assert.equal(stampPeriodMs(dir), 25);
  });
});

describe('one rule for existing outputs, for every command that writes one', function () {
  this.timeout(120000);

  it('refuses an existing --out without --force in one line naming the path and --force, leaving it untouched', async () => {
    const dir = tempDir('s2-outputs-');
    const kit = join(dir, 'kit');
    assert.equal((await runQuiet(['make-demo', '--out', kit, '--duration', '1', '--width', '64', '--height', '48'])).code, 0);
    const x = join(dir, 'x.npy');
    writeNpy(x, { dims: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(0.2) });
    const file = (name: string) => {
      const p = join(dir, name);
      writeFileSync(p, 'precious\n');
      return p;
    };
    const folder = (name: string) => {
      const p = join(dir, name);
      mkdirSync(p);
      writeFileSync(join(p, 'precious.txt'), 'precious\n');
      return p;
    };
    const bag = join(kit, 'demo.mcap');
    const config = join(kit, 'config.yaml');
    const cases: Record<string, (out: string) => string[]> = {
      features: (o) => ['features', '--model', modelPath('vit-tiny'), '--input', x, '--out', o, '--scales', '1,2'],
      compile: (o) => ['compile', '--model', modelPath('vit-tiny'), '--out', o, '--scales', '1,2'],
      'make-model': (o) => ['make-model', '--preset', 'vit-tiny', '--out', o],
      'make-input': (o) => ['make-input', '--shape', '1x3x8x8', '--out', o],
      'make-demo': (o) => ['make-demo', '--out', o],
      replay: (o) => ['replay', '--bag', bag, '--config', config, '--out', o],
      extract: (o) => ['extract', '--bag', bag, '--config', config, '--out', o],
      'sim collect': (o) => ['sim', 'collect', '--out', o, '--episodes', '1'],
      'sim models': (o) => ['sim', 'models', '--out', o],
      'sim frames': (o) => ['sim', 'frames', '--out', o, '--count', '1'],
      fit: (o) => ['fit', '--data', join(dir, 'no-data'), '--out', o],
      params: (o) => ['params', '--config', config, '--out', o],
    };
    const kinds: Record<string, 'file' | 'folder'> = { 'make-demo': 'folder', extract: 'folder', 'sim collect': 'folder', 'sim models': 'folder' };
    const writers = COMMANDS.filter((c) => c.writes === '--out').map((c) => c.name);
    assert.deepEqual(writers.sort(), Object.keys(cases).sort(), 'every command that writes --out has a case here');
    // Every command whose help offers --out either follows the rule or says its --out is a run folder it reuses.
    for (const c of COMMANDS) if (/--out\b/.test(c.help)) assert.ok(c.writes !== undefined, `${c.name}: writes --out but declares no output`);
    for (const name of writers) {
      const slug = name.replace(' ', '-');
      const out = kinds[name] === 'folder' ? folder(`${slug}-out`) : file(name === 'replay' ? `${slug}.mcap` : name === 'fit' ? 'fit.onnx' : `${slug}.out`);
      const before = kinds[name] === 'folder' ? readFileSync(join(out, 'precious.txt')) : readFileSync(out);
      const o = await runQuiet(cases[name](out));
      assert.equal(o.code, 2, `${name}: exit ${o.code}; ${o.err.join(' | ')}`);
      assert.equal(o.err.length, 1, `${name}: ${o.err.join(' | ')}`);
      const expected = kinds[name] === 'folder' ? `exists and is not empty; pass --force to replace it` : `exists; pass --force to replace it`;
      assert.equal(o.err[0], `s2-policy: ${name}: --out ${out} ${expected}`);
      assert.deepEqual(kinds[name] === 'folder' ? readFileSync(join(out, 'precious.txt')) : readFileSync(out), before, `${name}: output changed`);
    }
    // fit refuses an existing statistics file beside a new model too.
    const stats = file('p.stats.json');
    const o = await runQuiet(['fit', '--data', dir, '--out', join(dir, 'p.onnx')]);
    assert.deepEqual(o.err, [`s2-policy: fit: the statistics of --out ${stats} exists; pass --force to replace it`]);
  });

  it('replaces the output with --force (features, compile and params, which used to overwrite silently)', async () => {
    const dir = tempDir('s2-force-');
    const x = join(dir, 'x.npy');
    writeNpy(x, { dims: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(0.2) });
    for (const [name, args] of [
      ['y.npy', ['features', '--model', modelPath('vit-tiny'), '--input', x, '--scales', '1,2']],
      ['s2.onnx', ['compile', '--model', modelPath('vit-tiny'), '--scales', '1,2', '--no-check']],
    ] as const) {
      const out = join(dir, name);
      writeFileSync(out, 'old');
      const o = await runQuiet([...args, '--out', out, '--force']);
      assert.equal(o.code, 0, o.err.join(' | '));
      assert.notEqual(readFileSync(out, 'utf8'), 'old');
    }
    const config = join(dir, 'config.yaml');
    writeFileSync(config, stringify(demoConfig()));
    const params = join(dir, 'params.yaml');
    writeFileSync(params, 'old');
    assert.equal((await runQuiet(['params', '--config', config, '--out', params])).code, 2);
    assert.equal(readFileSync(params, 'utf8'), 'old');
    assert.equal((await runQuiet(['params', '--config', config, '--out', params, '--force'])).code, 0);
    assert.match(readFileSync(params, 'utf8'), /^s2_policy:\n {2}ros__parameters:/m);
  });
});

describe('flags: did you mean', () => {
  it('measures edits with adjacent transpositions as one', () => {
    assert.equal(editDistance('img-sizes', 'img-sizes'), 0);
    assert.equal(editDistance('img-size', 'img-sizes'), 1);
    assert.equal(editDistance('sacles', 'scales'), 1);
    assert.equal(editDistance('kitten', 'sitting'), 3);
  });

  it('suggests the closest known flag, or none when nothing is close', () => {
    const known = ['model', 'input', 'out', 'img-sizes', 'scales', 'max-split-size', 'actions-topic'];
    assert.equal(suggestFlag('--img-size', known), '; did you mean --img-sizes?');
    assert.equal(suggestFlag('--actions_topic', known), '; did you mean --actions-topic?');
    assert.equal(suggestFlag('--output', known), '; did you mean --out?');
    assert.equal(suggestFlag('--max-split', known), '; did you mean --max-split-size?');
    assert.equal(suggestFlag('--bogus', known), undefined);
  });

  it('prints it in the one-line error, and points to --help otherwise', async () => {
    let o = await runQuiet(['features', '--model', 'm.onnx', '--img-size', '32']);
    assert.deepEqual(o.err, ["s2-policy: features: Unknown option '--img-size'; did you mean --img-sizes?"]);
    o = await runQuiet(['extract', '--bag', 'b.mcap', '--actions_topic', '/a']);
    assert.deepEqual(o.err, ["s2-policy: extract: Unknown option '--actions_topic'; did you mean --actions-topic?"]);
    o = await runQuiet(['fit', '--bogus']);
    assert.deepEqual(o.err, ["s2-policy: fit: Unknown option '--bogus'; see s2-policy fit --help"]);
  });
});

describe('input mistakes get an error that says what to do', function () {
  this.timeout(60000);
  const dir = tempDir('s2-inputs-');
  const out = join(dir, 'y.npy');

  it('a channels-last N×H×W×C .npy: says so and how to transpose', async () => {
    const file = join(dir, 'hwc.npy');
    writeNpy(file, { dims: [2, 32, 32, 3], data: new Float32Array(2 * 32 * 32 * 3).fill(0.5) });
    const o = await runQuiet(['features', '--model', modelPath('vit-tiny'), '--input', file, '--out', out, '--scales', '1,2']);
    assert.deepEqual(o.err, [
      `s2-policy: ${file}: shape (2, 32, 32, 3) looks channels-last (N×H×W×C, 3 channels); the input must be N×C×H×W: save x.transpose(0, 3, 1, 2)`,
    ]);
  });

  it('a non-square input without --max-split-size: the value to use and --split-mode', async () => {
    const file = join(dir, 'tall.npy');
    writeNpy(file, { dims: [1, 3, 64, 48], data: new Float32Array(3 * 64 * 48).fill(0.5) });
    const o = await runQuiet(['features', '--model', modelPath('convnet-tiny'), '--input', file, '--out', out, '--scales', '1,2']);
    assert.deepEqual(o.err, [
      's2-policy: input is 64×48 (not square): --max-split-size is required; use --max-split-size 48 (the shorter side) (the reference would take the height, 64) ' +
        'for crops of 48×48, with --split-mode resize (the default) or pad to make each scale whole crops',
    ]);
    const ok = await runQuiet([
      'features',
      '--model',
      modelPath('convnet-tiny'),
      '--input',
      file,
      '--out',
      join(dir, 'tall-features.npy'),
      '--scales',
      '1,2',
      '--max-split-size',
      '48',
    ]);
    assert.equal(ok.code, 0, ok.err.join(' | '));
  });

  it('an image given as --input: suggests --image', async () => {
    const photo = join(dir, 'photo.jpg');
    writeFileSync(photo, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46]));
    const o = await runQuiet(['features', '--model', modelPath('vit-tiny'), '--input', photo, '--out', out, '--scales', '1']);
    assert.deepEqual(o.err, [`s2-policy: ${photo}: not a NumPy .npy file (bad magic); for an image file (JPEG, PNG, …) use --image ${photo}`]);
  });

  it('a folder given as --config: says it is a directory', async () => {
    const o = await runQuiet(['params', '--config', dir]);
    assert.deepEqual(o.err, [`s2-policy: ${dir}: is a directory, not a YAML config file; give the file inside it`]);
  });
});

describe('compile: the input size of a backbone without one', function () {
  this.timeout(120000);

  it('defaults to the smallest --img-sizes, as the reference takes its first scale, and equals features on the backbone', async () => {
    const dir = tempDir('s2-compile-size-');
    const compiled = join(dir, 's2.onnx');
    const o = await runQuiet(['compile', '--model', modelPath('convnet-tiny'), '--out', compiled, '--img-sizes', '64,32']);
    assert.equal(o.code, 0, o.err.join(' | '));
    assert.match(o.out[0], /image \[batch, 3, 32, 32\] -> features .*\(input size 32×32: the smallest --img-sizes\)$/);
    const x = join(dir, 'x.npy');
    writeNpy(x, { dims: [1, 3, 32, 32], data: Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i)) });
    assert.equal((await runQuiet(['features', '--model', compiled, '--input', x, '--out', join(dir, 'a.npy')])).code, 0);
    const ref = await runQuiet(['features', '--model', modelPath('convnet-tiny'), '--input', x, '--out', join(dir, 'b.npy'), '--img-sizes', '64,32']);
    assert.equal(ref.code, 0, ref.err.join(' | '));
    const a = readNpy(join(dir, 'a.npy'));
    const b = readNpy(join(dir, 'b.npy'));
    assert.deepEqual(a.dims, b.dims);
    assert.ok(maxAbsDiff(a.data, b.data) <= 1e-4 * rms(b.data), `max difference ${maxAbsDiff(a.data, b.data)}`);
  });

  it('with --scales alone names the number to pass', async () => {
    const dir = tempDir('s2-compile-size-');
    let o = await runQuiet(['compile', '--model', modelPath('convnet-tiny'), '--out', join(dir, 'a.onnx'), '--scales', '1,2', '--max-split-size', '32']);
    assert.equal(o.err.length, 1);
    assert.match(o.err[0], /has no fixed input size or s2\.image_size metadata, and --scales multiply the input's size: pass --input-size 32 \(/);
    o = await runQuiet(['compile', '--model', modelPath('convnet-tiny'), '--out', join(dir, 'a.onnx'), '--scales', '1,2', '--input-size', '32']);
    assert.equal(o.code, 0, o.err.join(' | '));
  });
});

describe('s2-policy --help', () => {
  it('lists every command, sim models included, and fit as fitting linear, keypoint, detector or behaviour-cloning heads', () => {
    const r = cli(['--help']);
    assert.equal(r.status, 0);
    for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^ {2}${c.name} +\\S`, 'm'), c.name);
    assert.match(r.stdout, /^ {2}sim models +the demo models/m);
    assert.match(r.stdout, /^ {2}fit +a policy head \(linear ridge probe, keypoint, detector or behaviour cloning\)/m);
    assert.doesNotMatch(r.stdout, /a linear policy head/);
  });
});

describe('replay --policy', function () {
  this.timeout(120000);
  it('runs another head than the config names, and refuses a missing one in one line', async () => {
    const dir = tempDir('s2-replay-policy-');
    const kit = join(dir, 'kit');
    assert.equal((await runQuiet(['make-demo', '--out', kit, '--duration', '1', '--width', '64', '--height', '48'])).code, 0);
    const missing = join(dir, 'none.onnx');
    const bad = await runQuiet([
      'replay',
      '--bag',
      join(kit, 'demo.mcap'),
      '--config',
      join(kit, 'config.yaml'),
      '--policy',
      missing,
      '--out',
      join(dir, 'a.mcap'),
    ]);
    assert.equal(bad.code, 2);
    assert.deepEqual(bad.err, [`s2-policy: --policy ${missing}: no such file`]);
    // The demo's head copied under another name (with its statistics) gives the same actions as through the config.
    copyFileSync(join(kit, 'policy.onnx'), join(dir, 'other.onnx'));
    copyFileSync(join(kit, 'policy.stats.json'), join(dir, 'other.stats.json'));
    const viaConfig = await runQuiet(['replay', '--bag', join(kit, 'demo.mcap'), '--config', join(kit, 'config.yaml'), '--out', join(dir, 'b.mcap')]);
    const viaFlag = await runQuiet([
      'replay',
      '--bag',
      join(kit, 'demo.mcap'),
      '--config',
      join(kit, 'config.yaml'),
      '--policy',
      join(dir, 'other.onnx'),
      '--out',
      join(dir, 'c.mcap'),
    ]);
    assert.equal(viaFlag.code, 0, viaFlag.err.join(' | '));
    const actions = (o: { out: string[] }) => o.out.find((l) => l.startsWith('actions'));
    assert.ok(actions(viaFlag)?.match(/^actions +\d+ on /), String(actions(viaFlag)));
    assert.equal(actions(viaFlag), actions(viaConfig));
  });
});
