// The closed-loop evaluation of single scale versus S² in the simulation: per variant, the demo models built with
// its S² sizes, closed-loop success over seeded episodes (95% Wilson intervals), and how often the head's keypoint
// lands on the target; a sweep over target sizes; written as eval.json and the chart eval.png.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { FeatureExtractor } from '../pipeline/extractor.js';
import type { PolicyHead } from '../policy/head.js';
import { buildRuntime } from '../runtime/build.js';
import { DEMO_PRETRAIN, DEMO_RECIPE, DEMO_SIZES, ensureDemoModels, runClosedLoop, wilson, type EpisodeResult } from '../sim/closed-loop.js';
import { SIM_DEFAULTS } from '../sim/options.js';
import { keypointAccuracy, type KeypointAccuracy } from '../sim/probe.js';
import { evalChart } from './eval-chart.js';
import { summaryTable } from './start.js';

export interface EvalVariant {
  /** As --variants names it: '1x', '1x,2x', '1x,2x,3x'. */
  key: string;
  name: string;
  sizes: [number, number][];
}

/** Single scale, S² [1x, 2x] and S² [1x, 2x, 3x] of the demo's first size. */
export const EVAL_VARIANTS: readonly EvalVariant[] = (() => {
  const [h, w] = DEMO_SIZES[0];
  const times = (k: number): [number, number] => [k * h, k * w];
  return [
    { key: '1x', name: 'single scale', sizes: [times(1)] },
    { key: '1x,2x', name: 'S² 1x,2x', sizes: [times(1), times(2)] },
    { key: '1x,2x,3x', name: 'S² 1x,2x,3x', sizes: [times(1), times(2), times(3)] },
  ];
})();

export interface EvalOptions {
  /** Run folder: one folder of demo models per variant (cached between runs), eval.json and eval.png. */
  out: string;
  episodes?: number;
  seed?: number;
  /** Expert demonstrations of each variant's models (default DEMO_RECIPE's). */
  demos?: number;
  /** Target sizes (px) of the sweep, besides the task's own; [] for none. */
  targetSizes?: number[];
  /** Episodes per variant in the sweep. */
  sizeEpisodes?: number;
  /** Held-out scenes for the keypoint check. */
  probeScenes?: number;
  /** Keys of EVAL_VARIANTS (default all). */
  variants?: string[];
  /** One line per variant as it finishes, and the models' build lines. */
  log?: (line: string) => void;
}

export interface EvalRow {
  name: string;
  sizes: [number, number][];
  targetSizePx: number;
  results: EpisodeResult[];
  success: number;
  successes: number;
  interval: [number, number];
  meanDistance: number;
  featuresPerFrame: number;
  msPerFrame: number;
  probe: KeypointAccuracy & { interval: [number, number] };
  head: string;
}

export interface EvalReport {
  episodes: number;
  seed: number;
  sizeEpisodes: number;
  recipe: typeof DEMO_RECIPE;
  /** One row per variant at the task's target size. */
  rows: EvalRow[];
  /** The target-size sweep (single scale and S² 1x,2x). */
  sweep: EvalRow[];
  chart: string;
  json: string;
}

async function evalVariant(
  dir: string,
  v: EvalVariant,
  o: { episodes: number; seed: number; demos?: number; targetSizePx: number; probeScenes: number; log: (l: string) => void },
): Promise<EvalRow> {
  const simOptions = o.targetSizePx === SIM_DEFAULTS.targetSizePx ? {} : { targetSizePx: o.targetSizePx };
  const tag = `[${v.name}, ${o.targetSizePx} px]`;
  const models = await ensureDemoModels(
    dir,
    { sizes: v.sizes, episodes: o.demos, targetSizePx: o.targetSizePx === SIM_DEFAULTS.targetSizePx ? undefined : o.targetSizePx },
    (l) => o.log(`${tag} ${l}`),
  );
  const runtime = await buildRuntime(models.config, `${v.name} demo config`, { features: true, policy: true, by: 'eval' });
  for (const n of runtime.notes) o.log(`${tag} ${n.level === 'warn' ? 'warning: ' : ''}${n.text}`);
  const extractor = runtime.extractor as FeatureExtractor;
  const head = runtime.head as PolicyHead;
  try {
    const results = await runClosedLoop(models.config, extractor, head, o.episodes, o.seed, undefined, simOptions);
    const probe = await keypointAccuracy(extractor, models.config.policy!.model, o.probeScenes, simOptions);
    const ok = results.filter((r) => r.success).length;
    const row: EvalRow = {
      name: v.name,
      sizes: v.sizes,
      targetSizePx: o.targetSizePx,
      results,
      success: ok / results.length,
      successes: ok,
      interval: wilson(ok, results.length),
      meanDistance: results.reduce((a, r) => a + r.finalDistance, 0) / results.length,
      featuresPerFrame: probe.featuresPerFrame,
      msPerFrame: probe.msPerFrame,
      probe: { ...probe, interval: wilson(probe.within, probe.tested) },
      head: models.summary.head,
    };
    o.log(
      `${tag} ${summaryTable(results).at(-1) ?? ''}; keypoint on the target ${probe.within}/${probe.tested} (median error ${probe.medianPx.toFixed(1)} px); ${probe.msPerFrame.toFixed(1)} ms per frame`,
    );
    return row;
  } finally {
    await runtime.release();
  }
}

/** Runs every chosen variant and the target-size sweep; writes eval.json and eval.png into `o.out`. */
export async function evaluate(o: EvalOptions): Promise<EvalReport> {
  const episodes = o.episodes ?? 50;
  const seed = o.seed ?? 0;
  const sizeEpisodes = o.sizeEpisodes ?? 20;
  const probeScenes = o.probeScenes ?? 200;
  const targetSizes = o.targetSizes ?? [4, 16];
  const out = resolve(o.out);
  const chosen = o.variants ?? EVAL_VARIANTS.map((v) => v.key);
  for (const c of chosen) if (!EVAL_VARIANTS.some((v) => v.key === c)) throw new UserError(`eval: unknown variant '${c}'`);
  const variants = EVAL_VARIANTS.filter((v) => chosen.includes(v.key));
  const log = o.log ?? (() => undefined);
  const common = { seed, demos: o.demos, probeScenes, log };
  const slug = (s: string) => s.replace(/[^a-z0-9]+/gi, '_');
  const rows: EvalRow[] = [];
  for (const v of variants) rows.push(await evalVariant(join(out, slug(v.name)), v, { ...common, episodes, targetSizePx: SIM_DEFAULTS.targetSizePx }));
  const sweep: EvalRow[] = [];
  for (const t of [...new Set([...targetSizes, SIM_DEFAULTS.targetSizePx])].sort((a, b) => a - b)) {
    for (const v of variants.filter((x) => x.sizes.length <= 2)) {
      if (t === SIM_DEFAULTS.targetSizePx && sizeEpisodes === episodes) sweep.push(rows.find((r) => r.name === v.name)!);
      else sweep.push(await evalVariant(join(out, `${slug(v.name)}_${t}px`), v, { ...common, episodes: sizeEpisodes, targetSizePx: t }));
    }
  }
  const recipe = { ...DEMO_RECIPE, ...(o.demos !== undefined ? { episodes: o.demos } : {}) };
  mkdirSync(out, { recursive: true });
  const chart = join(out, 'eval.png');
  await evalChart(chart, rows, sweep, episodes);
  const json = (r: EvalRow) => ({
    name: r.name,
    sizes: r.sizes,
    targetSizePx: r.targetSizePx,
    head: r.head,
    episodes: r.results.length,
    success: r.success,
    interval: r.interval,
    meanDistance: r.meanDistance,
    featuresPerFrame: r.featuresPerFrame,
    msPerFrame: r.msPerFrame,
    probe: r.probe,
    seeds: r.results.map((x) => x.seed),
    successes: r.results.map((x) => x.success),
    finalDistances: r.results.map((x) => x.finalDistance),
  });
  const jsonFile = join(out, 'eval.json');
  writeFileAtomic(jsonFile, JSON.stringify({ recipe, pretrain: DEMO_PRETRAIN, variants: rows.map(json), targetSizes: sweep.map(json) }, null, 2));
  return { episodes, seed, sizeEpisodes, recipe, rows, sweep, chart, json: jsonFile };
}
