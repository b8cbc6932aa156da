// `s2-policy start` (what `npm start` runs): the node's pipeline in a closed loop with the built-in simulation when
// no ROS 2 is sourced, the ROS 2 node when one is, or a recording replay; `--transport` forces one.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import type { FeatureExtractor } from '../pipeline/extractor.js';
import { buildRuntime } from '../runtime/build.js';
import type { PolicyHead } from '../policy/head.js';
import { sourcedRosDistro } from '../ros/detect.js';
import { ensureDemoModels, runClosedLoop, toPaths, type EpisodeResult } from '../sim/closed-loop.js';
import { renderEpisodesPng } from '../sim/plot.js';
import { TabletopSim } from '../sim/tabletop.js';
import { int, parseFlags, str } from './args.js';

export const START_HELP = `usage: s2-policy start [--transport sim|ros|replay] [--episodes 8] [--seed S] [--out DIR] [--demos 400]
       sim (default without ROS 2): closed loop with the built-in simulation; ros (default with ROS 2 sourced): the node;
       replay: the demo recording through the pipeline (make-demo + replay)`;

/** Episodes `start` runs by default. */
export const START_EPISODES = 8;

/** The demo model recipe used by `start` and `eval`: S² at the camera's 3:4 aspect, two scales. */
export const DEMO_SIZES: [number, number][] = [
  [240, 320],
  [480, 640],
];

export function summaryTable(results: EpisodeResult[]): string[] {
  const n = results.length;
  const ok = results.filter((r) => r.success).length;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const lines = ['episode  seed   result    steps  final distance (m)  safe actions'];
  results.forEach((r, i) =>
    lines.push(
      `${String(i + 1).padStart(7)}  ${String(r.seed).padStart(4)}   ${(r.success ? 'success' : 'failure').padEnd(8)}  ${String(r.steps).padStart(5)}  ${r.finalDistance.toFixed(3).padStart(18)}  ${String(r.safeActions).padStart(12)}`,
    ),
  );
  lines.push(
    `success ${ok}/${n} (${((100 * ok) / Math.max(1, n)).toFixed(0)}%), mean final distance ${mean(results.map((r) => r.finalDistance)).toFixed(3)} m, mean steps ${mean(results.map((r) => r.steps)).toFixed(0)}`,
  );
  return lines;
}

async function startSim(flags: { episodes: number; seed: number; out: string; demos?: number }): Promise<number> {
  const t0 = performance.now();
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  console.log('transport: sim (built-in tabletop simulation; no ROS 2 sourced or --transport sim)');
  mkdirSync(flags.out, { recursive: true });
  const models = await ensureDemoModels(join(flags.out, 'models'), { sizes: DEMO_SIZES, episodes: flags.demos }, (l) => console.log(l));
  const sm = models.summary;
  console.log(
    `demo models ready (${elapsed()}): backbone of ${sm.pretrain.filters} k-means filters pretrained on simulated frames without labels, S² sizes ${DEMO_SIZES.map((s) => s.join('x')).join(', ')}, ` +
      (sm.detector
        ? `detector head on ${sm.detector.frames} frames (held-out keypoint within 8 px: ${(100 * sm.detector.withinCell).toFixed(0)}%), controller on ${sm.rows} expert rows of ${sm.expertEpisodes} demonstrations`
        : `${sm.head} policy head on ${sm.rows} steps (${sm.expertEpisodes} expert episodes + ${sm.daggerRows} DAgger-relabelled states)`),
  );
  const runtime = await buildRuntime(models.config, 'demo config', { features: true, policy: true, by: 'start' });
  const extractor = runtime.extractor as FeatureExtractor;
  const head = runtime.head as PolicyHead;
  try {
    let last = 0;
    const results = await runClosedLoop(models.config, extractor, head, flags.episodes, flags.seed, (p) => {
      const now = performance.now();
      if (now - last < 250) return;
      last = now;
      const line = `episode ${p.episode + 1}/${flags.episodes}  step ${String(p.step).padStart(3)}  successes so far ${p.successes}/${p.done}  (${elapsed()})`;
      if (process.stdout.isTTY) process.stdout.write(`\r${line}\x1b[K`);
      else console.log(line);
    });
    if (process.stdout.isTTY) process.stdout.write('\n');
    for (const l of summaryTable(results)) console.log(l);
    const png = resolve(flags.out, 'episodes.png');
    const sim = new TabletopSim({ seed: flags.seed });
    await renderEpisodesPng(png, sim, toPaths(results));
    console.log(`end-effector paths over the scene: ${png}`);
    console.log(`closed loop done in ${elapsed()}`);
    return 0;
  } finally {
    await runtime.release();
  }
}

export async function startCommand(argv: string[]): Promise<number> {
  const flags = parseFlags('start', argv, {
    transport: { type: 'string' },
    episodes: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    demos: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(START_HELP);
    return 0;
  }
  const forced = str(flags, 'transport');
  if (forced !== undefined && forced !== 'sim' && forced !== 'ros' && forced !== 'replay')
    throw new UserError(`start: --transport must be sim, ros or replay, got '${forced}'`);
  const transport = forced ?? (sourcedRosDistro() ? 'ros' : 'sim');
  const out = str(flags, 'out') ?? 'out/start';
  if (transport === 'ros') {
    console.log(`transport: ros (ROS 2 ${sourcedRosDistro() ?? 'not sourced'}): starting the node; pass parameters with --ros-args after 's2-policy ros'`);
    const { rosCommand } = await import('./ros.js');
    return rosCommand([]);
  }
  if (transport === 'replay') {
    console.log('transport: replay (the demo recording through the pipeline)');
    const { writeDemoKit } = await import('./make-demo.js');
    mkdirSync(out, { recursive: true });
    const kit = await writeDemoKit(join(out, 'demo'));
    const { replayCommand } = await import('./replay.js');
    return replayCommand(['--bag', kit.recording, '--config', kit.config, '--out', join(out, 'demo', 'out.mcap'), '--force']);
  }
  return startSim({
    episodes: int(flags, 'episodes') ?? START_EPISODES,
    seed: int(flags, 'seed', 0) ?? 0,
    out,
    demos: int(flags, 'demos'),
  });
}
