// The default main job in the built-in simulation: the demo models (built once, cached), then seeded episodes of the
// node's pipeline in a closed loop, and a PNG of the end-effector paths.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FeatureExtractor } from '../pipeline/extractor.js';
import type { PolicyHead } from '../policy/head.js';
import { buildRuntime } from '../runtime/build.js';
import { DEMO_SIZES, ensureDemoModels, runClosedLoop, toPaths, type ClosedLoopProgress, type DemoSummary, type EpisodeResult } from '../sim/closed-loop.js';
import { renderEpisodesPng } from '../sim/plot.js';
import { TabletopSim } from '../sim/tabletop.js';

/** Episodes `start` runs by default. */
export const START_EPISODES = 8;

export interface SimRunOptions {
  /** Run folder: models/ (the cached demo models) and episodes.png. */
  out: string;
  episodes?: number;
  seed?: number;
  /** Expert demonstrations of the demo models' recipe (default DEMO_RECIPE's). */
  demos?: number;
  /** Lines while the models are built (first run only). */
  log?: (line: string) => void;
  /** Told once the models are ready, before the episodes run. */
  onModels?: (summary: DemoSummary, seconds: number) => void;
  onProgress?: (p: ClosedLoopProgress) => void;
}

export interface SimRunResult {
  results: EpisodeResult[];
  summary: DemoSummary;
  /** The end-effector paths over the scene. */
  png: string;
  seconds: number;
}

/** The per-episode table and the success line `start` and `eval` print. */
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

/** Runs the demo head in the simulation's closed loop for `episodes` seeded episodes. */
export async function runSimDemo(o: SimRunOptions): Promise<SimRunResult> {
  const t0 = performance.now();
  const episodes = o.episodes ?? START_EPISODES;
  const seed = o.seed ?? 0;
  mkdirSync(o.out, { recursive: true });
  const models = await ensureDemoModels(join(o.out, 'models'), { sizes: DEMO_SIZES, episodes: o.demos }, o.log);
  o.onModels?.(models.summary, (performance.now() - t0) / 1000);
  const runtime = await buildRuntime(models.config, 'demo config', { features: true, policy: true, by: 'start' });
  for (const n of runtime.notes) o.log?.(n.level === 'warn' ? `warning: ${n.text}` : n.text);
  const extractor = runtime.extractor as FeatureExtractor;
  const head = runtime.head as PolicyHead;
  try {
    const results = await runClosedLoop(models.config, extractor, head, episodes, seed, o.onProgress);
    const png = resolve(o.out, 'episodes.png');
    await renderEpisodesPng(png, new TabletopSim({ seed }), toPaths(results));
    return { results, summary: models.summary, png, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await runtime.release();
  }
}
