// The tabletop scene of one episode: camera geometry, the seeded layout (target, distractors, initial arm pose) and
// its background image (wood-grain table, objects), rendered once per episode and reused by every frame.
import { UserError } from '../errors.js';
import { inverseKinematics, forwardKinematics, type Vec2 } from './kinematics.js';
import type { ResolvedSimOptions } from './options.js';
import { fillDisc, fillSquare, type Canvas, type Rgb } from './raster.js';
import { Rng, hash32 } from './random.js';

/** The table in the arm's base frame (metres; x forward, away from the base; y to the left). */
export const TABLE = Object.freeze({ xMin: -0.05, xMax: 0.55, yMin: -0.4, yMax: 0.4 });

/** Radius of the arm's base disc (metres); nothing is placed under it. */
export const BASE_RADIUS = 0.03;

export const COLOURS = Object.freeze({
  red: [210, 40, 45] as Rgb,
  orange: [232, 118, 34] as Rgb,
  blue: [45, 85, 200] as Rgb,
  green: [40, 160, 75] as Rgb,
  yellow: [232, 200, 52] as Rgb,
  white: [236, 234, 224] as Rgb,
  purple: [128, 62, 160] as Rgb,
});
export type ColourName = keyof typeof COLOURS;

/** The target is always a red disc; red also appears on decoys of another shape or size. */
export const TARGET_COLOUR: ColourName = 'red';
const FLOOR: Rgb = [88, 88, 94];

/**
 * The overhead camera: orthographic, looking straight down with the image's up direction along +x. The table is
 * scaled to fit the image and centred; any margin shows the floor.
 */
export class CameraGeometry {
  /** Pixels per metre. */
  readonly scale: number;
  private readonly cx = (TABLE.xMin + TABLE.xMax) / 2;
  private readonly cy = (TABLE.yMin + TABLE.yMax) / 2;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.scale = Math.min(width / (TABLE.yMax - TABLE.yMin), height / (TABLE.xMax - TABLE.xMin));
  }

  /** Continuous pixel coordinates [u, v] (u right, v down) of the table point (x, y). */
  toPixel(x: number, y: number): [number, number] {
    return [this.width / 2 - (y - this.cy) * this.scale, this.height / 2 - (x - this.cx) * this.scale];
  }

  toTable(u: number, v: number): [number, number] {
    return [this.cx + (this.height / 2 - v) / this.scale, this.cy + (this.width / 2 - u) / this.scale];
  }
}

export type ShapeKind = 'circle' | 'square';

export interface SceneObject {
  shape: ShapeKind;
  colour: ColourName;
  /** Centre in the table frame, metres. */
  x: number;
  y: number;
  /** Centre in continuous pixel coordinates. */
  u: number;
  v: number;
  /** Diameter (circle) or side (square) in pixels. */
  sizePx: number;
  /** Rotation of a square, radians. */
  angle: number;
}

/** One board of the wood-grain table texture (pixels). */
export interface WoodPlank {
  top: number;
  tone: Rgb;
  waveA: number;
  waveB: number;
  f1: number;
  f2: number;
  p1: number;
  p2: number;
  period: number;
}

export interface Scene {
  seed: number;
  target: SceneObject;
  distractors: SceneObject[];
  initialJoints: Vec2;
  /** Wood texture parameters, seeded like the rest. */
  planks: WoodPlank[];
}

/** Centre a shape of `size` pixels so that it covers exactly `size` pixels across: pixel centre (odd) or corner (even). */
function snap(p: number, size: number): number {
  return size % 2 === 1 ? Math.floor(p) + 0.5 : Math.round(p);
}

/** Radius of the circle that encloses the object, pixels. */
export function enclosingRadiusPx(o: Pick<SceneObject, 'shape' | 'sizePx'>): number {
  return o.shape === 'circle' ? o.sizePx / 2 : (o.sizePx / 2) * Math.SQRT2;
}

/** Pixels kept free between objects, so that no two touch. */
const GAP_PX = 4;
const MAX_TRIES = 10_000;

/** Lays out the episode of `seed`: same seed, same scene. */
export function generateScene(seed: number, o: ResolvedSimOptions, cam: CameraGeometry): Scene {
  const rng = new Rng(seed);
  const s = cam.scale;
  const [uMin, vMin] = cam.toPixel(TABLE.xMax, TABLE.yMax);
  const [uMax, vMax] = cam.toPixel(TABLE.xMin, TABLE.yMin);
  const [baseU, baseV] = cam.toPixel(0, 0);
  const reach = o.linkLengths[0] + o.linkLengths[1];

  // The target: on the table, clear of the base, and reachable with both joints 0.1 rad inside their limits.
  const d = o.targetSizePx;
  const edge = d / 2 + 0.02 * s;
  let target: SceneObject | undefined;
  for (let k = 0; k < MAX_TRIES && !target; k++) {
    const u = snap(rng.range(uMin + edge, uMax - edge), d);
    const v = snap(rng.range(vMin + edge, vMax - edge), d);
    const [x, y] = cam.toTable(u, v);
    const r = Math.hypot(x, y);
    if (r < BASE_RADIUS + 0.03 || r > reach - 0.01) continue;
    if (inverseKinematics(x, y, o.linkLengths, o.jointLimits, 0.1).length === 0) continue;
    target = { shape: 'circle', colour: TARGET_COLOUR, x, y, u, v, sizePx: d, angle: 0 };
  }
  if (!target) throw new UserError(`sim: linkLengths ${o.linkLengths.join(', ')} with jointLimits leave no reachable target on the table`);

  // The initial pose: joints 0.1 rad inside their limits, end effector over the table and at least 0.15 m from the target.
  let initialJoints: Vec2 | undefined;
  for (let k = 0; k < MAX_TRIES && !initialJoints; k++) {
    const q1 = rng.range(o.jointLimits[0][0] + 0.1, o.jointLimits[0][1] - 0.1);
    const q2 = rng.range(o.jointLimits[1][0] + 0.1, o.jointLimits[1][1] - 0.1);
    const [ex, ey] = forwardKinematics(q1, q2, o.linkLengths).effector;
    const onTable = ex > TABLE.xMin + 0.02 && ex < TABLE.xMax - 0.02 && ey > TABLE.yMin + 0.02 && ey < TABLE.yMax - 0.02;
    if (onTable && Math.hypot(ex - target.x, ey - target.y) >= 0.15) initialJoints = [q1, q2];
  }
  if (!initialJoints) throw new UserError(`sim: linkLengths ${o.linkLengths.join(', ')} leave no start pose over the table`);

  const distractors = placeDistractors(rng, o, cam, target, [uMin, uMax, vMin, vMax], [baseU, baseV]);
  return { seed, target, distractors, initialJoints, planks: woodPlanks(rng, cam, vMin, vMax) };
}

function distractorSpecs(rng: Rng, n: number, d: number): Pick<SceneObject, 'shape' | 'colour' | 'sizePx' | 'angle'>[] {
  const names = Object.keys(COLOURS) as ColourName[];
  const specs: Pick<SceneObject, 'shape' | 'colour' | 'sizePx' | 'angle'>[] = [
    // Decoys first so every scene has them: the target's colour on another shape, the target's size in another colour.
    { shape: 'square', colour: TARGET_COLOUR, sizePx: Math.round(d * rng.pick([1, 1.5])), angle: rng.range(0, Math.PI / 2) },
    { shape: 'circle', colour: rng.pick(['orange', 'purple'] as const), sizePx: d, angle: 0 },
  ];
  while (specs.length < n) {
    const shape: ShapeKind = rng.next() < 0.5 ? 'circle' : 'square';
    const colour = rng.pick(names);
    // A red circle is the target's look: only far larger ones are allowed.
    const factor = shape === 'circle' && colour === TARGET_COLOUR ? rng.pick([2, 3, 4]) : rng.pick([1, 1.5, 2, 3, 4]);
    specs.push({ shape, colour, sizePx: Math.max(2, Math.round(d * factor)), angle: shape === 'square' ? rng.range(0, Math.PI / 2) : 0 });
  }
  return specs.slice(0, n);
}

function placeDistractors(
  rng: Rng,
  o: ResolvedSimOptions,
  cam: CameraGeometry,
  target: SceneObject,
  [uMin, uMax, vMin, vMax]: number[],
  [baseU, baseV]: number[],
): SceneObject[] {
  const n = rng.int(o.distractors[0], o.distractors[1]);
  const placed: SceneObject[] = [];
  const baseR = BASE_RADIUS * cam.scale;
  for (const spec of distractorSpecs(rng, n, o.targetSizePx)) {
    const r = enclosingRadiusPx(spec);
    const m = r + 0.01 * cam.scale;
    let ok = false;
    for (let k = 0; k < MAX_TRIES && !ok; k++) {
      const u = rng.range(uMin + m, uMax - m);
      const v = rng.range(vMin + m, vMax - m);
      ok =
        Math.hypot(u - baseU, v - baseV) > r + baseR + GAP_PX &&
        [target, ...placed].every((p) => Math.hypot(u - p.u, v - p.v) > r + enclosingRadiusPx(p) + GAP_PX);
      if (ok) {
        const [x, y] = cam.toTable(u, v);
        placed.push({ ...spec, x, y, u, v });
      }
    }
    if (!ok) throw new UserError(`sim: cannot place ${n} distractors without overlap; lower distractors or targetSizePx`);
  }
  return placed;
}

function woodPlanks(rng: Rng, cam: CameraGeometry, vMin: number, vMax: number): WoodPlank[] {
  const planks: WoodPlank[] = [];
  const s = cam.scale;
  let top = vMin - rng.range(0, 0.08 * s);
  const shade = rng.range(0.85, 1.1);
  while (top < vMax) {
    const t = shade * rng.range(0.88, 1.12);
    planks.push({
      top,
      tone: [Math.min(255, 178 * t), Math.min(255, 128 * t), Math.min(255, 80 * t)],
      waveA: rng.range(2, 0.012 * s),
      waveB: rng.range(1, 0.004 * s),
      f1: rng.range(0.5, 2) / (0.1 * s),
      f2: rng.range(2, 6) / (0.1 * s),
      p1: rng.range(0, 2 * Math.PI),
      p2: rng.range(0, 2 * Math.PI),
      period: rng.range(0.006, 0.012) * s,
    });
    top += rng.range(0.08, 0.12) * s;
  }
  return planks;
}

const LUT_SIZE = 1024;
const SIN_LUT = Float32Array.from({ length: LUT_SIZE }, (_, k) => Math.sin((2 * Math.PI * k) / LUT_SIZE));

/** The table, its objects and the floor around it: everything in the frame but the arm. */
export function renderBackground(scene: Scene, cam: CameraGeometry): Uint8Array {
  const { width: w, height: h } = cam;
  const data = new Uint8Array(w * h * 3);
  const canvas: Canvas = { data, width: w, height: h };
  const [uMin, vMin] = cam.toPixel(TABLE.xMax, TABLE.yMax);
  const [uMax, vMax] = cam.toPixel(TABLE.xMin, TABLE.yMin);
  const i0 = Math.max(0, Math.round(uMin));
  const i1 = Math.min(w, Math.round(uMax));
  const j0 = Math.max(0, Math.round(vMin));
  const j1 = Math.min(h, Math.round(vMax));
  for (let o = 0; o < data.length; o += 3) {
    data[o] = FLOOR[0];
    data[o + 1] = FLOOR[1];
    data[o + 2] = FLOOR[2];
  }
  // Writes through a clamped view round and saturate in one step (several times faster than Math.round and clamping).
  const clamped = new Uint8ClampedArray(data.buffer, data.byteOffset, data.length);
  const wave = new Float32Array(w);
  const seedMix = hash32(scene.seed, 0x5eed);
  let k = -1;
  let plank = scene.planks[0];
  for (let j = j0; j < j1; j++) {
    // Planks run across the image, each with its own tone and wavy grain, and a dark seam on its first row.
    while (k + 1 < scene.planks.length && scene.planks[k + 1].top <= j) {
      plank = scene.planks[++k];
      for (let i = i0; i < i1; i++) wave[i] = plank.waveA * Math.sin(i * plank.f1 + plank.p1) + plank.waveB * Math.sin(i * plank.f2 + plank.p2);
    }
    const seam = j - plank.top < 1;
    const [tr, tg, tb] = plank.tone;
    const toLut = LUT_SIZE / plank.period;
    const row = j * w;
    for (let i = i0; i < i1; i++) {
      const phase = (j + wave[i]) * toLut;
      const g = SIN_LUT[(phase | 0) & (LUT_SIZE - 1)];
      const fine = SIN_LUT[((phase * 3.7) | 0) & (LUT_SIZE - 1)];
      const noise = ((hash32(seedMix ^ i, j) & 15) - 7.5) * 0.6;
      const f = seam ? 0.55 : 1 + 0.09 * g + 0.03 * fine;
      const o = (row + i) * 3;
      clamped[o] = tr * f + noise;
      clamped[o + 1] = tg * f + noise;
      clamped[o + 2] = tb * f + noise;
    }
  }
  for (const obj of [...scene.distractors, scene.target]) {
    const rgb = COLOURS[obj.colour];
    if (obj.shape === 'circle') fillDisc(canvas, obj.u, obj.v, obj.sizePx / 2, rgb);
    else fillSquare(canvas, obj.u, obj.v, obj.sizePx / 2, obj.angle, rgb);
  }
  return data;
}
