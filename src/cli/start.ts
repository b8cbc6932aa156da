// `s2-policy start` (what `npm start` runs): the node's pipeline in a closed loop with the built-in simulation when
// no ROS 2 is sourced, the ROS 2 node when one is, or a recording replay; `--transport` forces one.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { sourcedRosDistro } from '../ros/detect.js';
import { DEMO_SIZES } from '../sim/closed-loop.js';
import { runSimDemo, START_EPISODES, summaryTable } from '../run/start.js';
import type { Command } from './command.js';
import { int, parseFlags, str } from './args.js';

const START_HELP = `usage: s2-policy start [--transport sim|ros|replay] [--episodes 8] [--seed S] [--out DIR] [--demos 400]
       sim (default without ROS 2): closed loop with the built-in simulation; ros (default with ROS 2 sourced): the node;
       replay: the demo recording through the pipeline (make-demo + replay)`;

async function startSim(o: { episodes: number; seed: number; out: string; demos?: number }): Promise<number> {
  const t0 = performance.now();
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  console.log('transport: sim (built-in tabletop simulation; no ROS 2 sourced or --transport sim)');
  let last = 0;
  const r = await runSimDemo({
    ...o,
    log: (l) => console.log(l),
    onModels: (sm) =>
      console.log(
        `demo models ready (${elapsed()}): backbone of ${sm.pretrain.filters} k-means filters pretrained on simulated frames without labels, S² sizes ${DEMO_SIZES.map((s) => s.join('x')).join(', ')}, ` +
          (sm.detector
            ? `detector head on ${sm.detector.frames} frames (held-out keypoint within one cell, 8 px: ${(100 * sm.detector.withinCell).toFixed(0)}%), controller on ${sm.rows} expert rows of ${sm.expertEpisodes} demonstrations`
            : `${sm.head} policy head on ${sm.rows} steps (${sm.expertEpisodes} expert episodes + ${sm.daggerRows} DAgger-relabelled states)`),
      ),
    onProgress: (p) => {
      const now = performance.now();
      if (now - last < 250) return;
      last = now;
      const line = `episode ${p.episode + 1}/${o.episodes}  step ${String(p.step).padStart(3)}  successes so far ${p.successes}/${p.done}  (${elapsed()})`;
      if (process.stdout.isTTY) process.stdout.write(`\r${line}\x1b[K`);
      else console.log(line);
    },
  });
  if (process.stdout.isTTY) process.stdout.write('\n');
  for (const l of summaryTable(r.results)) console.log(l);
  console.log(`end-effector paths over the scene: ${r.png}`);
  console.log(`closed loop done in ${elapsed()}`);
  return 0;
}

export const startCommand: Command = {
  name: 'start',
  summary: 'the default main job: closed loop with the built-in simulation (or the ROS 2 node when sourced)',
  help: START_HELP,
  // The run folder keeps the demo models between runs (npm start runs again and again), so it is not refused.
  writes: 'run-folder',
  run: async (argv) => {
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
      return rosCommand.run([]);
    }
    if (transport === 'replay') {
      console.log('transport: replay (the demo recording through the pipeline)');
      const { writeDemoKit } = await import('../run/demo-kit.js');
      mkdirSync(out, { recursive: true });
      const kit = await writeDemoKit(join(out, 'demo'));
      const { replayCommand } = await import('./replay.js');
      return replayCommand.run(['--bag', kit.recording, '--config', kit.config, '--out', join(out, 'demo', 'out.mcap'), '--force']);
    }
    return startSim({ episodes: int(flags, 'episodes') ?? START_EPISODES, seed: int(flags, 'seed', 0) ?? 0, out, demos: int(flags, 'demos') });
  },
};
