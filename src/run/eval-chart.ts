// The evaluation's chart: two bar groups per variant (closed-loop success, keypoint on the target) with their 95%
// intervals, for the task and for the target-size sweep, drawn as SVG and written as PNG.
import sharp from 'sharp';
import { writeFileAtomic } from '../io/atomic.js';
import type { EvalRow } from './eval.js';

function svgText(x: number, y: number, text: string, o: { size?: number; anchor?: string; weight?: string } = {}): string {
  return `<text x="${x}" y="${y}" font-size="${o.size ?? 12}" text-anchor="${o.anchor ?? 'middle'}" font-family="sans-serif"${o.weight ? ` font-weight="${o.weight}"` : ''}>${text}</text>`;
}

/** Two bar groups per variant (closed-loop success, keypoint on the target), each with its 95% interval. */
export async function evalChart(file: string, rows: EvalRow[], sweep: EvalRow[], episodes: number): Promise<void> {
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
