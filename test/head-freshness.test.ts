// The policy head on S2Features from another machine: a feature set whose frames are already older than the watchdog
// period when it arrives is counted and never acted on, so a late or queued message cannot move the arm.
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Subject } from 'rxjs';
import { parseConfig } from '../src/config/config.js';
import { buildLinearPolicy } from '../src/models/policy.js';
import { ManualClock } from '../src/pipeline/clock.js';
import { PolicyPipeline, type FeatureResult } from '../src/pipeline/pipeline.js';
import { PolicyHead } from '../src/policy/head.js';
import { tempDir } from './helpers/util.js';

describe('policy head: features stale on arrival', () => {
  let head: PolicyHead;
  const V = [0.3, -0.2];

  before(async () => {
    // A head that always commands V: weights zero, bias V.
    const file = join(tempDir('s2-fresh-'), 'const.onnx');
    writeFileSync(
      file,
      buildLinearPolicy({ featureDim: 2, stateDim: 0, chunk: 1, actionDim: 2, weight: new Float32Array(4), bias: Float32Array.from(V) }).serialize(),
    );
    head = await PolicyHead.load({ model: file, featuresInput: 'features' });
  });

  after(() => head.release());

  /** Features every 50 ms for 2 s, each `age(t)` ms old when it arrives; the actions sent at each time. */
  async function run(age: (t: number) => number) {
    const config = parseConfig(
      {
        backbone: { model: '/m/b.onnx' },
        s2: { scales: [1] },
        cameras: [{ name: 'c', topic: '/c' }],
        policy: { model: '/m/p.onnx' },
        control: { rate_hz: 20, command_type: 'velocity' },
        watchdog: { stale_after_ms: 200 },
      },
      'cfg.yaml',
    );
    const clock = new ManualClock(0);
    const p = new PolicyPipeline(config, undefined, head, clock);
    const features = new Subject<FeatureResult>();
    const sent: { t: number; v: number[] }[] = [];
    const sub = p.connectFeatures({ features }).actions.subscribe((cmd) => sent.push({ t: clock.now(), v: Array.from(cmd.values) }));
    for (let t = 10; t <= 2000; t += 10) {
      clock.advanceTo(t);
      if (t % 50 === 0) {
        features.next({ stampMs: t - age(t), at: t, cameras: ['c'], perCamera: [new Float32Array(2)] });
        await p.idle();
      }
    }
    sub.unsubscribe();
    return { sent, dropped: p.metrics.snapshot(clock.now()).dropped['features:too_old'] ?? 0 };
  }

  const moving = (a: { v: number[] }) => a.v.some((x) => x !== 0);

  it('acts on features up to the watchdog period old; older ones are counted, and the watchdog stops the arm', async () => {
    // Fresh (30 ms, then exactly the 200 ms limit) until 1 s, then every message 250 ms old: late but still arriving.
    const { sent, dropped } = await run((t) => (t < 600 ? 30 : t < 1000 ? 200 : 250));
    assert.ok(sent.filter((a) => a.t > 100 && a.t < 1000).every(moving), 'features within the watchdog period drive the policy');
    assert.deepEqual(sent.find((a) => a.t > 600 && a.t < 1000)?.v, V.map(Math.fround), 'features exactly the watchdog period old are still acted on');
    // The last fresh features arrived at 950 ms: safe from 950 + 200 ms on, although messages keep arriving.
    const late = sent.filter((a) => a.t > 1200);
    assert.ok(late.length >= 15 && late.every((a) => !moving(a)), `${late.filter(moving).length} of ${late.length} actions move the arm`);
    assert.equal(dropped, 21, 'the 21 late messages (1000…2000 ms) are counted');
  });

  it('no features are dropped when the stamps are the arrival times', async () => {
    const { sent, dropped } = await run(() => 0);
    assert.equal(dropped, 0);
    assert.ok(sent.filter((a) => a.t > 100).every(moving));
  });
});
