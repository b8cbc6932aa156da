// `s2-policy fit`: a policy head (linear ridge probe, keypoint, detector or behaviour cloning) from a folder of demonstrations.
import { UserError } from '../errors.js';
import { policyPaths } from '../policy/fit.js';
import { BC_RECIPES, fitHead, HEAD_KINDS, type BcRecipe, type HeadKind } from '../run/fit.js';
import type { Command } from './command.js';
import { int, numberList, parseFlags, required, str, type Flags } from './args.js';
import { claimOutputs } from './output.js';

const FIT_HELP = `usage: s2-policy fit --data DIR --out policy.onnx [--head linear|keypoint|detector|bc] [--recipe hindsight|end-to-end] [--chunk T] [--lambdas 0.1,1,10] [--epochs N] [--seed S] [--force]
       [--rate-hz 20] [--frame-period-ms P] [--processing-ms M]
       DIR holds features.npy, actions.npy and optionally state.npy and episodes.npy (from 'sim collect' or 'extract');
       --head detector: features.npy, keypoints.npy, episodes.npy and controller/{keypoints,state,actions}.npy ('sim collect --head detector');
       --head bc: behaviour cloning from demonstrations alone (no labels) on S² maps pooled as tokens from a ConvNet
       ('sim collect --head bc', or 'extract' with features.pool: tokens), optionally frame_of.npy and episodes.npy;
       --recipe hindsight (default): reaching episodes; the arm's image position self-calibrated from the frames, a keypoint label where each
       episode's arm comes to rest, the detector head trained on them (--epochs default 15); its model outputs 'actions' and 'keypoint';
       --recipe end-to-end: keypoint maps and an MLP trained on the actions alone (--epochs default 30, --seed default 17); outputs 'actions'
       and 'keypoints'. Set policy.output: actions for either.
       The default chunk covers the slowest camera's period plus processing time at the control rate.`;

function positiveNumber(flags: Flags, name: string): number | undefined {
  const text = str(flags, name);
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < 0 || (name === 'rate-hz' && v === 0))
    throw new UserError(`fit: --${name} must be a number ${name === 'rate-hz' ? '> 0' : '≥ 0'}, got '${text}'`);
  return v;
}

export const fitCommand: Command = {
  name: 'fit',
  summary: 'a policy head (linear ridge probe, keypoint, detector or behaviour cloning) from demonstrations (sim collect or extract)',
  help: FIT_HELP,
  writes: '--out',
  run: async (argv) => {
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
      seed: { type: 'string' },
      recipe: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
    if (flags.help) {
      console.log(FIT_HELP);
      return 0;
    }
    const data = required(flags, 'data', 'fit');
    const out = required(flags, 'out', 'fit');
    const head = str(flags, 'head') ?? 'linear';
    if (!HEAD_KINDS.includes(head as HeadKind)) throw new UserError(`fit: --head must be ${HEAD_KINDS.join(', ')}, got '${head}'`);
    const paths = policyPaths(out);
    claimOutputs(
      'fit',
      [
        { path: paths.model, what: '--out', kind: 'file' },
        { path: paths.stats, what: 'the statistics of --out', kind: 'file' },
      ],
      // The model usually goes into the --data folder (README), so --data is not an input that refuses it.
      Boolean(flags.force),
    );
    const recipe = str(flags, 'recipe');
    if (recipe !== undefined && (head !== 'bc' || !BC_RECIPES.includes(recipe as BcRecipe)))
      throw new UserError(
        head !== 'bc' ? `fit: --recipe is for --head bc, not --head ${head}` : `fit: --recipe must be ${BC_RECIPES.join(' or ')}, got '${recipe}'`,
      );
    const lambdas = str(flags, 'lambdas');
    const r = await fitHead({
      data,
      out,
      head: head as HeadKind,
      chunk: int(flags, 'chunk'),
      lambdas: lambdas === undefined ? undefined : numberList(lambdas, 'lambdas'),
      epochs: int(flags, 'epochs'),
      seed: int(flags, 'seed', 0),
      recipe: recipe as BcRecipe | undefined,
      log: (l) => console.error(`fit: ${l}`),
      rateHz: positiveNumber(flags, 'rate-hz'),
      framePeriodMs: positiveNumber(flags, 'frame-period-ms'),
      processingMs: positiveNumber(flags, 'processing-ms'),
      onChunk: (c) =>
        console.log(
          `chunk ${c.chunk}: covers a frame period of ${c.periodMs.toFixed(1)} ms plus ${c.processingMs.toFixed(1)} ms of processing at ${c.rateHz} Hz (set --chunk, --rate-hz, --frame-period-ms or --processing-ms to change it)`,
        ),
    });
    const shape = `${r.featureDim} features + ${r.stateDim} state → ${r.chunk}×${r.actionDim} actions`;
    if (r.head === 'linear') {
      console.log(`λ = ${r.lambda} (${r.selection.note})`);
      for (const s of r.scores)
        console.log(`  λ ${String(s.lambda).padStart(8)}  held-out MSE ${s.mse.toFixed(4)}${s.lambda === r.lambda ? '  <- chosen' : ''}`);
      console.log(`  mean prediction  held-out MSE ${r.selection.meanMse.toFixed(4)}`);
      for (const w of r.warnings) console.error(`s2-policy: warning: fit: ${w}`);
      console.log(`wrote ${r.files.model} and ${r.files.stats}: ${shape}`);
    } else if (r.head === 'keypoint') {
      console.log(`keypoint head: training MSE ${r.trainMse.toFixed(4)} (normalised units) in ${r.seconds.toFixed(1)} s`);
      console.log(`wrote ${r.files.model} and ${r.files.stats}: ${shape}`);
    } else if (r.head === 'bc' && r.recipe === 'hindsight') {
      const c = r.calibration;
      console.log(
        `bc head (hindsight): ${r.rows} rows (${r.frames} frames, ${r.episodes} episode${r.episodes === 1 ? '' : 's'}); the arm's tip self-calibrated on ${c.inliers} of ${c.frames} frames (median ${c.medianResidual.toFixed(2)} cells off the map)`,
      );
      console.log(
        `detector on ${r.detector.frames} frames: held-out error against the labels median ${r.detector.medianCells.toFixed(2)} cells, ${(100 * r.detector.withinOne).toFixed(0)}% within one cell, temperature ${r.detector.temperature}; controller: ${r.controller.rows} rows, training MSE ${r.controller.trainMse.toFixed(4)} (normalised units); ${r.seconds.toFixed(1)} s`,
      );
      console.log(`wrote ${r.files.model} and ${r.files.stats}: ${shape} (outputs actions, keypoint)`);
    } else if (r.head === 'bc') {
      console.log(
        `bc head: ${r.rows} rows (${r.frames} frames, ${r.episodes} episode${r.episodes === 1 ? '' : 's'}); epoch ${r.bestEpoch} of ${r.epochsRun} kept: training MSE ${r.trainMse.toFixed(4)}, ${
          r.heldOutRows > 0
            ? `held-out ${r.heldOutMse.toFixed(4)} on ${r.heldOutRows} rows (the mean chunk: ${r.heldOutMeanMse.toFixed(4)})`
            : 'nothing held out (fewer than 10 episodes: the epoch of lowest training error is kept)'
        }, ${r.seconds.toFixed(1)} s (standardised units)`,
      );
      console.log(`wrote ${r.files.model} and ${r.files.stats}: ${shape} (outputs actions, keypoints)`);
    } else {
      const d = r.detector;
      console.log(
        `detector fitted in ${d.seconds.toFixed(1)} s on ${r.frames} frames: held-out keypoint error median ${d.medianCells.toFixed(2)} cells, ${(100 * d.withinOne).toFixed(0)}% within one cell, temperature ${d.temperature}`,
      );
      console.log(
        `controller: ${r.controller.rows} rows, training MSE ${r.controller.trainMse.toFixed(4)} (normalised units), ${r.controller.seconds.toFixed(1)} s`,
      );
      console.log(`wrote ${r.files.model} and ${r.files.stats}: ${shape} (outputs actions, keypoint)`);
    }
    return 0;
  },
};
