// `extract --rows actions` and several `--bag`s: what a user's teleoperated demonstrations become — one row per
// recorded command with the joint state and camera group its sender last had, one episode per recording — checked
// against the recordings read independently, and what `fit` makes of it.
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { readNpy, readNpyArray } from '../src/io/npy.js';
import { writePresetModel } from '../src/models/write.js';
import { demoConfig, writeDemoKit } from '../src/run/demo-kit.js';
import { McapRosReader } from '../src/bag/index.js';
import { cli, tempDir } from './helpers/util.js';

const ACTIONS = '/teleop/joint_velocity';

/** Per recording: every action message (log time, values) and joint state (log time, positions), in log-time order. */
async function readSide(file: string): Promise<{ actions: { t: bigint; v: number[] }[]; joints: { t: bigint; v: number[] }[]; firstFrame: bigint }> {
  const reader = await McapRosReader.open(file);
  const actions: { t: bigint; v: number[] }[] = [];
  const joints: { t: bigint; v: number[] }[] = [];
  let firstFrame: bigint | undefined;
  for await (const m of reader.messages()) {
    if (m.topic === ACTIONS) actions.push({ t: m.logTime, v: Array.from((m.message as { data: ArrayLike<number> }).data) });
    else if (m.topic === '/joint_states') joints.push({ t: m.logTime, v: Array.from((m.message as { position: ArrayLike<number> }).position) });
    else if (m.topic === '/front/image_raw/compressed' && firstFrame === undefined) firstFrame = m.logTime;
  }
  await reader.close();
  return { actions, joints, firstFrame: firstFrame as bigint };
}

describe('extract --rows actions over several recordings', function () {
  this.timeout(60000);
  let dir: string;
  let kits: { recording: string; config: string }[];
  let tokensConfig: string;

  before(async () => {
    dir = tempDir('s2-extract-rows-');
    kits = [
      await writeDemoKit(join(dir, 'a'), { durationS: 2, width: 96, height: 72 }),
      await writeDemoKit(join(dir, 'b'), { durationS: 1, width: 96, height: 72 }),
    ];
    writePresetModel('convnet-tiny', join(dir, 'convnet.onnx'));
    const raw = demoConfig() as { backbone: { model: string }; features: Record<string, unknown> };
    raw.backbone.model = join(dir, 'convnet.onnx');
    raw.features = { pool: 'tokens', publish: false };
    tokensConfig = join(dir, 'tokens.yaml');
    writeFileSync(tokensConfig, stringify(raw));
  });

  /** Both recordings, a row per command, with `config`, into `out`. */
  const extractBoth = (config: string, out: string) =>
    cli(['extract', '--bag', kits[0].recording, '--bag', kits[1].recording, '--config', config, '--out', out, '--actions-topic', ACTIONS, '--rows', 'actions']);

  it('writes a row per command with the state received before it, frame_of into the groups and one episode per recording', async () => {
    const out = join(dir, 'rows');
    const r = extractBoth(kits[0].config, out);
    assert.equal(r.status, 0, r.stderr);
    const side = [await readSide(kits[0].recording), await readSide(kits[1].recording)];
    // Commands before a recording's first camera frame have no group to pair with and are dropped (and counted).
    const kept = side.map((s) => s.actions.filter((a) => a.t >= s.firstFrame));
    const rows = kept[0].length + kept[1].length;
    const state = readNpy(join(out, 'state.npy'));
    const actions = readNpy(join(out, 'actions.npy'));
    const frameOf = readNpy(join(out, 'frame_of.npy')).data;
    const episodes = readNpy(join(out, 'episodes.npy')).data;
    const frames = readNpy(join(out, 'features.npy')).dims[0];
    const logTimes = readNpyArray(join(out, 'log_times_ns.npy'));
    assert.deepEqual([state.dims[0], actions.dims[0], frameOf.length, episodes.length], [rows, rows, rows, rows]);
    assert.match(r.stdout, new RegExp(`^extracted ${frames} frame groups and ${rows} action rows of 2 recordings × 96 features`, 'm'));
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { rows_per: string; bags: string[]; dropped: Record<string, number> };
    assert.equal(index.rows_per, 'action');
    assert.deepEqual(index.bags, [kits[0].recording, kits[1].recording]);
    const before = side[0].actions.length + side[1].actions.length - rows;
    assert.equal(index.dropped['action:before_first_frame'] ?? 0, before);

    let row = 0;
    const groupsOfFirst = Math.max(...Array.from(frameOf.subarray(0, kept[0].length))) + 1;
    for (let e = 0; e < 2; e++) {
      for (const a of kept[e]) {
        assert.equal(episodes[row], e);
        assert.deepEqual(Array.from(actions.data.subarray(2 * row, 2 * row + 2)), a.v.map(Math.fround));
        const joint = side[e].joints.filter((j) => j.t <= a.t).pop();
        assert.ok(joint);
        assert.deepEqual(Array.from(state.data.subarray(2 * row, 2 * row + 2)), joint.v.map(Math.fround), `row ${row}`);
        // The group is the newest one received at or before the command, in this recording's own groups.
        const f = frameOf[row];
        const ownFirst = e === 0 ? 0 : groupsOfFirst;
        assert.ok(f >= ownFirst && f < frames, `row ${row}: frame ${f}`);
        const lt = (logTimes.data as unknown as BigInt64Array)[f];
        assert.ok(lt <= a.t, `row ${row}: group received after the command`);
        if (f + 1 < frames && (e === 1 || f + 1 < groupsOfFirst))
          assert.ok((logTimes.data as unknown as BigInt64Array)[f + 1] > a.t, `row ${row}: a newer group was there`);
        row++;
      }
    }
  });

  it('fit --head bc takes the rows; the linear head refuses them in one line; bad flags are one line and write nothing', () => {
    const out = join(dir, 'tok');
    let r = extractBoth(tokensConfig, out);
    assert.equal(r.status, 0, r.stderr);
    r = cli(['fit', '--head', 'bc', '--recipe', 'end-to-end', '--data', out, '--out', join(out, 'bc.onnx'), '--epochs', '2']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^bc head: \d+ rows \(\d+ frames, 2 episodes\)/m);
    r = cli(['fit', '--data', out, '--out', join(out, 'lin.onnx')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^s2-policy: .*frame_of\.npy: rows share camera frames .*--head bc/);
    assert.equal(r.stderr.trim().split('\n').length, 1);

    const bad: [string[], RegExp][] = [
      [['--rows', 'actions'], /--rows actions needs --actions-topic/],
      [['--rows', 'steps', '--actions-topic', ACTIONS], /--rows must be frames or actions, got 'steps'/],
      [['--bag', kits[0].recording, '--actions-topic', ACTIONS], /--bag .*demo\.mcap is given twice/],
      [['--bag', join(dir, 'missing.mcap')], /missing\.mcap: no such recording/],
    ];
    for (const [extra, want] of bad) {
      const o = join(dir, `bad-${bad.findIndex((b) => b[0] === extra)}`);
      r = cli(['extract', '--bag', kits[0].recording, '--config', kits[0].config, '--out', o, ...extra]);
      assert.equal(r.status, 2, `${extra.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, want);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(!existsSync(o));
    }
  });
});
