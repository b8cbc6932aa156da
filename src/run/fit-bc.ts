// Fitting the behaviour-cloning head from a folder of demonstrations: features.npy (S² maps pooled as `tokens`),
// state.npy, actions.npy, and optionally episodes.npy and frame_of.npy, with the map's grid in index.json (as
// `s2-policy extract` or the simulation's recorders write it); the head and its statistics written atomically.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { readNpy, writeArray } from '../io/npy.js';
import type { Tensor } from '../s2/tensor.js';
import { fitBc, writeBcPolicy, type BcData, type BcFit, type BcOptions } from '../policy/bc.js';
import { withAtomicDir, writeFileAtomic } from '../io/atomic.js';

/** The folder's files. */
export const BC_FILES = {
  features: 'features.npy',
  state: 'state.npy',
  actions: 'actions.npy',
  episodes: 'episodes.npy',
  frameOf: 'frame_of.npy',
  index: 'index.json',
} as const;

/**
 * Writes demonstrations as a folder readBcFolder reads (replaced whole, atomically): the .npy files and an
 * index.json with the map's grid and `extra` (who wrote it, seeds, …).
 */
export async function writeBcFolder(dir: string, d: BcData, extra: Record<string, unknown> = {}): Promise<void> {
  await withAtomicDir(dir, (tmp) => writeBcFiles(tmp, d, extra), 'the bc demonstrations folder');
}

/** The files of writeBcFolder, into an existing folder (one that an atomic writer renames into place). */
export function writeBcFiles(dir: string, d: BcData, extra: Record<string, unknown> = {}): void {
  writeArray(join(dir, BC_FILES.features), [d.frames, d.channels * d.height * d.width], d.features);
  writeArray(join(dir, BC_FILES.state), [d.rows, d.stateDim], d.state);
  writeArray(join(dir, BC_FILES.actions), [d.rows, d.actionDim], d.actions);
  writeArray(join(dir, BC_FILES.episodes), [d.rows], Float32Array.from(d.episodes));
  if (d.frameOf) writeArray(join(dir, BC_FILES.frameOf), [d.rows], Float32Array.from(d.frameOf));
  const index = { ...extra, rows: d.rows, frames: d.frames, pool: 'tokens', channels: d.channels, grid_height: d.height, grid_width: d.width };
  writeFileAtomic(join(dir, BC_FILES.index), JSON.stringify(index, null, 2));
}

/** What index.json may say about the map (extract: features.pooling and s2.grid/channels; the sim recorders: pool, grid_height, grid_width, channels). */
interface MapIndex {
  pool?: string;
  features?: { pooling?: string; cameras?: string[] };
  grid_height?: number;
  grid_width?: number;
  channels?: number;
  s2?: { grid?: [number, number]; channels?: number; output_shape?: string };
}

/** The grid (channels × height × width) of the folder's features, from index.json; errors name the file and key. */
export function mapShape(dir: string, featureDim: number): { channels: number; height: number; width: number } {
  const file = join(dir, 'index.json');
  if (!existsSync(file)) throw new UserError(`${file}: no such file; the bc head needs the S² map's grid (s2.grid or grid_height/grid_width)`);
  let index: MapIndex;
  try {
    index = JSON.parse(readFileSync(file, 'utf8')) as MapIndex;
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  const pool = index.pool ?? index.features?.pooling;
  if (pool !== 'tokens')
    throw new UserError(
      `${file}: the bc head needs features pooled as tokens (features.pool: tokens), index.json says ${pool === undefined ? 'nothing' : `'${pool}'`}`,
    );
  if (index.s2?.output_shape !== undefined && index.s2.output_shape !== 'bchw')
    throw new UserError(`${file}: the bc head needs a bchw (ConvNet) backbone's map, s2.output_shape is '${index.s2.output_shape}'`);
  const height = index.grid_height ?? index.s2?.grid?.[0];
  const width = index.grid_width ?? index.s2?.grid?.[1];
  if (!Number.isInteger(height) || !Number.isInteger(width) || height! < 1 || width! < 1)
    throw new UserError(`${file}: s2.grid (or grid_height and grid_width) must give the map's height and width`);
  const L = height! * width!;
  // extract concatenates the cameras' maps (each C × H × W, channel-major): as one map, they stack on channels.
  const cameras = index.features?.cameras?.length ?? 1;
  const perCamera = index.channels ?? index.s2?.channels;
  const channels = perCamera !== undefined ? perCamera * cameras : featureDim / L;
  if (!Number.isInteger(channels) || channels * L !== featureDim)
    throw new UserError(
      `${join(dir, 'features.npy')}: ${featureDim} values per row are not ${channels} channels${cameras > 1 ? ` (${cameras} cameras)` : ''} × the ${height}×${width} grid of ${file}`,
    );
  return { channels, height: height!, width: width! };
}

function rows2(t: Tensor, file: string, rows?: number): [number, number] {
  if (t.dims.length !== 2) throw new UserError(`${file}: expected a 2-D array [rows, values], got shape [${t.dims.join(', ')}]`);
  if (rows !== undefined && t.dims[0] !== rows) throw new UserError(`${file}: ${t.dims[0]} rows, state.npy and actions.npy have ${rows}`);
  return [t.dims[0], t.dims[1]];
}

function ids(t: Tensor, file: string, rows: number, what: string): Int32Array {
  if (t.dims.length !== 1 || t.dims[0] !== rows) throw new UserError(`${file}: expected [${rows}] (${what} of each row), got shape [${t.dims.join(', ')}]`);
  const out = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const v = t.data[i];
    if (!Number.isInteger(v) || v < 0) throw new UserError(`${file}: value ${i} is ${v}, expected a whole number ≥ 0`);
    out[i] = v;
  }
  return out;
}

/**
 * The folder's demonstrations as BcData. Rows are control steps (state.npy and actions.npy, one row each); features
 * hold one S² map per frame: one per row, or fewer with frame_of.npy giving each row's frame. Without episodes.npy
 * the folder is one episode (a recording), and early stopping holds out its last rows.
 */
export function readBcFolder(dir: string): BcData {
  const file = (name: string) => join(dir, name);
  const features = readNpy(file(BC_FILES.features));
  const state = readNpy(file(BC_FILES.state));
  const actions = readNpy(file(BC_FILES.actions));
  const [rows, stateDim] = rows2(state, file(BC_FILES.state));
  const [, actionDim] = rows2(actions, file(BC_FILES.actions), rows);
  const [frames, per] = rows2(features, file(BC_FILES.features));
  const shape = mapShape(dir, per);
  const episodes = existsSync(file(BC_FILES.episodes))
    ? ids(readNpy(file(BC_FILES.episodes)), file(BC_FILES.episodes), rows, 'the episode')
    : new Int32Array(rows);
  const frameOf = existsSync(file(BC_FILES.frameOf)) ? ids(readNpy(file(BC_FILES.frameOf)), file(BC_FILES.frameOf), rows, 'the frame') : undefined;
  if (frameOf) {
    const bad = frameOf.findIndex((f) => f >= frames);
    if (bad >= 0) throw new UserError(`${file(BC_FILES.frameOf)}: row ${bad} names frame ${frameOf[bad]}, ${file(BC_FILES.features)} has ${frames}`);
  } else if (frames !== rows)
    throw new UserError(`${file(BC_FILES.features)}: ${frames} rows, state.npy has ${rows}; give ${BC_FILES.frameOf} when rows share frames`);
  return { features: features.data, frames, ...shape, state: state.data, actions: actions.data, episodes, frameOf, rows, stateDim, actionDim };
}

export interface FitBcFolderOptions extends BcOptions {
  /** The folder of demonstrations. */
  data: string;
  /** Model path or folder (policy.onnx + policy.stats.json inside), as fit's --out. */
  out: string | { model: string; stats?: string };
}

/** `fit --head bc`: reads the folder, fits the head, writes the model (outputs 'actions' and 'keypoints') and its statistics. */
export function fitBcFolder(o: FitBcFolderOptions): {
  fit: BcFit;
  files: { model: string; stats: string };
  data: { rows: number; frames: number; episodes: number };
} {
  const { data: dir, out, ...options } = o;
  const d = readBcFolder(dir);
  const fit = fitBc(d, options);
  const files = writeBcPolicy(out, fit.params);
  return { fit, files, data: { rows: d.rows, frames: d.frames, episodes: new Set(d.episodes).size } };
}
