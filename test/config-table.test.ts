// The configuration table and everything derived from it: schema, ROS parameters both ways, README table, sizes,
// and the pipeline's reconfigure for every dynamic key.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NEVER } from 'rxjs';
import { stringify } from 'yaml';
import { paramNamesOf } from '../src/cli/params.js';
import { parseConfig, type Config } from '../src/config/config.js';
import { TABLE_BEGIN, TABLE_END, configTableMarkdown } from '../src/config/docs.js';
import { formatSize, parseSize } from '../src/config/size.js';
import { DYNAMIC_KEYS, ENTRIES } from '../src/config/table.js';
import { ManualClock } from '../src/pipeline/clock.js';
import { PolicyPipeline, changedKeys } from '../src/pipeline/pipeline.js';
import { PARAMS, configToParams, loadParamsFile, stringifyParamsFile } from '../src/ros/params.js';
import { ROOT, tempDir } from './helpers/util.js';

/** Two configs that together set every key of the table, none at its default (scales and img_sizes exclude each other). */
function fullConfigs(dir: string): Record<string, unknown>[] {
  const common = {
    backbone: { model: join(dir, 'b.onnx'), threads: 3, providers: ['cuda', 'cpu'], input_name: 'pixels', output_name: 'tokens' },
    image: { base_size: [96, 128], crop: 'pad', resize: 'native', normalization: { mean: [0.1, 0.2, 0.3], std: [0.4, 0.5, 0.6] }, max_pixels: 1000000 },
    cameras: [
      { name: 'wrist', topic: '/arm/wrist/image', transport: 'compressed', qos: 'reliable' },
      { name: 'front', topic: 'front/image', transport: 'raw', qos: 'default' },
    ],
    sync: { mode: 'approximate', slop_ms: 12.5 },
    joint_states: { topic: '/robot/joint_states', names: ['j1', 'j2'], max_age_ms: 55 },
    features: { pool: 'grid:3', publish: true, topic: '/robot/features' },
    policy: {
      model: join(dir, 'p.onnx'),
      stats: join(dir, 'p.json'),
      features_input: 'f',
      state_input: 's',
      output: 'o',
      chunk_mode: 'latest',
      ensemble_k: 0.3,
    },
    control: {
      rate_hz: 33,
      command_type: 'position',
      action_interface: 'joint_trajectory',
      action_topic: '/arm/command',
      joint_names: ['j1', 'j2'],
      lower: [-1, -2],
      upper: [1, 2],
      max_delta: [0.1, 0.2],
      enabled: false,
    },
    watchdog: { stale_after_ms: 250 },
  };
  const s2 = { max_split_size: 48, num_prefix_token: 5, output_shape: 'bnc', resize_output_to_idx: 1, split_mode: 'pad', max_batch: 7, engine: 'js' };
  return [
    { ...common, s2: { ...s2, img_sizes: [96, [192, 256]] } },
    { ...common, image: { ...common.image, normalization: 'clip' }, s2: { ...s2, scales: [1, 2.5] } },
  ];
}

const valueAt = (c: Record<string, unknown>, section: string, field: string): unknown => {
  const s = c[section];
  return Array.isArray(s) ? (s as Record<string, unknown>[]).map((x) => x[field]) : (s as Record<string, unknown> | undefined)?.[field];
};

describe('configuration table', () => {
  it('a config → parameter file → config round trip of a fully populated config is lossless', () => {
    const dir = tempDir('s2-table-');
    const covered = new Set<string>();
    fullConfigs(dir).forEach((raw, i) => {
      const config = parseConfig(raw, 'full');
      for (const e of ENTRIES) {
        const v = valueAt(config, e.section, e.field);
        if (v === undefined || (Array.isArray(v) && v.every((x) => x === undefined))) continue;
        covered.add(e.key);
        if (e.spec.mode === 'default' && !e.list) assert.notDeepEqual(v, e.spec.default, `${e.key} is at its default`);
      }
      const file = join(dir, `p${i}.yaml`);
      writeFileSync(file, stringifyParamsFile(configToParams(config), ['s2_policy']));
      assert.deepEqual(loadParamsFile(file), config);
    });
    assert.deepEqual(
      ENTRIES.map((e) => e.key).filter((k) => !covered.has(k)),
      [],
      'every key is set in one of the configs',
    );
  });

  it("every parameter the node declares comes from the table (or is one of the node's own)", () => {
    const own = PARAMS.filter((p) => p.key === undefined).map((p) => p.name);
    assert.deepEqual(own.sort(), ['autostart', 'config_file']);
    for (const e of ENTRIES)
      assert.ok(
        PARAMS.some((p) => p.key === e.key),
        e.key,
      );
    for (const p of PARAMS.filter((x) => x.key)) assert.equal(p.readOnly, !DYNAMIC_KEYS.includes(p.key as string), p.name);
  });

  it('the README configuration table is the one the table renders', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const a = readme.indexOf(TABLE_BEGIN);
    const b = readme.indexOf(TABLE_END);
    assert.ok(a >= 0 && b > a, 'README has the generated table');
    assert.equal(readme.slice(a + TABLE_BEGIN.length, b).trim(), configTableMarkdown(paramNamesOf), 'README table is stale: run s2-policy params --markdown');
  });

  it('one size syntax: numbers, pairs and HxW strings; limits named', () => {
    assert.equal(parseSize(224), 224);
    assert.deepEqual(parseSize('224x336'), [224, 336]);
    assert.deepEqual(parseSize('224×336'), [224, 336]);
    assert.deepEqual(parseSize([224, 336]), [224, 336]);
    assert.equal(parseSize('224'), 224);
    assert.match(parseSize(100000) as string, /exceeds the limit of 16384/);
    assert.match(parseSize(-5) as string, /positive integers/);
    assert.match(parseSize('224x') as string, /expected a size like/);
    assert.equal(formatSize([96, 128]), '96x128');
    const base = { backbone: { model: 'b.onnx' }, s2: { img_sizes: ['224x336', 448] }, cameras: [{ name: 'c', topic: '/c' }] };
    assert.deepEqual(parseConfig(base, 'cfg').s2.img_sizes, [[224, 336], 448]);
    assert.throws(() => parseConfig({ ...base, s2: { img_sizes: [100000] } }, 'cfg.yaml'), /cfg\.yaml: s2\.img_sizes\.0: a side of 100000 exceeds the limit/);
  });

  it('config_file: a YAML config underneath the parameters, which override it', () => {
    const dir = tempDir('s2-table-');
    const cfg = join(dir, 'cfg.yaml');
    writeFileSync(
      cfg,
      stringify({
        backbone: { model: 'b.onnx' },
        s2: { scales: [1, 2] },
        cameras: [{ name: 'c', topic: '/c' }],
        policy: { model: 'p.onnx' },
        control: { rate_hz: 20, command_type: 'velocity' },
      }),
    );
    const params = join(dir, 'params.yaml');
    writeFileSync(params, stringify({ s2_policy: { ros__parameters: { config_file: 'cfg.yaml', control: { rate_hz: 7.5 } } } }));
    const c = loadParamsFile(params);
    assert.equal(c.control?.rate_hz, 7.5);
    assert.deepEqual(c.s2.scales, [1, 2]);
    assert.equal(c.backbone.model, join(dir, 'b.onnx'));
  });
});

describe('pipeline.reconfigure', () => {
  const base = (): Config =>
    parseConfig(
      {
        backbone: { model: '/m/b.onnx' },
        s2: { scales: [1, 2] },
        cameras: [{ name: 'c', topic: '/c' }],
        policy: { model: '/m/p.onnx' },
        control: { rate_hz: 20, command_type: 'velocity', lower: [-1], upper: [1], max_delta: [0.5] },
      },
      'cfg',
    );
  const withChange = (c: Config, f: (n: Config) => void): Config => {
    const n = structuredClone(c);
    f(n);
    return n;
  };

  /** Actions published over `ms` of virtual time. */
  function countActions(clock: ManualClock, ms: number, sub: { n: number }): number {
    const before = sub.n;
    clock.advanceTo(clock.now() + ms);
    return sub.n - before;
  }

  it('applies every dynamic key, and each one takes effect', () => {
    const c = base();
    const changes: Record<string, (n: Config) => void> = {
      'control.rate_hz': (n) => (n.control!.rate_hz = 10),
      'control.lower': (n) => (n.control!.lower = [-0.2]),
      'control.upper': (n) => (n.control!.upper = [0.2]),
      'control.max_delta': (n) => (n.control!.max_delta = [0.01]),
      'control.enabled': (n) => (n.control!.enabled = false),
      'policy.chunk_mode': (n) => (n.policy!.chunk_mode = 'latest'),
      'policy.ensemble_k': (n) => (n.policy!.ensemble_k = 0.5),
      'features.publish': (n) => (n.features.publish = true),
      'watchdog.stale_after_ms': (n) => (n.watchdog.stale_after_ms = 99),
    };
    assert.deepEqual(Object.keys(changes).sort(), [...DYNAMIC_KEYS].sort(), 'a test for every dynamic key');
    for (const [key, change] of Object.entries(changes)) {
      const p = new PolicyPipeline(c, undefined, undefined, new ManualClock(0));
      const next = withChange(c, change);
      const r = p.reconfigure(next);
      assert.ok(r.ok, key);
      assert.deepEqual(r.ok && r.changed, [key]);
      assert.deepEqual(p.config, next, key);
    }
    const p = new PolicyPipeline(c, undefined, undefined, new ManualClock(0));
    p.reconfigure(withChange(c, (n) => Object.values(changes).forEach((f) => f(n))));
    const o = p.controller.o;
    assert.deepEqual(o.limits, { lower: [-0.2], upper: [0.2], maxDelta: [0.01] });
    assert.equal(o.chunkMode, 'latest');
    assert.equal(o.ensembleK, 0.5);
    assert.equal(o.staleAfterMs, 99);
    assert.equal(p.enabled, false);
    assert.equal(p.config.features.publish, true);
    // /diagnostics reports every dynamic key as applied.
    const s = p.settings();
    assert.deepEqual(Object.keys(s).sort(), [...DYNAMIC_KEYS].sort());
    assert.deepEqual(s, {
      'control.enabled': 'false',
      'control.rate_hz': '10',
      'control.lower': '[-0.2]',
      'control.upper': '[0.2]',
      'control.max_delta': '[0.01]',
      'policy.chunk_mode': 'latest',
      'policy.ensemble_k': '0.5',
      'watchdog.stale_after_ms': '99',
      'features.publish': 'true',
    });
  });

  it('refuses a change of a fixed key, naming it, and applies nothing of that change', () => {
    const c = base();
    const p = new PolicyPipeline(c, undefined, undefined, new ManualClock(0));
    const next = withChange(c, (n) => {
      n.control!.rate_hz = 50;
      n.s2.scales = [1, 3];
      n.cameras[0].topic = '/other';
    });
    const r = p.reconfigure(next);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /^s2\.scales, cameras are fixed while configured/);
    assert.equal(p.config.control?.rate_hz, 20, 'the dynamic part was not applied either');
    assert.deepEqual(changedKeys(c, next).sort(), ['cameras', 'control.rate_hz', 's2.scales']);
  });

  it('the control clock follows a rate change; a disable survives an unrelated change', () => {
    const clock = new ManualClock(0);
    const p = new PolicyPipeline(base(), undefined, undefined, clock);
    const sub = { n: 0 };
    const out = p.connectFeatures({ features: NEVER });
    const subscription = out.actions.subscribe(() => sub.n++);
    assert.equal(countActions(clock, 1000, sub), 20);
    assert.ok(p.reconfigure(withChange(p.config, (n) => (n.control!.rate_hz = 10))).ok);
    const at10 = countActions(clock, 1000, sub);
    assert.ok(at10 >= 9 && at10 <= 11, `about 10 actions at 10 Hz, got ${at10}`);
    assert.ok(p.reconfigure(withChange(p.config, (n) => (n.control!.enabled = false))).ok);
    assert.equal(countActions(clock, 1000, sub), 0, 'disabled: no actions');
    // An operator's disable is part of the config in force: a later rate change carries it.
    assert.ok(p.reconfigure(withChange(p.config, (n) => (n.control!.rate_hz = 30))).ok);
    assert.equal(countActions(clock, 1000, sub), 0, 'still disabled after a rate change');
    assert.ok(p.reconfigure(withChange(p.config, (n) => (n.control!.enabled = true))).ok);
    const at30 = countActions(clock, 1000, sub);
    assert.ok(at30 >= 29 && at30 <= 31, `about 30 actions at 30 Hz, got ${at30}`);
    subscription.unsubscribe();
  });
});
