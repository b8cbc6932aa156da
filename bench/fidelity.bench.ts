// bench:fidelity — does replay predict the live node? A demo recording is played with `ros2 bag play` into the node
// (`s2-policy ros`) while `ros2 bag record` captures its actions, then replayed with `s2-policy replay --rate 1` (and
// --rate 0); the figures compare each replay with the live actions on the recording's timeline. Needs ROS 2 sourced.
// BENCH_SECONDS sets the recording's length (default 20 s).
import { join } from 'node:path';
import { writeDemoKit } from '../src/run/demo-kit.js';
import { sourcedRosDistro } from '../src/ros/detect.js';
import { controlOf, copyToFolder, measureFidelity } from './fidelity-lib.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

if (!sourcedRosDistro()) {
  console.log('skipped: ROS 2 not sourced');
  process.exit(0);
}
process.env.ROS_DOMAIN_ID ??= String(100 + (process.pid % 100));
const seconds = Number(process.env.BENCH_SECONDS ?? 20);
const dir = mkdtempSync(join(tmpdir(), 's2-fidelity-'));
const kit = await writeDemoKit(dir, { durationS: seconds });
// ros2 bag play is given a rosbag2 folder written by the project.
const bag = join(dir, 'demo_bag');
await copyToFolder(kit.recording, bag);
const m = await measureFidelity({ bag, configFile: kit.config, dir, rates: [1, 0], log: process.env.S2_VERBOSE ? (s) => process.stdout.write(s) : undefined });
const ms = (x: number) => `${x.toFixed(0)} ms`;
console.log(
  `recording ${(m.durationMs / 1000).toFixed(1)} s (${seconds} s demo: raw wrist camera, JPEG front camera stalling at 60%), control at ${controlOf(m.live.config).rate_hz} Hz`,
);
console.log(`clocks aligned by ${m.offset.matched} joint states (receive-time spread p5–p95 ${m.offset.spreadMs.toFixed(1)} ms)`);
for (const { rate, c } of m.results) {
  console.log(`replay --rate ${rate}:`);
  console.log(`  actions          live ${c.liveActions}, replay ${c.replayActions} (window ${ms(c.windowMs[0])}–${ms(c.windowMs[1])})`);
  console.log(`  paired ticks     ${c.paired} (median phase ${c.medianPhaseMs.toFixed(1)} ms)`);
  console.log(
    `  differing ticks  ${c.differing} of ${c.paired} = ${(100 * c.differingFraction).toFixed(1)}% (|Δ| > 1e-6); median |Δ| ${c.medianAbsDiff.toExponential(2)}, max ${c.maxAbsDiff.toExponential(2)}`,
  );
  const pct = (n: number, d: number) => `${n} of ${d} = ${((100 * n) / Math.max(1, d)).toFixed(1)}%`;
  console.log(
    `  while moving     ${c.pairedMoving} paired ticks not both safe: ${pct(c.differingMoving, c.pairedMoving)} differ by > 1e-6, ${pct(c.differingCoarse, c.pairedMoving)} by > ${c.coarseTolerance}`,
  );
  console.log(
    `  within a tick    ${pct(c.matchedWithinOneTick, c.pairedMoving)} of those live actions are within ${c.coarseTolerance} of a replay action at most one period away`,
  );
  const fmt = (ps: { startMs: number; endMs: number }[]) => (ps.length ? ps.map((p) => `${ms(p.startMs)}–${ms(p.endMs)}`).join(', ') : 'none');
  console.log(`  stale periods    live ${fmt(c.liveStale)}; replay ${fmt(c.replayStale)}`);
  if (c.liveStale.length > 0 && c.replayStale.length > 0) {
    const lastL = c.liveStale[c.liveStale.length - 1];
    const lastR = c.replayStale[c.replayStale.length - 1];
    console.log(`  stall onset      live − replay ${(lastL.startMs - lastR.startMs).toFixed(1)} ms`);
  }
}
