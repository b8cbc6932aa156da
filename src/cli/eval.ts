// `s2-policy eval`: closed-loop success of single scale versus S² in the simulation, as a table, eval.json and a chart.
import { UserError } from '../errors.js';
import { EVAL_VARIANTS, evaluate, type EvalRow } from '../run/eval.js';
import type { Command } from './command.js';
import { int, numberList, parseFlags, str } from './args.js';

const EVAL_HELP = `usage: s2-policy eval [--episodes 50] [--seed S] [--demos N] [--out DIR] [--target-sizes 4,16|none] [--size-episodes 20] [--probe-scenes 200] [--variants '1x;1x,2x;1x,2x,3x']
       single scale vs S² [1x,2x] vs S² [1x,2x,3x]: closed-loop success (95% Wilson), final distance, cost, and how often the policy's keypoint lands on the target`;

const pct = (p: number): string => `${(100 * p).toFixed(0)}%`;

const HEADER =
  'variant        target  success        95% interval   mean final distance  features/frame  ms/frame  keypoint on target  95% interval  median error';

function line(r: EvalRow): string {
  return [
    r.name.padEnd(14),
    `${r.targetSizePx} px`.padStart(6),
    `${r.successes}/${r.results.length} ${pct(r.success)}`.padStart(13),
    `[${pct(r.interval[0])}, ${pct(r.interval[1])}]`.padStart(14),
    `${r.meanDistance.toFixed(3)} m`.padStart(20),
    String(r.featuresPerFrame).padStart(15),
    r.msPerFrame.toFixed(1).padStart(9),
    `${r.probe.within}/${r.probe.tested} ${pct(r.probe.within / r.probe.tested)}`.padStart(20),
    `[${pct(r.probe.interval[0])}, ${pct(r.probe.interval[1])}]`.padStart(13),
    `${r.probe.medianPx.toFixed(1)} px`.padStart(13),
  ].join(' ');
}

export const evalCommand: Command = {
  name: 'eval',
  summary: 'closed-loop success of single scale versus S² in the simulation',
  help: EVAL_HELP,
  // The run folder caches each variant's demo models between runs; eval.json and eval.png are the latest run's.
  writes: 'run-folder',
  run: async (argv) => {
    const flags = parseFlags('eval', argv, {
      episodes: { type: 'string' },
      seed: { type: 'string' },
      demos: { type: 'string' },
      out: { type: 'string' },
      'target-sizes': { type: 'string' },
      'size-episodes': { type: 'string' },
      'probe-scenes': { type: 'string' },
      variants: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (flags.help) {
      console.log(EVAL_HELP);
      return 0;
    }
    const sizesText = str(flags, 'target-sizes');
    const targetSizes = sizesText === 'none' ? [] : numberList(sizesText ?? '4,16', 'target-sizes');
    for (const t of targetSizes)
      if (!Number.isInteger(t) || t < 2 || t > 60) throw new UserError(`eval: --target-sizes must be integers from 2 to 60, got ${t}`);
    const keys = EVAL_VARIANTS.map((v) => v.key);
    const variants = (str(flags, 'variants') ?? keys.join(';')).split(';');
    for (const c of variants) if (!keys.includes(c)) throw new UserError(`eval: --variants takes ${keys.join(' ; ')} separated by ';', got '${c}'`);
    const r = await evaluate({
      out: str(flags, 'out') ?? 'out/eval',
      episodes: int(flags, 'episodes'),
      seed: int(flags, 'seed', 0),
      demos: int(flags, 'demos'),
      targetSizes,
      sizeEpisodes: int(flags, 'size-episodes'),
      probeScenes: int(flags, 'probe-scenes', 8),
      variants,
      log: (l) => console.log(l),
    });
    const { recipe, rows, episodes, seed } = r;
    console.log(
      `\nclosed-loop evaluation: ${episodes} episodes per variant (seeds ${seed}…${seed + episodes - 1}); ${recipe.episodes} expert demonstrations, ${recipe.framesPerEpisode} frames from each of the first ${recipe.perceptionEpisodes}; ` +
        `backbone of k-means filters pretrained without labels; ${rows[0].head} head; keypoint checked on ${rows[0].probe.tested} held-out scenes`,
    );
    console.log(HEADER);
    for (const row of rows) console.log(line(row));
    if (r.sweep.length > 0) {
      console.log(`\nby target size (${r.sizeEpisodes} episodes each; distractors scale with the target, success radius unchanged):`);
      console.log(HEADER);
      for (const row of r.sweep) console.log(line(row));
    }
    console.log(`chart: ${r.chart}\nnumbers: ${r.json}`);
    return 0;
  },
};
