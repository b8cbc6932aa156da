// Progress for long commands on stderr: a redrawn bar with rate and ETA on a terminal; separate lines (every 10%)
// when stderr is a file or a pipe, so that logs never hold carriage-return run-together lines.

/** A progress callback (done, total) for `label`, counting `unit`. */
export function progressPrinter(label: string, unit = 'frames', stream: NodeJS.WriteStream = process.stderr): (done: number, total: number) => void {
  const t0 = performance.now();
  let lastDraw = 0;
  let lastDecile = -1;
  return (done, total) => {
    const now = performance.now();
    const rate = done / Math.max(1e-3, (now - t0) / 1000);
    const eta = total > done ? (total - done) / Math.max(rate, 1e-9) : 0;
    const pct = total > 0 ? Math.min(100, (100 * done) / total) : 100;
    const text = `${label} ${done}/${total} ${unit} ${pct.toFixed(0)}% ${rate.toFixed(1)} ${unit}/s ETA ${eta.toFixed(0)} s`;
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
