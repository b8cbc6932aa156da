// Path plots: end-effector paths of several episodes drawn over a scene, written as a PNG.
import { writeFileAtomic } from '../io/atomic.js';
import sharp from 'sharp';
import { UserError } from '../errors.js';
import { fillCapsule, fillDisc, fillRing, type Canvas, type Rgb } from './raster.js';
import type { TabletopSim } from './tabletop.js';

export interface EpisodePath {
  /** End-effector pixel coordinates [u, v], one per step. */
  points: readonly (readonly [number, number])[];
  success: boolean;
  /** The episode's target centre in pixels, marked with a ring in the path's colour (for episodes of other scenes). */
  target?: readonly [number, number];
}

const SUCCESS: Rgb = [0, 170, 40];
const FAILURE: Rgb = [225, 0, 0];

/**
 * Draws `sim`'s current scene (table, target, distractors; no arm), washed out so the paths stand out, then each
 * path: green for success, red for failure, a white-centred dot at its start and a filled dot at its end.
 * Returns `file`.
 */
export async function renderEpisodesPng(file: string, sim: TabletopSim, paths: readonly EpisodePath[]): Promise<string> {
  paths.forEach((p, k) => {
    p.points.forEach((pt, i) => {
      if (pt.length !== 2 || !Number.isFinite(pt[0]) || !Number.isFinite(pt[1])) {
        throw new UserError(`renderEpisodesPng: paths[${k}].points[${i}] must be a finite [u, v], got [${Array.from(pt).join(', ')}]`);
      }
    });
  });
  const frame = sim.render({ arm: false });
  const data = frame.data as Uint8Array;
  for (let i = 0; i < data.length; i++) data[i] = Math.round(data[i] * 0.55 + 110);
  const c: Canvas = { data, width: frame.width, height: frame.height };
  const ring = sim.options.targetSizePx / 2;
  for (const p of paths) {
    const rgb = p.success ? SUCCESS : FAILURE;
    if (p.target) fillRing(c, p.target[0], p.target[1], ring + 4, ring + 2, rgb, data);
    for (let i = 1; i < p.points.length; i++) {
      const [a, b] = [p.points[i - 1], p.points[i]];
      fillCapsule(c, a[0], a[1], b[0], b[1], 1.2, rgb);
    }
    if (p.points.length > 0) {
      const [s, e] = [p.points[0], p.points[p.points.length - 1]];
      fillDisc(c, s[0], s[1], 4, rgb);
      fillDisc(c, s[0], s[1], 2, [255, 255, 255]);
      fillDisc(c, e[0], e[1], 3.5, rgb);
    }
  }
  const png = await sharp(data, { raw: { width: c.width, height: c.height, channels: 3 } }).png().toBuffer();
  writeFileAtomic(file, png);
  return file;
}
