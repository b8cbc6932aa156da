// Two-node mode: a features-only pipeline publishing S2Features and a policy-head-only pipeline consuming them give
// the same actions as the combined pipeline on the same recording.
import { strict as assert } from 'node:assert';
import { Subject } from 'rxjs';
import { inputTopics, openRecording, recordingInputs } from '../src/run/replay.js';
import { writeDemoKit } from '../src/run/demo-kit.js';
import { loadConfig } from '../src/config/config.js';
import type { JointStateMsg } from '../src/msgs/types.js';
import { ManualClock, runOnClock, type TimedInput } from '../src/pipeline/clock.js';
import type { ActionCommand } from '../src/pipeline/controller.js';
import { FeatureExtractor } from '../src/pipeline/extractor.js';
import { featureResultFromMessage, featuresMessage } from '../src/pipeline/messages.js';
import { PolicyPipeline, type FeatureResult } from '../src/pipeline/pipeline.js';
import { PolicyHead } from '../src/policy/head.js';
import { tempDir } from './helpers/util.js';

describe('two-node mode (features node → policy head node)', function () {
  this.timeout(120000);

  it('gives the same actions as one node', async () => {
    const kit = await writeDemoKit(tempDir('s2-split-'), { durationS: 2, width: 64, height: 48 });
    const config = loadConfig(kit.config);
    const inputs: TimedInput[] = [];
    const reader = await openRecording(kit.recording);
    const topics = inputTopics(config, await reader.topics(), kit.recording);
    for await (const i of recordingInputs(reader, topics, (reader.timeRange as { start: bigint }).start)) inputs.push(i);
    await reader.close();
    const extractor = await FeatureExtractor.create(config);
    const head = await PolicyHead.load({ model: config.policy!.model, stats: config.policy!.stats, featuresInput: 'features', stateInput: 'state' });
    const fmt = (a: ActionCommand) => `${a.tick}:${a.state}:${Array.from(a.values).join(',')}`;

    const combined: string[] = [];
    await runOnClock(
      new PolicyPipeline(config, extractor, head, new ManualClock(0)),
      inputs,
      { rate: 0, tailMs: 500 },
      { action: (a) => void combined.push(fmt(a)) },
    );

    // Features node: S2Features messages, as they would be published.
    const published: { at: number; msg: ReturnType<typeof featuresMessage> }[] = [];
    await runOnClock(
      new PolicyPipeline(config, extractor, undefined, new ManualClock(0)),
      inputs,
      { rate: 0 },
      {
        features: (f) => void published.push({ at: f.at, msg: featuresMessage(f, extractor.layout) }),
      },
    );
    assert.ok(published.length > 20, `${published.length} S2Features`);

    // Policy head node: S2Features and joint states in recording order on the same clock.
    const clock = new ManualClock(0);
    const headOnly = new PolicyPipeline(config, undefined, head, clock);
    const features = new Subject<FeatureResult>();
    const joints = new Subject<JointStateMsg>();
    const split: string[] = [];
    const out = headOnly.connectFeatures({ features, joints });
    const sub = out.actions.subscribe((a) => split.push(fmt(a)));
    type Ev = { t: number; order: number; run: () => void };
    const events: Ev[] = [
      ...published.map((p): Ev => ({ t: p.at, order: 0, run: () => features.next(featureResultFromMessage(p.msg, clock.now())) })),
      ...inputs.filter((i) => i.joints).map((i): Ev => ({ t: i.timeMs, order: 1, run: () => joints.next(i.joints as JointStateMsg) })),
    ].sort((a, b) => a.t - b.t || a.order - b.order);
    let last = 0;
    for (const ev of events) {
      clock.advanceTo(ev.t);
      ev.run();
      await headOnly.idle();
      last = ev.t;
    }
    const lastInput = inputs[inputs.length - 1].timeMs;
    clock.advanceTo(Math.max(last, lastInput) + 500);
    sub.unsubscribe();
    await extractor.release();
    await head.release();
    assert.ok(combined.length > 30);
    assert.deepEqual(split, combined);
  });
});
