// Path plots: end-effector paths of several episodes drawn over a scene, with a legend, written as a PNG.
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
  /** Legend text, e.g. "seed 3: success, 0.008 m"; default "episode i: success|failure". */
  label?: string;
}

/** Distinct colours, none close to the table's browns or the objects' pure colours (Kelly-like). */
export const PATH_COLOURS: readonly Rgb[] = [
  [0, 114, 178],
  [230, 0, 126],
  [0, 158, 115],
  [86, 30, 180],
  [0, 190, 220],
  [140, 90, 0],
  [250, 60, 0],
  [20, 20, 20],
  [120, 200, 40],
  [200, 0, 0],
  [255, 140, 200],
  [60, 60, 160],
];

/** Width of the legend panel to the right of the scene, pixels. */
export const LEGEND_WIDTH = 250;

function hex([r, g, b]: Rgb): string {
  return `#${[r, g, b].map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A cross of two thick strokes (failure) centred at (u, v). */
function cross(c: Canvas, u: number, v: number, r: number, rgb: Rgb): void {
  fillCapsule(c, u - r, v - r, u + r, v + r, 1.6, rgb);
  fillCapsule(c, u - r, v + r, u + r, v - r, 1.6, rgb);
}

/**
 * Draws `sim`'s current scene (table and objects, no arm) washed out so the paths stand out, then each path in its own
 * colour: a ring around its own target, a white-centred dot at its start, and at its end a filled dot (success) or a
 * cross (failure). A legend panel on the right names each path's colour and outcome. Returns `file`.
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
  for (let i = 0; i < data.length; i++) data[i] = Math.round(data[i] * 0.45 + 135);
  const c: Canvas = { data, width: frame.width, height: frame.height };
  const ring = sim.options.targetSizePx / 2;
  paths.forEach((p, k) => {
    const rgb = PATH_COLOURS[k % PATH_COLOURS.length];
    if (p.target) fillRing(c, p.target[0], p.target[1], ring + 5, ring + 2.5, rgb, data);
    for (let i = 1; i < p.points.length; i++) {
      const [a, b] = [p.points[i - 1], p.points[i]];
      fillCapsule(c, a[0], a[1], b[0], b[1], 1.3, rgb);
    }
    if (p.points.length > 0) {
      const [s, e] = [p.points[0], p.points[p.points.length - 1]];
      fillDisc(c, s[0], s[1], 4, rgb);
      fillDisc(c, s[0], s[1], 2, [255, 255, 255]);
      if (p.success) fillDisc(c, e[0], e[1], 3.5, rgb);
      else cross(c, e[0], e[1], 5, rgb);
    }
  });
  const rows = paths
    .map((p, k) => {
      const y = 44 + k * 22;
      const label = p.label ?? `episode ${k + 1}: ${p.success ? 'success' : 'failure'}`;
      const mark = p.success ? '●' : '✕';
      return `<rect x="12" y="${y - 11}" width="22" height="6" fill="${hex(PATH_COLOURS[k % PATH_COLOURS.length])}"/>
<text x="40" y="${y - 3}" font-size="13" font-family="sans-serif" fill="#222">${mark} ${escapeXml(label)}</text>`;
    })
    .join('\n');
  const legend = `<svg xmlns="http://www.w3.org/2000/svg" width="${LEGEND_WIDTH}" height="${c.height}"><rect width="100%" height="100%" fill="white"/>
<text x="12" y="20" font-size="14" font-weight="bold" font-family="sans-serif" fill="#222">end-effector paths</text>
${rows}
<text x="12" y="${c.height - 30}" font-size="11" font-family="sans-serif" fill="#444">ring: the episode's target; ○ start</text>
<text x="12" y="${c.height - 14}" font-size="11" font-family="sans-serif" fill="#444">● reached (success)   ✕ ended (failure)</text></svg>`;
  const scene = await sharp(data, { raw: { width: c.width, height: c.height, channels: 3 } })
    .png()
    .toBuffer();
  const png = await sharp({ create: { width: c.width + LEGEND_WIDTH, height: c.height, channels: 3, background: '#ffffff' } })
    .composite([
      { input: scene, left: 0, top: 0 },
      { input: Buffer.from(legend), left: c.width, top: 0 },
    ])
    .removeAlpha()
    .png()
    .toBuffer();
  writeFileAtomic(file, png);
  return file;
}
