// `s2-policy extract`: S² features of every synchronised frame group of a recording, for training a policy.
import { existsSync } from 'node:fs';
import { extractFeatures } from '../run/extract.js';
import { loadConfig } from '../config/config.js';
import { UserError } from '../errors.js';
import { checkOutputPath, refuseAliases } from '../io/atomic.js';
import { configInputs, parseFlags, refuseNonEmpty, required, str } from './args.js';
import { warn } from './replay.js';

export const EXTRACT_HELP = `usage: s2-policy extract --bag IN --config cfg.yaml --out DIR [--actions-topic TOPIC] [--force]
       IN is a .mcap or .db3 file, a rosbag2 folder (mcap or sqlite3 storage) or its metadata.yaml`;

/** A one-line progress bar with rate and ETA on a terminal; a line every 10% otherwise. */
export function progressPrinter(label: string, stream: NodeJS.WriteStream = process.stderr): (done: number, total: number) => void {
  const t0 = performance.now();
  let lastDraw = 0;
  let lastDecile = -1;
  return (done, total) => {
    const now = performance.now();
    const rate = done / Math.max(1e-3, (now - t0) / 1000);
    const eta = total > done ? (total - done) / Math.max(rate, 1e-9) : 0;
    const pct = total > 0 ? Math.min(100, (100 * done) / total) : 100;
    const text = `${label} ${done}/${total} frames ${pct.toFixed(0)}% ${rate.toFixed(1)} frames/s ETA ${eta.toFixed(0)} s`;
    if (stream.isTTY) {
      if (now - lastDraw < 100 && done < total) return;
      lastDraw = now;
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K${done >= total ? '\n' : ''}`);
    } else {
      const decile = Math.floor(pct / 10);
      if (decile !== lastDecile) {
        lastDecile = decile;
        stream.write(`${text}\n`);
      }
    }
  };
}

export async function extractCommand(argv: string[]): Promise<number> {
  const flags = parseFlags('extract', argv, {
    bag: { type: 'string' },
    config: { type: 'string' },
    out: { type: 'string' },
    'actions-topic': { type: 'string' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(EXTRACT_HELP);
    return 0;
  }
  const bag = required(flags, 'bag', 'extract');
  const configFile = required(flags, 'config', 'extract');
  const out = required(flags, 'out', 'extract');
  if (!existsSync(bag)) throw new UserError(`${bag}: no such recording`);
  checkOutputPath(out, 'folder', '--out');
  const outputs = [{ path: out, what: '--out' }];
  refuseAliases(outputs, [
    { path: bag, what: '--bag' },
    { path: configFile, what: '--config' },
  ]);
  refuseNonEmpty(out, Boolean(flags.force), 'extract');
  const config = loadConfig(configFile);
  refuseAliases(outputs, configInputs(config));
  const s = await extractFeatures({
    bag,
    config,
    configFile,
    out,
    actionsTopic: str(flags, 'actions-topic'),
    progress: progressPrinter('extract'),
    onWarning: warn,
  });
  const drops = Object.entries(s.dropped);
  console.log(`extracted ${s.frames} frame groups × ${s.featureDim} features into ${out}: ${s.files.join(', ')}`);
  console.log(`dropped   ${drops.length ? drops.map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`);
  return 0;
}
