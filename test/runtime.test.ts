// The runtime builder: every start-up shape check, each naming the config key and both numbers, the same for every
// entry point (tested through the library and through replay and extract on the command line).
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { writeDemoKit, type DemoKit } from '../src/run/demo-kit.js';
import { loadConfig, type Config } from '../src/config/config.js';
import { UserError } from '../src/errors.js';
import { asConfigKeys, buildRuntime, checkShapes } from '../src/runtime/build.js';
import { cli, tempDir } from './helpers/util.js';

describe('runtime builder', function () {
  this.timeout(120000);
  let kit: DemoKit;
  let config: Config;

  before(async () => {
    kit = await writeDemoKit(tempDir('s2-rt-'), { durationS: 1, width: 96, height: 72 });
    config = loadConfig(kit.config);
  });

  const edit = (f: (c: Config) => void): Config => {
    const c = structuredClone(config);
    f(c);
    return c;
  };
  const shape = { featureDim: 48, stateDim: 2, chunk: 4, actionDim: 2 };

  it('checks state width against joint_states.names, naming both numbers', () => {
    const c = edit((x) => (x.joint_states!.names = ['a', 'b', 'c', 'd', 'e', 'f', 'g']));
    assert.throws(
      () => checkShapes(c, 'cfg.yaml', shape, 24),
      (e: Error) => e instanceof UserError && /^cfg\.yaml: joint_states\.names: has 7 joints, \S+ input 'state' takes 2 values$/.test(e.message),
    );
    assert.throws(
      () =>
        checkShapes(
          edit((x) => (x.joint_states = undefined)),
          'cfg.yaml',
          shape,
          24,
        ),
      /joint_states\.names: \S+ input 'state' takes a state of 2 values/,
    );
  });

  it('checks action width against control.joint_names, the limits and the action interface', () => {
    assert.throws(
      () =>
        checkShapes(
          edit((x) => (x.control!.joint_names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'])),
          'cfg.yaml',
          shape,
          24,
        ),
      /^UserError: cfg\.yaml: control\.joint_names: has 7 names, \S+ gives 2 action values$/,
    );
    for (const key of ['lower', 'upper', 'max_delta'] as const) {
      const c = edit((x) => (x.control![key] = [0.1, 0.2, 0.3]));
      if (key === 'lower') c.control!.upper = [1, 1, 1];
      assert.throws(() => checkShapes(c, 'cfg.yaml', shape, 24), new RegExp(`cfg\\.yaml: control\\.${key}: has 3 values, \\S+ gives 2 action values`));
    }
    const twist = edit((x) => {
      x.control!.action_interface = 'twist_stamped';
      x.control!.joint_names = undefined;
    });
    assert.throws(() => checkShapes(twist, 'cfg.yaml', shape, 24), /control\.action_interface: twist_stamped carries 6 values, \S+ gives 2/);
    const twist6 = edit((x) => {
      x.control!.action_interface = 'twist_stamped';
      x.control!.joint_names = undefined;
      x.control!.lower = x.control!.upper = x.control!.max_delta = undefined;
    });
    assert.doesNotThrow(() => checkShapes(twist6, 'cfg.yaml', { ...shape, actionDim: 6 }, 24));
  });

  it('checks the feature width: cameras × pooled width', () => {
    assert.throws(
      () => checkShapes(config, 'cfg.yaml', shape, 100),
      /policy\.model: \S+ input 'features' takes 48 features, the 2 camera\(s\) give 2 × 100 = 200/,
    );
    assert.doesNotThrow(() => checkShapes(config, 'cfg.yaml', shape, 24));
  });

  it('loads the models and checks them; a run that acts needs policy and control, extract does not', async () => {
    const rt = await buildRuntime(config, kit.config, { features: true, policy: true, by: 'replay' });
    assert.equal(rt.head?.shape.featureDim, rt.extractor!.layout.perCamera * config.cameras.length);
    await rt.release();
    const bare = edit((x) => {
      x.policy = undefined;
      x.control = undefined;
    });
    await assert.rejects(buildRuntime(bare, 'cfg.yaml', { features: true, policy: true, by: 'replay' }), /^UserError: cfg\.yaml: policy: required by replay$/);
    const features = await buildRuntime(bare, 'cfg.yaml', { features: true, policy: false, by: 'extract' });
    assert.equal(features.head, undefined);
    await features.release();
  });

  it('names config keys, not flags, in S² planner errors about a config', async () => {
    assert.equal(asConfigKeys('maxSplitSize must be a positive integer'), 's2.max_split_size must be a positive integer');
    const c = edit((x) => (x.s2.max_split_size = 7));
    await assert.rejects(
      buildRuntime(c, 'cfg.yaml', { features: true, policy: false, by: 'extract' }),
      (e: Error) => e instanceof UserError && e.message.startsWith('cfg.yaml: ') && !e.message.includes('--'),
    );
  });

  it('replay and extract refuse the same mismatches on the command line, in one line, exit 2', () => {
    const bad = join(kit.dir, 'bad-joints.yaml');
    const raw = structuredClone(config) as unknown as { joint_states: { names: string[] } };
    raw.joint_states.names = ['joint1', 'joint2', 'j3', 'j4', 'j5', 'j6', 'j7'];
    writeFileSync(bad, stringify(raw));
    const r = cli(['replay', '--bag', kit.recording, '--config', bad, '--out', join(kit.dir, 'x.mcap')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^s2-policy: \S*bad-joints\.yaml: joint_states\.names: has 7 joints, \S+ input 'state' takes 2 values\n$/);
    // extract uses no policy: the same file extracts (its joint states simply lack five of the joints).
    const noPolicy = join(kit.dir, 'no-policy.yaml');
    const np = structuredClone(config) as unknown as Record<string, unknown>;
    delete np.policy;
    delete np.control;
    writeFileSync(noPolicy, stringify(np));
    const e = cli(['extract', '--bag', kit.recording, '--config', noPolicy, '--out', join(kit.dir, 'features')]);
    assert.equal(e.status, 0, e.stderr);
  });
});
