// `s2-policy sim collect`, `s2-policy fit` and `s2-policy eval`: demonstrations in the simulation, a linear head by
// ridge regression (the linear-probe protocol), and closed-loop success of single scale versus S².
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { need } from '../config/config.js';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { configToParams, stringifyParamsFile } from '../ros/params.js';
import { UserError } from '../errors.js';
import { withAtomicDir, writeFileAtomic } from '../io/atomic.js';
import { readNpy, writeNpy } from '../io/npy.js';
import { writePresetModel } from '../models/write.js';
import type { FeatureExtractor } from '../pipeline/extractor.js';
import { buildRuntime } from '../runtime/build.js';
import { fitPolicy, writePolicy } from '../policy/fit.js';
import type { PolicyHead } from '../policy/head.js';
import { collectDemos, ensureDemoModels, runClosedLoop, simConfig, type EpisodeResult } from '../sim/closed-loop.js';
import { DEMO_SIZES, summaryTable } from './start.js';
import { int, numberList, parseFlags, refuseNonEmpty, required, sizeList, str } from './args.js';

export const SIM_HELP = `usage: s2-policy sim collect --out DIR [--episodes N] [--seed S] [--img-sizes 96x128,192x256] [--force]
       s2-policy sim models --out DIR   (demo models + a ROS 2 parameter file for launch/sim.launch.py)`;
export const FIT_HELP = `usage: s2-policy fit --data DIR --out policy.onnx [--chunk T] [--lambdas 0.1,1,10]
       DIR holds features.npy, actions.npy and optionally state.npy and episodes.npy (from 'sim collect' or 'extract')`;
export const EVAL_HELP = `usage: s2-policy eval [--episodes N] [--seed S] [--demos N] [--out DIR]`;

function pairs(text: string | undefined): [number, number][] {
  if (text === undefined) return DEMO_SIZES;
  return sizeList(text, 'img-sizes').map((s) => (typeof s === 'number' ? [s, s] : [s[0], s[1]]));
}

export async function simCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'models') {
    const flags = parseFlags('sim models', rest, { out: { type: 'string' } });
    const out = resolve(required(flags, 'out', 'sim models'));
    const models = await ensureDemoModels(out, { sizes: DEMO_SIZES }, (l) => console.log(l));
    const c = models.config;
    need(c, 'control', 'demo config', 'sim models').action_topic = '/s2_policy/actions';
    const file = join(out, 'sim_params.yaml');
    writeFileAtomic(file, stringifyParamsFile(configToParams(c), ['s2_policy'], '# s2_policy parameters for launch/sim.launch.py (demo models, not pretrained)\n'));
    console.log(`wrote ${file}`);
    return 0;
  }
  if (sub !== 'collect') {
    console.log(SIM_HELP);
    return sub === undefined || sub === '--help' || sub === '-h' ? 0 : 2;
  }
  const flags = parseFlags('sim collect', rest, { out: { type: 'string' }, episodes: { type: 'string' }, seed: { type: 'string' }, 'img-sizes': { type: 'string' }, force: { type: 'boolean' } });
  const out = required(flags, 'out', 'sim collect');
  if (existsSync(join(out, 'features.npy')) && !flags.force) throw new UserError(`sim collect: ${out} already holds demonstrations; pass --force to overwrite`);
  refuseNonEmpty(out, Boolean(flags.force), 'sim collect');
  const sizes = pairs(str(flags, 'img-sizes'));
  const episodes = int(flags, 'episodes') ?? 24;
  const seed = int(flags, 'seed', 0) ?? 1000;
  // Written into a fresh folder that takes the place of --out only when complete.
  const d = await withAtomicDir(out, async (tmp) => {
    const config = simConfig(tmp, { sizes });
    writePresetModel('convnet-tiny', config.backbone.model);
    const runtime = await buildRuntime(config, 'sim collect config', { features: true, policy: false, by: 'sim collect' });
    const extractor = runtime.extractor as FeatureExtractor;
    try {
      const d = await collectDemos(extractor, episodes, seed, (e) => process.stderr.write(`\rcollected episode ${e + 1}/${episodes}`));
      process.stderr.write('\n');
      writeNpy(join(tmp, 'features.npy'), { dims: [d.rows, d.featureDim], data: d.features });
      writeNpy(join(tmp, 'state.npy'), { dims: [d.rows, 2], data: d.state });
      writeNpy(join(tmp, 'actions.npy'), { dims: [d.rows, 2], data: d.actions });
      writeNpy(join(tmp, 'episodes.npy'), { dims: [d.rows], data: Float32Array.from(d.episodes) });
      writeFileAtomic(join(tmp, 'index.json'), JSON.stringify({ generator: 's2-policy sim collect', episodes, seed, rows: d.rows, featureDim: d.featureDim, sizes, backbone: 'convnet-tiny', pool: config.features.pool }, null, 2));
      return d;
    } finally {
      await runtime.release();
    }
  }, '--out');
  console.log(`wrote ${d.rows} steps of ${episodes} expert episodes (${d.featureDim} features each) to ${out}`);
  return 0;
}

export function fitCommand(argv: string[]): number {
  const flags = parseFlags('fit', argv, { data: { type: 'string' }, out: { type: 'string' }, chunk: { type: 'string' }, lambdas: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (flags.help) {
    console.log(FIT_HELP);
    return 0;
  }
  const dir = required(flags, 'data', 'fit');
  const out = required(flags, 'out', 'fit');
  const features = readNpy(join(dir, 'features.npy'));
  const actions = readNpy(join(dir, 'actions.npy'));
  const state = existsSync(join(dir, 'state.npy')) ? readNpy(join(dir, 'state.npy')) : undefined;
  const episodes = existsSync(join(dir, 'episodes.npy')) ? Int32Array.from(readNpy(join(dir, 'episodes.npy')).data) : new Int32Array(features.dims[0]);
  const lambdasText = str(flags, 'lambdas');
  const fit = fitPolicy({ features, state, actions, episodes }, { chunk: int(flags, 'chunk') ?? 4, lambdas: lambdasText ? numberList(lambdasText, 'lambdas') : undefined });
  const files = writePolicy(out, fit);
  console.log(`λ = ${fit.lambda} (${fit.selection.note})`);
  for (const s of fit.scores) console.log(`  λ ${String(s.lambda).padStart(8)}  held-out MSE ${s.mse.toFixed(4)}${s.lambda === fit.lambda ? '  <- chosen' : ''}`);
  console.log(`wrote ${files.model} and ${files.stats}: ${fit.featureDim} features + ${fit.stateDim} state → ${fit.chunk}×${fit.actionDim} actions`);
  return 0;
}

/** Wilson score interval for a binomial proportion, 95%. */
export function wilson(successes: number, n: number): [number, number] {
  if (n === 0) return [0, 1];
  const z = 1.959964;
  const p = successes / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, c - h), Math.min(1, c + h)];
}

export interface EvalRow {
  name: string;
  sizes: [number, number][];
  results: EpisodeResult[];
  success: number;
  interval: [number, number];
  meanDistance: number;
}

async function barChart(file: string, rows: EvalRow[]): Promise<void> {
  const W = 640;
  const H = 360;
  const bw = 120;
  const gap = (W - rows.length * bw) / (rows.length + 1);
  const y = (p: number) => 300 - p * 240;
  const bars = rows
    .map((r, i) => {
      const x = gap + i * (bw + gap);
      const [lo, hi] = r.interval;
      return `<rect x="${x}" y="${y(r.success)}" width="${bw}" height="${300 - y(r.success)}" fill="#4a7fb5"/>
<line x1="${x + bw / 2}" x2="${x + bw / 2}" y1="${y(lo)}" y2="${y(hi)}" stroke="black" stroke-width="2"/>
<text x="${x + bw / 2}" y="325" font-size="14" text-anchor="middle" font-family="sans-serif">${r.name}</text>
<text x="${x + bw / 2}" y="${y(r.success) - 8}" font-size="13" text-anchor="middle" font-family="sans-serif">${(100 * r.success).toFixed(0)}%</text>`;
    })
    .join('\n');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="28" font-size="16" text-anchor="middle" font-family="sans-serif">closed-loop success (95% interval), same backbone and demos</text>
<line x1="40" x2="${W - 20}" y1="300" y2="300" stroke="black"/>${bars}</svg>`;
  writeFileAtomic(file, await sharp(Buffer.from(svg)).png().toBuffer());
}

export async function evalCommand(argv: string[]): Promise<number> {
  const flags = parseFlags('eval', argv, { episodes: { type: 'string' }, seed: { type: 'string' }, demos: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (flags.help) {
    console.log(EVAL_HELP);
    return 0;
  }
  const episodes = int(flags, 'episodes') ?? 20;
  const seed = int(flags, 'seed', 0) ?? 0;
  const demos = int(flags, 'demos') ?? 24;
  const out = resolve(str(flags, 'out') ?? 'out/eval');
  const [h, w] = DEMO_SIZES[0];
  const variants: { name: string; sizes: [number, number][] }[] = [
    { name: 'single scale', sizes: [[h, w]] },
    { name: 'S² 1x,2x', sizes: [[h, w], [2 * h, 2 * w]] },
    { name: 'S² 1x,2x,3x', sizes: [[h, w], [2 * h, 2 * w], [3 * h, 3 * w]] },
  ];
  const rows: EvalRow[] = [];
  for (const v of variants) {
    const models = await ensureDemoModels(join(out, v.name.replace(/[^a-z0-9]+/gi, '_')), { sizes: v.sizes, episodes: demos }, (l) => console.log(`[${v.name}] ${l}`));
    const runtime = await buildRuntime(models.config, `${v.name} demo config`, { features: true, policy: true, by: 'eval' });
    const extractor = runtime.extractor as FeatureExtractor;
    const head = runtime.head as PolicyHead;
    try {
      const results = await runClosedLoop(models.config, extractor, head, episodes, seed);
      const ok = results.filter((r) => r.success).length;
      rows.push({ name: v.name, sizes: v.sizes, results, success: ok / episodes, interval: wilson(ok, episodes), meanDistance: results.reduce((a, r) => a + r.finalDistance, 0) / episodes });
      console.log(`[${v.name}] ${summaryTable(results).at(-1) ?? ''}`);
    } finally {
      await runtime.release();
    }
  }
  console.log(`\nclosed-loop evaluation: ${episodes} episodes (seeds ${seed}…${seed + episodes - 1}), ${demos} demonstration episodes, same backbone (convnet-tiny, not pretrained)`);
  console.log('variant         S² sizes                       success   95% interval    mean final distance (m)');
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(15)} ${r.sizes.map((s) => s.join('x')).join(', ').padEnd(30)} ${(100 * r.success).toFixed(0).padStart(5)}%   [${(100 * r.interval[0]).toFixed(0)}%, ${(100 * r.interval[1]).toFixed(0)}%]`.padEnd(72) +
        r.meanDistance.toFixed(3),
    );
  }
  mkdirSync(out, { recursive: true });
  const png = join(out, 'eval.png');
  await barChart(png, rows);
  writeFileAtomic(join(out, 'eval.json'), JSON.stringify(rows.map((r) => ({ name: r.name, sizes: r.sizes, success: r.success, interval: r.interval, meanDistance: r.meanDistance, seeds: r.results.map((x) => x.seed), successes: r.results.map((x) => x.success) })), null, 2));
  console.log(`bar chart: ${png}`);
  return 0;
}

/** For tests: the eval table's numbers from eval.json. */
export function readEval(dir: string): { name: string; success: number; meanDistance: number }[] {
  return JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8')) as { name: string; success: number; meanDistance: number }[];
}
