// `s2-policy sim collect` (expert demonstrations as .npy for fit) and `s2-policy sim models` (the demo models and a
// ROS 2 parameter file for launch/sim.launch.py).
import { UserError } from '../errors.js';
import { simCollect } from '../run/sim-collect.js';
import { writeNpy } from '../io/npy.js';
import { presetNormalization } from '../image/normalize.js';
import { simFrames } from '../sim/frames.js';
import { writeSimModels } from '../run/sim-models.js';
import type { Command } from './command.js';
import { int, parseFlags, required, sizeList, str } from './args.js';
import { claimOutputs } from './output.js';
import { progressPrinter } from './progress.js';

const COLLECT_HELP = `usage: s2-policy sim collect --out DIR [--episodes N] [--seed S] [--img-sizes 240x320,480x640] [--head linear|detector|bc] [--frames N] [--frame-every K] [--force]
       --head detector: 3 frames from each of --frames episodes (S² map, keypoint labels) + controller rows from every episode
       --head bc: what a real arm's demonstrations hold (every step's joint state and command, the camera's S² map pooled
       as tokens every --frame-every steps (default 1), frame_of.npy naming each step's latest map); no labels`;
const FRAMES_HELP = `usage: s2-policy sim frames --out frames.npy [--count 32] [--size 224 | HxW] [--seed S] [--normalization imagenet|clip|none] [--force]
       camera frames of expert episodes as a float32 N×3×H×W batch, ingested and normalised as the node feeds the backbone
       (calibration or held-out frames for scripts/quantize_int8.py and benchmarks)`;
const MODELS_HELP = `usage: s2-policy sim models --out DIR [--force]   (demo models + a ROS 2 parameter file for launch/sim.launch.py)`;

export const simCollectCommand: Command = {
  name: 'sim collect',
  summary: "expert demonstrations in the simulation, as features/state/actions .npy (or the detector head's data)",
  help: COLLECT_HELP,
  writes: '--out',
  run: async (argv) => {
    const flags = parseFlags('sim collect', argv, {
      out: { type: 'string' },
      episodes: { type: 'string' },
      seed: { type: 'string' },
      'img-sizes': { type: 'string' },
      head: { type: 'string' },
      frames: { type: 'string' },
      'frame-every': { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
    if (flags.help) {
      console.log(COLLECT_HELP);
      return 0;
    }
    const out = required(flags, 'out', 'sim collect');
    const head = str(flags, 'head') ?? 'linear';
    if (head !== 'linear' && head !== 'detector' && head !== 'bc') throw new UserError(`sim collect: --head must be linear, detector or bc, got '${head}'`);
    if (head !== 'bc' && str(flags, 'frame-every') !== undefined) throw new UserError('sim collect: --frame-every is for --head bc');
    claimOutputs('sim collect', [{ path: out, what: '--out', kind: 'folder' }], Boolean(flags.force));
    const sizesText = str(flags, 'img-sizes');
    const sizes =
      sizesText === undefined ? undefined : sizeList(sizesText, 'img-sizes').map((s): [number, number] => (typeof s === 'number' ? [s, s] : [s[0], s[1]]));
    const bars = {
      episodes: progressPrinter('sim collect: expert episodes', 'episodes'),
      frames: progressPrinter('sim collect: episodes with frames', 'episodes'),
    };
    const r = await simCollect({
      out,
      head,
      episodes: int(flags, 'episodes'),
      seed: int(flags, 'seed', 0),
      sizes,
      frames: int(flags, 'frames'),
      frameEvery: int(flags, 'frame-every'),
      onProgress: (stage, done, total) => bars[stage](done, total),
      log: (l) => console.error(`sim collect: ${l}`),
    });
    if (r.head === 'linear') console.log(`wrote ${r.rows} steps of ${r.episodes} expert episodes (${r.featureDim} features each) to ${out}`);
    else if (r.head === 'bc')
      console.log(`wrote ${r.rows} steps and ${r.frames} S² maps (${r.featureDim} features each) of ${r.episodes} expert episodes to ${out}`);
    else
      console.log(
        `wrote ${r.frames} frames (${r.featureDim} features each, keypoint labels) and ${r.controllerRows} controller rows of ${r.episodes} expert episodes to ${out}`,
      );
    return 0;
  },
};

export const simModelsCommand: Command = {
  name: 'sim models',
  summary: 'the demo models and a ROS 2 parameter file for launch/sim.launch.py',
  help: MODELS_HELP,
  writes: '--out',
  run: async (argv) => {
    const flags = parseFlags('sim models', argv, { out: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
    if (flags.help) {
      console.log(MODELS_HELP);
      return 0;
    }
    const out = required(flags, 'out', 'sim models');
    claimOutputs('sim models', [{ path: out, what: '--out', kind: 'folder' }], Boolean(flags.force));
    const r = await writeSimModels(out, (l) => console.log(l));
    console.log(`wrote ${r.paramsFile}`);
    return 0;
  },
};

export const simFramesCommand: Command = {
  name: 'sim frames',
  summary: 'simulated camera frames as a normalised N×3×H×W .npy (INT8 calibration, benchmarks)',
  help: FRAMES_HELP,
  writes: '--out',
  run: async (argv) => {
    const flags = parseFlags('sim frames', argv, {
      out: { type: 'string' },
      count: { type: 'string' },
      size: { type: 'string' },
      seed: { type: 'string' },
      normalization: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
    if (flags.help) {
      console.log(FRAMES_HELP);
      return 0;
    }
    const out = required(flags, 'out', 'sim frames');
    const count = int(flags, 'count') ?? 32;
    const sizes = sizeList(str(flags, 'size') ?? '224', 'size');
    if (sizes.length !== 1) throw new UserError(`sim frames: --size takes one size (224 or HxW), got '${str(flags, 'size')}'`);
    const s = sizes[0];
    const size: [number, number] = typeof s === 'number' ? [s, s] : [s[0], s[1]];
    const normalization = presetNormalization(str(flags, 'normalization') ?? 'imagenet', 'sim frames: --normalization');
    claimOutputs('sim frames', [{ path: out, what: '--out', kind: 'file' }], Boolean(flags.force));
    const t = await simFrames({ count, seed: int(flags, 'seed', 0) ?? 1000, size, normalization });
    writeNpy(out, t);
    console.log(`wrote ${out}: float32 (${t.dims.join(', ')}), ${str(flags, 'normalization') ?? 'imagenet'} normalisation`);
    return 0;
  },
};
