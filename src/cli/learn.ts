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
import type { FeatureExtractor } from '../pipeline/extractor.js';
import { buildRuntime } from '../runtime/build.js';
import { coveringChunk, fitPolicy, policyPaths, shortestEpisode, stackChunks, writePolicy } from '../policy/fit.js';
import { fitKeypointHead, writeKeypointPolicy } from '../policy/keypoint.js';
import { fitController, fitDetector, writeDetectorPolicy } from '../policy/detector.js';
import { controllerRows } from '../sim/controller-rows.js';
import type { Tensor } from '../s2/tensor.js';
import type { PolicyHead } from '../policy/head.js';
import {
  collectDemos,
  DEMO_PRETRAIN,
  DEMO_RECIPE,
  ensureDemoBackbone,
  collectPerception,
  ensureDemoModels,
  runClosedLoop,
  simConfig,
  type EpisodeResult,
} from '../sim/closed-loop.js';
import { SIM_DEFAULTS } from '../sim/options.js';
import { keypointAccuracy, type KeypointAccuracy } from '../sim/probe.js';
import { TabletopSim } from '../sim/tabletop.js';
import { DEMO_SIZES, summaryTable } from './start.js';
import { int, numberList, parseFlags, refuseNonEmpty, required, sizeList, str } from './args.js';

export const SIM_HELP = `usage: s2-policy sim collect --out DIR [--episodes N] [--seed S] [--img-sizes 240x320,480x640] [--head linear|detector] [--frames N] [--force]
       --head detector: 3 frames from each of --frames episodes (S² map, keypoint labels) + controller rows from every episode
       s2-policy sim models --out DIR   (demo models + a ROS 2 parameter file for launch/sim.launch.py)`;
export const FIT_HELP = `usage: s2-policy fit --data DIR --out policy.onnx [--head linear|keypoint|detector] [--chunk T] [--lambdas 0.1,1,10] [--epochs N] [--force]
       [--rate-hz 20] [--frame-period-ms P] [--processing-ms M]
       DIR holds features.npy, actions.npy and optionally state.npy and episodes.npy (from 'sim collect' or 'extract');
       --head detector: features.npy, keypoints.npy, episodes.npy and controller/{keypoints,state,actions}.npy ('sim collect --head detector').
       The default chunk covers the slowest camera's period plus processing time at the control rate.`;
export const EVAL_HELP = `usage: s2-policy eval [--episodes 50] [--seed S] [--demos N] [--out DIR] [--target-sizes 4,16|none] [--size-episodes 20] [--probe-scenes 200] [--variants '1x;1x,2x;1x,2x,3x']
       single scale vs S² [1x,2x] vs S² [1x,2x,3x]: closed-loop success (95% Wilson), final distance, cost, and how often the policy's keypoint lands on the target`;

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
    writeFileAtomic(
      file,
      stringifyParamsFile(
        configToParams(c),
        ['s2_policy'],
        '# s2_policy parameters for launch/sim.launch.py (demo models: k-means backbone pretrained on simulated frames without labels, keypoint head)\n',
      ),
    );
    console.log(`wrote ${file}`);
    return 0;
  }
  if (sub !== 'collect') {
    console.log(SIM_HELP);
    return sub === undefined || sub === '--help' || sub === '-h' ? 0 : 2;
  }
  const flags = parseFlags('sim collect', rest, {
    out: { type: 'string' },
    episodes: { type: 'string' },
    seed: { type: 'string' },
    'img-sizes': { type: 'string' },
    head: { type: 'string' },
    frames: { type: 'string' },
    force: { type: 'boolean' },
  });
  const out = required(flags, 'out', 'sim collect');
  const head = str(flags, 'head') ?? 'linear';
  if (head !== 'linear' && head !== 'detector') throw new UserError(`sim collect: --head must be linear or detector, got '${head}'`);
  if (existsSync(join(out, 'features.npy')) && !flags.force) throw new UserError(`sim collect: ${out} already holds demonstrations; pass --force to overwrite`);
  refuseNonEmpty(out, Boolean(flags.force), 'sim collect');
  const sizes = pairs(str(flags, 'img-sizes'));
  const episodes = int(flags, 'episodes') ?? 24;
  const seed = int(flags, 'seed', 0) ?? 1000;
  if (head === 'detector') return collectDetectorData(out, sizes, episodes, int(flags, 'frames') ?? Math.min(episodes, DEMO_RECIPE.perceptionEpisodes), seed);
  // Written into a fresh folder that takes the place of --out only when complete.
  const d = await withAtomicDir(
    out,
    async (tmp) => {
      // A 16×16 grid of every channel: the linear head's (ridge probe's) input, of a size that fits in memory.
      const config = simConfig(tmp, { sizes, pool: 'grid:16' });
      await ensureDemoBackbone(config.backbone.model);
      const runtime = await buildRuntime(config, 'sim collect config', { features: true, policy: false, by: 'sim collect' });
      const extractor = runtime.extractor as FeatureExtractor;
      try {
        const t0 = performance.now();
        const d = await collectDemos(extractor, episodes, seed, (e) => process.stderr.write(`\rcollected episode ${e + 1}/${episodes}`));
        const msPerFrame = (performance.now() - t0) / d.rows;
        process.stderr.write('\n');
        writeNpy(join(tmp, 'features.npy'), { dims: [d.rows, d.featureDim], data: d.features });
        writeNpy(join(tmp, 'state.npy'), { dims: [d.rows, 2], data: d.state });
        writeNpy(join(tmp, 'actions.npy'), { dims: [d.rows, 2], data: d.actions });
        writeNpy(join(tmp, 'episodes.npy'), { dims: [d.rows], data: Float32Array.from(d.episodes) });
        const index = {
          generator: 's2-policy sim collect',
          episodes,
          seed,
          rows: d.rows,
          featureDim: d.featureDim,
          sizes,
          backbone: 'k-means filters pretrained on simulated frames (src/sim/pretrain.ts)',
          pool: config.features.pool,
          channels: extractor.layout.channels,
          frame_period_ms: 1000 * new TabletopSim().options.dt,
          processing_ms: Number(msPerFrame.toFixed(2)),
        };
        writeFileAtomic(join(tmp, 'index.json'), JSON.stringify(index, null, 2));
        return d;
      } finally {
        await runtime.release();
      }
    },
    '--out',
  );
  console.log(`wrote ${d.rows} steps of ${episodes} expert episodes (${d.featureDim} features each) to ${out}`);
  return 0;
}

interface DataIndex {
  /** Slowest camera's frame period, ms (sim collect writes it; extract's stamps give it otherwise). */
  frame_period_ms?: number;
  /** Measured S² processing time per frame, ms. */
  processing_ms?: number;
  pool?: string;
  grid_height?: number;
  grid_width?: number;
  chunk?: number;
  features?: { pooling?: string };
  channels?: number;
  s2?: { channels?: number; scale_sizes?: unknown[]; output_shape?: string };
}

function readIndex(dir: string): DataIndex {
  const file = join(dir, 'index.json');
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as DataIndex;
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
}

/** Median spacing of the recording's group stamps, ms, when extract wrote them. */
function stampPeriodMs(dir: string): number | undefined {
  const file = join(dir, 'stamps_ns.npy');
  if (!existsSync(file)) return undefined;
  const t = readNpy(file) as unknown as { data: ArrayLike<number | bigint> };
  const v = Array.from(t.data, (x) => Number(x));
  const d = v
    .slice(1)
    .map((x, i) => (x - v[i]) / 1e6)
    .filter((x) => x > 0)
    .sort((a, b) => a - b);
  return d.length > 0 ? d[Math.floor(d.length / 2)] : undefined;
}

/** Processing time assumed when the data does not say (extract does not time the backbone on the target machine). */
export const DEFAULT_PROCESSING_MS = 50;

export async function fitCommand(argv: string[]): Promise<number> {
  const flags = parseFlags('fit', argv, {
    data: { type: 'string' },
    out: { type: 'string' },
    chunk: { type: 'string' },
    lambdas: { type: 'string' },
    head: { type: 'string' },
    'rate-hz': { type: 'string' },
    'frame-period-ms': { type: 'string' },
    'processing-ms': { type: 'string' },
    epochs: { type: 'string' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(FIT_HELP);
    return 0;
  }
  const dir = required(flags, 'data', 'fit');
  const out = required(flags, 'out', 'fit');
  const headKind = str(flags, 'head') ?? 'linear';
  if (headKind !== 'linear' && headKind !== 'keypoint' && headKind !== 'detector')
    throw new UserError(`fit: --head must be linear, keypoint or detector, got '${headKind}'`);
  const paths = policyPaths(out);
  if (!flags.force) {
    for (const f of [paths.model, paths.stats]) if (existsSync(f)) throw new UserError(`fit: ${f} exists; pass --force to replace it`);
  }
  const index = readIndex(dir);
  if (headKind === 'detector') return fitDetectorCommand(dir, index, int(flags, 'epochs'), paths);
  const features = readNpy(join(dir, 'features.npy'));
  const actions = readNpy(join(dir, 'actions.npy'));
  const state = existsSync(join(dir, 'state.npy')) ? readNpy(join(dir, 'state.npy')) : undefined;
  const episodes = existsSync(join(dir, 'episodes.npy')) ? Int32Array.from(readNpy(join(dir, 'episodes.npy')).data) : new Int32Array(features.dims[0]);
  let chunk = int(flags, 'chunk');
  if (chunk === undefined) {
    const rate = positiveNumber(flags, 'rate-hz') ?? 20;
    const period = positiveNumber(flags, 'frame-period-ms') ?? index.frame_period_ms ?? stampPeriodMs(dir) ?? 1000 / rate;
    const processing = positiveNumber(flags, 'processing-ms') ?? index.processing_ms ?? DEFAULT_PROCESSING_MS;
    chunk = coveringChunk(period, processing, rate);
    const shortest = shortestEpisode(episodes);
    console.log(
      `chunk ${chunk}: covers a frame period of ${period.toFixed(1)} ms plus ${processing.toFixed(1)} ms of processing at ${rate} Hz (set --chunk, --rate-hz, --frame-period-ms or --processing-ms to change it)`,
    );
    if (chunk > shortest.rows)
      throw new UserError(
        `fit: the covering chunk ${chunk} is longer than the shortest episode (episode ${shortest.id}, ${shortest.rows} rows); pass a shorter --chunk`,
      );
  }
  if (headKind === 'keypoint') return fitKeypointCommand(flags, index, { features, state, actions, episodes }, chunk, paths);
  const lambdasText = str(flags, 'lambdas');
  const fit = fitPolicy({ features, state, actions, episodes }, { chunk, lambdas: lambdasText ? numberList(lambdasText, 'lambdas') : undefined });
  console.log(`λ = ${fit.lambda} (${fit.selection.note})`);
  for (const s of fit.scores)
    console.log(`  λ ${String(s.lambda).padStart(8)}  held-out MSE ${s.mse.toFixed(4)}${s.lambda === fit.lambda ? '  <- chosen' : ''}`);
  console.log(`  mean prediction  held-out MSE ${fit.selection.meanMse.toFixed(4)}`);
  for (const w of fit.warnings) console.error(`s2-policy: warning: fit: ${w}`);
  const files = writePolicy(paths, fit);
  console.log(`wrote ${files.model} and ${files.stats}: ${fit.featureDim} features + ${fit.stateDim} state → ${fit.chunk}×${fit.actionDim} actions`);
  return 0;
}

function positiveNumber(flags: ReturnType<typeof parseFlags>, name: string): number | undefined {
  const text = str(flags, name);
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < 0 || (name === 'rate-hz' && v === 0))
    throw new UserError(`fit: --${name} must be a number ${name === 'rate-hz' ? '> 0' : '≥ 0'}, got '${text}'`);
  return v;
}

function fitKeypointCommand(
  flags: ReturnType<typeof parseFlags>,
  index: DataIndex,
  data: { features: Tensor; state?: Tensor; actions: Tensor; episodes: Int32Array },
  chunk: number,
  paths: { model: string; stats: string },
): number {
  const pool = index.pool ?? index.features?.pooling;
  const m = pool ? /^grid:(\d+)$/.exec(pool) : null;
  if (!m) throw new UserError(`fit: --head keypoint needs features pooled as grid:K (index.json says ${pool === undefined ? 'nothing' : `'${pool}'`})`);
  if (index.s2?.output_shape !== undefined && index.s2.output_shape !== 'bchw')
    throw new UserError(`fit: --head keypoint needs a bchw (ConvNet) backbone's grid, index.json says ${index.s2.output_shape}`);
  if (!data.state) throw new UserError('fit: --head keypoint needs state.npy');
  const grid = Number(m[1]);
  const [rows, dim] = data.features.dims;
  if (dim % (grid * grid) !== 0) throw new UserError(`fit: features have ${dim} values per row, not a multiple of the ${grid}×${grid} grid`);
  const shortest = shortestEpisode(data.episodes);
  if (chunk > shortest.rows) throw new UserError(`fit: chunk ${chunk} is longer than the shortest episode (episode ${shortest.id}, ${shortest.rows} rows)`);
  const targets = stackChunks(data.actions, data.episodes, chunk);
  const fit = fitKeypointHead(
    {
      features: data.features.data,
      state: data.state.data,
      targets: targets.data,
      rows,
      channels: dim / (grid * grid),
      grid,
      stateDim: data.state.dims[1],
      chunk,
      actionDim: data.actions.dims[1],
    },
    { epochs: int(flags, 'epochs') ?? 30 },
  );
  const files = writeKeypointPolicy(paths, fit);
  console.log(`keypoint head: training MSE ${fit.trainMse.toFixed(4)} (normalised units) in ${fit.seconds.toFixed(1)} s`);
  console.log(`wrote ${files.model} and ${files.stats}: ${dim} features + ${data.state.dims[1]} state → ${chunk}×${data.actions.dims[1]} actions`);
  return 0;
}

/** `sim collect --head detector`: the demo recipe's data for the detector head, as files `fit --head detector` reads. */
async function collectDetectorData(out: string, sizes: [number, number][], episodes: number, frames: number, seed: number): Promise<number> {
  const chunk = DEMO_RECIPE.chunk;
  const d = await withAtomicDir(
    out,
    async (tmp) => {
      const config = simConfig(tmp, { sizes });
      await ensureDemoBackbone(config.backbone.model);
      const runtime = await buildRuntime(config, 'sim collect config', { features: true, policy: false, by: 'sim collect' });
      const extractor = runtime.extractor as FeatureExtractor;
      try {
        const p = await collectPerception(extractor, Math.min(frames, episodes), seed, DEMO_RECIPE.framesPerEpisode);
        const per = p.channels * p.height * p.width;
        writeNpy(join(tmp, 'features.npy'), { dims: [p.rows, per], data: p.features });
        // Keypoints in [-1, 1] (x across, y down), as the controller takes them.
        const kp = Float32Array.from(p.labels, (v, i) => (v / (i % 2 === 0 ? p.width : p.height)) * 2 - 1);
        writeNpy(join(tmp, 'keypoints.npy'), { dims: [p.rows, 2], data: kp });
        writeNpy(join(tmp, 'episodes.npy'), { dims: [p.rows], data: Float32Array.from(p.groups) });
        const c = controllerRows(episodes, seed, chunk, DEMO_RECIPE.controllerPerturbed, DEMO_RECIPE.controllerNoisePx);
        mkdirSync(join(tmp, 'controller'));
        writeNpy(join(tmp, 'controller', 'keypoints.npy'), { dims: [c.rows, 2], data: c.keypoints });
        writeNpy(join(tmp, 'controller', 'state.npy'), { dims: [c.rows, 2], data: c.state });
        writeNpy(join(tmp, 'controller', 'actions.npy'), { dims: [c.rows, chunk * 2], data: c.targets });
        const index = {
          generator: 's2-policy sim collect --head detector',
          episodes,
          seed,
          rows: p.rows,
          sizes,
          pool: config.features.pool,
          channels: p.channels,
          grid_height: p.height,
          grid_width: p.width,
          chunk,
          controller_rows: c.rows,
        };
        writeFileAtomic(join(tmp, 'index.json'), JSON.stringify(index, null, 2));
        return { frames: p.rows, rows: c.rows, per };
      } finally {
        await runtime.release();
      }
    },
    '--out',
  );
  console.log(`wrote ${d.frames} frames (${d.per} features each, keypoint labels) and ${d.rows} controller rows of ${episodes} expert episodes to ${out}`);
  return 0;
}

/** `fit --head detector`: the detector on features.npy + keypoints.npy, the controller on controller/*.npy. */
async function fitDetectorCommand(dir: string, index: DataIndex, epochs: number | undefined, paths: { model: string; stats: string }): Promise<number> {
  const h = index.grid_height;
  const w = index.grid_width;
  if (index.pool !== 'tokens' || h === undefined || w === undefined)
    throw new UserError(
      `fit: --head detector needs features pooled as tokens with grid_height and grid_width in ${join(dir, 'index.json')} (from 'sim collect --head detector')`,
    );
  const features = readNpy(join(dir, 'features.npy'));
  const keypoints = readNpy(join(dir, 'keypoints.npy'));
  const episodes = readNpy(join(dir, 'episodes.npy'));
  const [rows, per] = features.dims;
  if (per % (h * w) !== 0) throw new UserError(`fit: features.npy has ${per} values per row, not a multiple of the ${h}×${w} grid`);
  if (keypoints.dims[0] !== rows || keypoints.dims[1] !== 2) throw new UserError(`fit: keypoints.npy must be [${rows}, 2], got [${keypoints.dims.join(', ')}]`);
  if (episodes.dims[0] !== rows) throw new UserError(`fit: episodes.npy must have ${rows} rows, got ${episodes.dims[0]}`);
  const ck = readNpy(join(dir, 'controller', 'keypoints.npy'));
  const cs = readNpy(join(dir, 'controller', 'state.npy'));
  const ca = readNpy(join(dir, 'controller', 'actions.npy'));
  const m = ck.dims[0];
  if (cs.dims[0] !== m || ca.dims[0] !== m)
    throw new UserError(`fit: controller/keypoints.npy, state.npy and actions.npy must have the same rows (${m}, ${cs.dims[0]}, ${ca.dims[0]})`);
  const chunk = index.chunk ?? 1;
  const actionDim = ca.dims[1] / chunk;
  if (!Number.isInteger(actionDim)) throw new UserError(`fit: controller/actions.npy has ${ca.dims[1]} values per row, not a multiple of the chunk ${chunk}`);
  const labels = Float32Array.from(keypoints.data, (v, i) => ((v + 1) / 2) * (i % 2 === 0 ? w : h));
  const det = await fitDetector(
    { features: Float32Array.from(features.data), rows, channels: per / (h * w), height: h, width: w, labels, groups: Int32Array.from(episodes.data) },
    { epochs: epochs ?? DEMO_RECIPE.epochs },
  );
  console.log(
    `detector: ${rows} frames, held-out keypoint error median ${det.heldOut.median.toFixed(2)} cells, ${(100 * det.heldOut.withinOne).toFixed(0)}% within one cell (temperature ${det.params.temperature}), ${det.seconds.toFixed(1)} s`,
  );
  const ctrl = fitController(
    { keypoints: ck.data, state: cs.data, targets: ca.data, rows: m, stateDim: cs.dims[1], chunk, actionDim },
    { epochs: DEMO_RECIPE.controllerEpochs, seed: 13 },
  );
  console.log(`controller: ${m} rows, training MSE ${ctrl.trainMse.toFixed(4)} (normalised units), ${ctrl.seconds.toFixed(1)} s`);
  const files = writeDetectorPolicy(paths, det.params, ctrl.params);
  console.log(`wrote ${files.model} and ${files.stats}: ${per} features + ${cs.dims[1]} state → ${chunk}×${actionDim} actions (outputs actions, keypoint)`);
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

function svgText(x: number, y: number, text: string, o: { size?: number; anchor?: string; weight?: string } = {}): string {
  return `<text x="${x}" y="${y}" font-size="${o.size ?? 12}" text-anchor="${o.anchor ?? 'middle'}" font-family="sans-serif"${o.weight ? ` font-weight="${o.weight}"` : ''}>${text}</text>`;
}

/** Two bar groups per variant (closed-loop success, keypoint on the target), each with its 95% interval. */
async function evalChart(file: string, rows: EvalRow[], sweep: EvalRow[], episodes: number): Promise<void> {
  const W = 900;
  const H = 420;
  const y = (p: number) => 330 - p * 260;
  const parts: string[] = [];
  const panel = (x0: number, width: number, title: string, groups: { label: string; bars: { p: number; ci: [number, number]; colour: string }[] }[]) => {
    parts.push(svgText(x0 + width / 2, 40, title, { size: 14, weight: 'bold' }));
    parts.push(`<line x1="${x0}" x2="${x0 + width}" y1="330" y2="330" stroke="black"/>`);
    for (const t of [0, 0.25, 0.5, 0.75, 1]) {
      parts.push(
        `<line x1="${x0}" x2="${x0 + width}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/>`,
        svgText(x0 - 4, y(t) + 4, `${100 * t}%`, { size: 10, anchor: 'end' }),
      );
    }
    const gw = width / groups.length;
    groups.forEach((g, i) => {
      const bw = Math.min(40, (gw - 20) / g.bars.length);
      g.bars.forEach((b, k) => {
        const x = x0 + i * gw + (gw - bw * g.bars.length) / 2 + k * bw;
        parts.push(
          `<rect x="${x + 2}" y="${y(b.p)}" width="${bw - 4}" height="${330 - y(b.p)}" fill="${b.colour}"/>`,
          `<line x1="${x + bw / 2}" x2="${x + bw / 2}" y1="${y(b.ci[0])}" y2="${y(b.ci[1])}" stroke="black" stroke-width="2"/>`,
          svgText(x + bw / 2, y(b.ci[1]) - 5, `${(100 * b.p).toFixed(0)}%`, { size: 10 }),
        );
      });
      parts.push(svgText(x0 + (i + 0.5) * gw, 348, g.label, { size: 11 }));
    });
  };
  const bars = (r: EvalRow) => [
    { p: r.success, ci: r.interval, colour: '#4a7fb5' },
    { p: r.probe.within / r.probe.tested, ci: r.probe.interval, colour: '#e08a2e' },
  ];
  panel(
    60,
    420,
    `task (8 px target), ${episodes} episodes per variant`,
    rows.map((r) => ({ label: r.name, bars: bars(r) })),
  );
  if (sweep.length > 0)
    panel(
      540,
      340,
      'by target size (single scale | S² 1x,2x)',
      sweep.map((r) => ({ label: `${r.targetSizePx} px ${r.sizes.length === 1 ? '1x' : 'S²'}`, bars: bars(r) })),
    );
  parts.push(
    `<rect x="60" y="380" width="14" height="10" fill="#4a7fb5"/>`,
    svgText(80, 389, 'closed-loop success', { anchor: 'start' }),
    `<rect x="260" y="380" width="14" height="10" fill="#e08a2e"/>`,
    svgText(280, 389, "the policy's keypoint is within 8 px of the target (first frame, held-out scenes)", { anchor: 'start' }),
    svgText(60, 410, 'black bars: 95% Wilson intervals; same backbone (k-means, no labels), same demonstrations, same head recipe', {
      anchor: 'start',
      size: 10,
    }),
  );
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="100%" height="100%" fill="white"/>${parts.join('\n')}</svg>`;
  writeFileAtomic(file, await sharp(Buffer.from(svg)).png().toBuffer());
}

async function evalVariant(
  dir: string,
  v: { name: string; sizes: [number, number][] },
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

function pct(p: number): string {
  return `${(100 * p).toFixed(0)}%`;
}

export async function evalCommand(argv: string[]): Promise<number> {
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
  const episodes = int(flags, 'episodes') ?? 50;
  const seed = int(flags, 'seed', 0) ?? 0;
  const demos = int(flags, 'demos');
  const out = resolve(str(flags, 'out') ?? 'out/eval');
  const sizeEpisodes = int(flags, 'size-episodes') ?? 20;
  const probeScenes = int(flags, 'probe-scenes', 8) ?? 200;
  const targetSizes = str(flags, 'target-sizes') === 'none' ? [] : numberList(str(flags, 'target-sizes') ?? '4,16', 'target-sizes');
  for (const t of targetSizes) if (!Number.isInteger(t) || t < 2 || t > 60) throw new UserError(`eval: --target-sizes must be integers from 2 to 60, got ${t}`);
  const [h, w] = DEMO_SIZES[0];
  const all: { key: string; name: string; sizes: [number, number][] }[] = [
    { key: '1x', name: 'single scale', sizes: [[h, w]] },
    {
      key: '1x,2x',
      name: 'S² 1x,2x',
      sizes: [
        [h, w],
        [2 * h, 2 * w],
      ],
    },
    {
      key: '1x,2x,3x',
      name: 'S² 1x,2x,3x',
      sizes: [
        [h, w],
        [2 * h, 2 * w],
        [3 * h, 3 * w],
      ],
    },
  ];
  const chosen = (str(flags, 'variants') ?? all.map((v) => v.key).join(';')).split(';');
  for (const c of chosen)
    if (!all.some((v) => v.key === c)) throw new UserError(`eval: --variants takes ${all.map((v) => v.key).join(' ; ')} separated by ';', got '${c}'`);
  const variants = all.filter((v) => chosen.includes(v.key));
  const log = (l: string) => console.log(l);
  const slug = (s: string) => s.replace(/[^a-z0-9]+/gi, '_');
  const rows: EvalRow[] = [];
  for (const v of variants)
    rows.push(await evalVariant(join(out, slug(v.name)), v, { episodes, seed, demos, targetSizePx: SIM_DEFAULTS.targetSizePx, probeScenes, log }));
  const sweep: EvalRow[] = [];
  for (const t of [...new Set([...targetSizes, SIM_DEFAULTS.targetSizePx])].sort((a, b) => a - b)) {
    for (const v of variants.filter((x) => x.sizes.length <= 2)) {
      if (t === SIM_DEFAULTS.targetSizePx && sizeEpisodes === episodes) sweep.push(rows.find((r) => r.name === v.name)!);
      else sweep.push(await evalVariant(join(out, `${slug(v.name)}_${t}px`), v, { episodes: sizeEpisodes, seed, demos, targetSizePx: t, probeScenes, log }));
    }
  }
  const recipe = { ...DEMO_RECIPE, ...(demos !== undefined ? { episodes: demos } : {}) };
  console.log(
    `\nclosed-loop evaluation: ${episodes} episodes per variant (seeds ${seed}…${seed + episodes - 1}); ${recipe.episodes} expert demonstrations, ${recipe.framesPerEpisode} frames from each of the first ${recipe.perceptionEpisodes}; ` +
      `backbone of k-means filters pretrained without labels; ${rows[0].head} head; keypoint checked on ${rows[0].probe.tested} held-out scenes`,
  );
  const header =
    'variant        target  success        95% interval   mean final distance  features/frame  ms/frame  keypoint on target  95% interval  median error';
  const line = (r: EvalRow) =>
    [
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
  console.log(header);
  for (const r of rows) console.log(line(r));
  if (sweep.length > 0) {
    console.log(`\nby target size (${sizeEpisodes} episodes each; distractors scale with the target, success radius unchanged):`);
    console.log(header);
    for (const r of sweep) console.log(line(r));
  }
  mkdirSync(out, { recursive: true });
  const png = join(out, 'eval.png');
  await evalChart(png, rows, sweep, episodes);
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
  writeFileAtomic(join(out, 'eval.json'), JSON.stringify({ recipe, pretrain: DEMO_PRETRAIN, variants: rows.map(json), targetSizes: sweep.map(json) }, null, 2));
  console.log(`chart: ${png}\nnumbers: ${join(out, 'eval.json')}`);
  return 0;
}

/** For tests: the eval table's numbers from eval.json. */
export function readEval(dir: string): { name: string; success: number; meanDistance: number }[] {
  return (JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8')) as { variants: { name: string; success: number; meanDistance: number }[] }).variants;
}
