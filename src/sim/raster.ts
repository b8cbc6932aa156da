// Drawing primitives on rgb8 buffers. A pixel (i, j) covers [i, i+1) × [j, j+1) and belongs to a shape when its
// centre (i + 0.5, j + 0.5) does, so a disc of diameter D centred on a pixel centre (odd D) or corner (even D)
// spans exactly D pixels. Plain loops over clipped bounding boxes: no per-pixel closures.

export type Rgb = readonly [number, number, number];

export interface Canvas {
  data: Uint8Array;
  width: number;
  height: number;
}

function bounds(c: Canvas, u0: number, u1: number, v0: number, v1: number): [number, number, number, number] {
  return [Math.max(0, Math.floor(u0)), Math.min(c.width - 1, Math.ceil(u1)), Math.max(0, Math.floor(v0)), Math.min(c.height - 1, Math.ceil(v1))];
}

export function fillDisc(c: Canvas, cu: number, cv: number, r: number, rgb: Rgb): void {
  const [i0, i1, j0, j1] = bounds(c, cu - r, cu + r, cv - r, cv + r);
  const r2 = r * r;
  const d = c.data;
  for (let j = j0; j <= j1; j++) {
    const dy = j + 0.5 - cv;
    const row = j * c.width;
    for (let i = i0; i <= i1; i++) {
      const dx = i + 0.5 - cu;
      if (dx * dx + dy * dy <= r2) {
        const o = (row + i) * 3;
        d[o] = rgb[0];
        d[o + 1] = rgb[1];
        d[o + 2] = rgb[2];
      }
    }
  }
}

/** An annulus in `rgb`; pixels inside `rInner` are copied from `hole` (the background seen through the ring). */
export function fillRing(c: Canvas, cu: number, cv: number, rOuter: number, rInner: number, rgb: Rgb, hole: Uint8Array): void {
  const [i0, i1, j0, j1] = bounds(c, cu - rOuter, cu + rOuter, cv - rOuter, cv + rOuter);
  const ro2 = rOuter * rOuter;
  const ri2 = rInner * rInner;
  const d = c.data;
  for (let j = j0; j <= j1; j++) {
    const dy = j + 0.5 - cv;
    const row = j * c.width;
    for (let i = i0; i <= i1; i++) {
      const dx = i + 0.5 - cu;
      const q = dx * dx + dy * dy;
      if (q > ro2) continue;
      const o = (row + i) * 3;
      if (q <= ri2) {
        d[o] = hole[o];
        d[o + 1] = hole[o + 1];
        d[o + 2] = hole[o + 2];
      } else {
        d[o] = rgb[0];
        d[o + 1] = rgb[1];
        d[o + 2] = rgb[2];
      }
    }
  }
}

/** A square of side 2·half rotated by `angle` (radians) about its centre. */
export function fillSquare(c: Canvas, cu: number, cv: number, half: number, angle: number, rgb: Rgb): void {
  const ext = half * (Math.abs(Math.cos(angle)) + Math.abs(Math.sin(angle)));
  const [i0, i1, j0, j1] = bounds(c, cu - ext, cu + ext, cv - ext, cv + ext);
  const ca = Math.cos(angle);
  const sa = Math.sin(angle);
  const d = c.data;
  for (let j = j0; j <= j1; j++) {
    const dy = j + 0.5 - cv;
    const row = j * c.width;
    for (let i = i0; i <= i1; i++) {
      const dx = i + 0.5 - cu;
      if (Math.abs(dx * ca + dy * sa) <= half && Math.abs(dy * ca - dx * sa) <= half) {
        const o = (row + i) * 3;
        d[o] = rgb[0];
        d[o + 1] = rgb[1];
        d[o + 2] = rgb[2];
      }
    }
  }
}

/** A segment from a to b thickened to radius r with round ends; the outer `edgeWidth` pixels drawn in `edge`. */
export function fillCapsule(c: Canvas, au: number, av: number, bu: number, bv: number, r: number, rgb: Rgb, edge: Rgb = rgb, edgeWidth = 0): void {
  const [i0, i1, j0, j1] = bounds(c, Math.min(au, bu) - r, Math.max(au, bu) + r, Math.min(av, bv) - r, Math.max(av, bv) + r);
  const eu = bu - au;
  const ev = bv - av;
  const len2 = eu * eu + ev * ev;
  const inv = len2 > 0 ? 1 / len2 : 0;
  const r2 = r * r;
  const rin = Math.max(0, r - edgeWidth);
  const rin2 = rin * rin;
  const d = c.data;
  for (let j = j0; j <= j1; j++) {
    const pv = j + 0.5 - av;
    const row = j * c.width;
    for (let i = i0; i <= i1; i++) {
      const pu = i + 0.5 - au;
      let t = (pu * eu + pv * ev) * inv;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const du = pu - t * eu;
      const dv = pv - t * ev;
      const q = du * du + dv * dv;
      if (q > r2) continue;
      const col = q > rin2 ? edge : rgb;
      const o = (row + i) * 3;
      d[o] = col[0];
      d[o + 1] = col[1];
      d[o + 2] = col[2];
    }
  }
}
