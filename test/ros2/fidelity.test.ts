// Live rosbag2 and replay fidelity: folders written by the project pass `ros2 bag info` and play with `ros2 bag
// play`; the node's actions recorded live (split and zstd-compressed by `ros2 bag record`) are compared with
// `s2-policy replay --rate 1` of the same recording; the live folder itself replays. Skipped without ROS 2.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRosbag2Metadata } from '../../src/bag/rosbag2.js';
import { writeDemoKit, type DemoKit } from '../../src/run/demo-kit.js';
import { requireRos } from './live-env.js';
import { controlOf, copyToFolder, measureFidelity } from '../../bench/fidelity-lib.js';
import { cli, tempDir } from '../helpers/util.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function bagInfo(path: string): { status: number | null; out: string } {
  const r = spawnSync('ros2', ['bag', 'info', path], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** "Messages: N" and the per-topic "Count: N" of `ros2 bag info`. */
function infoCounts(out: string): { total: number; topics: Map<string, number> } {
  const total = Number(/Messages:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const topics = new Map<string, number>();
  for (const m of out.matchAll(/Topic:\s+(\S+)\s+\|\s+Type:\s+\S+\s+\|\s+Count:\s+(\d+)/g)) topics.set(m[1], Number(m[2]));
  return { total, topics };
}

describe('ROS 2 live: rosbag2 folders and replay fidelity', function () {
  this.timeout(300000);
  let kit: DemoKit;

  before(async function () {
    requireRos(this);
    kit = await writeDemoKit(tempDir('s2-fid-'), { durationS: 6 });
  });

  it('folders the project writes pass ros2 bag info with the counts of their metadata', async () => {
    const bag = join(kit.dir, 'demo_bag');
    await copyToFolder(kit.recording, bag);
    const out = join(kit.dir, 'replayed');
    const r = cli(['replay', '--bag', bag, '--config', kit.config, '--out', out, '--max-file-size', '30000', '--compression-mode', 'file', '--with-inputs']);
    assert.equal(r.status, 0, r.stderr);
    for (const folder of [bag, out]) {
      const meta = parseRosbag2Metadata(readFileSync(join(folder, 'metadata.yaml'), 'utf8'), folder);
      const info = bagInfo(folder);
      assert.equal(info.status, 0, info.out);
      const counts = infoCounts(info.out);
      assert.equal(counts.total, meta.messageCount, info.out);
      assert.deepEqual(counts.topics, new Map(meta.topics.map((t) => [t.name, t.messageCount])), info.out);
    }
    assert.ok(parseRosbag2Metadata(readFileSync(join(out, 'metadata.yaml'), 'utf8'), out).relativeFilePaths.length >= 2);
  });

  it('replay --rate 1 predicts the live node; the live folder (split, zstd per file) replays', async () => {
    const bag = join(kit.dir, 'demo_bag');
    const m = await measureFidelity({
      bag,
      configFile: kit.config,
      dir: join(kit.dir, 'fidelity'),
      rates: [1],
      recordArgs: ['--max-bag-size', '300000', '--compression-mode', 'file', '--compression-format', 'zstd'],
    });
    const c = m.results[0].c;
    console.log(
      `      fidelity: live ${c.liveActions} actions, replay ${c.replayActions}; ${c.differing} of ${c.paired} paired ticks differ (phase ${c.medianPhaseMs.toFixed(1)} ms); ` +
        `stale live ${JSON.stringify(c.liveStale)} replay ${JSON.stringify(c.replayStale)}`,
    );
    // About one action per control period in both, over the same window.
    const expected = (c.windowMs[1] - c.windowMs[0]) / (1000 / controlOf(m.live.config).rate_hz);
    assert.ok(Math.abs(c.liveActions - expected) <= 0.1 * expected, `${c.liveActions} live actions, about ${expected} expected`);
    assert.ok(Math.abs(c.replayActions - expected) <= 0.1 * expected, `${c.replayActions} replayed actions, about ${expected} expected`);
    assert.ok(c.paired >= 0.9 * c.replayActions, `${c.paired} of ${c.replayActions} ticks paired`);
    // The front camera stalls at 60%: both go stale, at about the same time.
    assert.ok(c.liveStale.length >= 1 && c.replayStale.length >= 1, 'a stale period in both');
    const onset = c.liveStale[c.liveStale.length - 1].startMs - c.replayStale[c.replayStale.length - 1].startMs;
    assert.ok(Math.abs(onset) <= 150, `stale onset live − replay ${onset} ms`);

    // The folder ros2 bag record wrote: split and compressed; read with its metadata, which agrees with the files.
    const meta = parseRosbag2Metadata(readFileSync(join(m.live.liveBag, 'metadata.yaml'), 'utf8'), m.live.liveBag);
    assert.equal(meta.compressionMode, 'file');
    assert.ok(meta.relativeFilePaths.length >= 2 && meta.relativeFilePaths.every((p) => p.endsWith('.mcap.zstd')), meta.relativeFilePaths.join());
    const r = cli(['replay', '--bag', m.live.liveBag, '--config', kit.config, '--out', join(kit.dir, 'from_live.mcap')]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'no metadata disagreement');
    assert.match(r.stdout, /actions {3}\d+ on \/s2_policy\/joint_trajectory/);
  });

  it('replay reads a recording ros2 bag record compressed per message and split by duration', async () => {
    const live = join(kit.dir, 'live_msg');
    const topics = ['/wrist/image_raw', '/front/image_raw/compressed', '/joint_states'];
    const rec = spawn(
      'ros2',
      ['bag', 'record', '-s', 'mcap', '-o', live, '--max-bag-duration', '2', '--compression-mode', 'message', '--compression-format', 'zstd', ...topics],
      { stdio: 'ignore' },
    );
    await sleep(3000);
    const play = spawnSync('ros2', ['bag', 'play', join(kit.dir, 'demo_bag')], { encoding: 'utf8' });
    assert.equal(play.status, 0, play.stderr);
    await sleep(1500);
    rec.kill('SIGINT');
    await new Promise((resolve) => rec.once('exit', resolve));
    const meta = parseRosbag2Metadata(readFileSync(join(live, 'metadata.yaml'), 'utf8'), live);
    assert.equal(meta.compressionMode, 'message');
    assert.ok(meta.relativeFilePaths.length >= 2, meta.relativeFilePaths.join());
    const played = parseRosbag2Metadata(readFileSync(join(kit.dir, 'demo_bag', 'metadata.yaml'), 'utf8'), 'demo_bag');
    const r = cli(['replay', '--bag', live, '--config', kit.config, '--out', join(kit.dir, 'from_live_msg.mcap')]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'no metadata disagreement');
    // Every message recorded was read and decoded (best-effort delivery may lose some of the played ones).
    assert.match(r.stdout, new RegExp(`^replayed .*: [0-9.]+ s of recording, ${meta.messageCount} input messages`, 'm'));
    const playedInputs = played.topics.filter((t) => topics.includes(t.name)).reduce((n, t) => n + t.messageCount, 0);
    assert.ok(meta.messageCount >= 0.9 * playedInputs, `${meta.messageCount} of ${playedInputs} played input messages recorded`);
  });
});
