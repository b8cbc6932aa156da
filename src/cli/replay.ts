// `s2-policy replay`: runs the node's pipeline over a ROS 2 MCAP recording and writes actions, S2Features and
// /diagnostics (and optionally the inputs) to a new MCAP, on the recording's clock.
import { existsSync } from 'node:fs';
import { replay } from '../run/replay.js';
import { loadConfig } from '../config/config.js';
import { UserError } from '../errors.js';
import { parseFlags, required, str } from './args.js';

export const REPLAY_HELP = `usage: s2-policy replay --bag in.mcap --config cfg.yaml --out out.mcap [--rate R] [--topics t1,t2] [--with-inputs] [--force]
       --rate 0 (default) runs as fast as possible on the recording's clock; --rate 1 is real time`;

export async function replayCommand(argv: string[]): Promise<number> {
  const flags = parseFlags('replay', argv, {
    bag: { type: 'string' },
    config: { type: 'string' },
    out: { type: 'string' },
    rate: { type: 'string' },
    topics: { type: 'string' },
    'with-inputs': { type: 'boolean' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(REPLAY_HELP);
    return 0;
  }
  const bag = required(flags, 'bag', 'replay');
  const configFile = required(flags, 'config', 'replay');
  const out = required(flags, 'out', 'replay');
  const rateText = str(flags, 'rate') ?? '0';
  const rate = Number(rateText);
  if (!Number.isFinite(rate) || rate < 0) throw new UserError(`--rate must be 0 (as fast as possible) or a positive factor of real time, got '${rateText}'`);
  if (!existsSync(bag)) throw new UserError(`${bag}: no such recording`);
  if (existsSync(out) && !flags.force) throw new UserError(`${out} exists; pass --force to overwrite`);
  const config = loadConfig(configFile);
  const topics = str(flags, 'topics')?.split(',').map((t) => t.trim());
  const t0 = performance.now();
  const s = await replay({ bag, config, out, rate, topics, withInputs: Boolean(flags['with-inputs']) });
  const wall = (performance.now() - t0) / 1000;
  const m = s.metrics;
  console.log(`replayed ${bag}: ${(s.durationMs / 1000).toFixed(2)} s of recording, ${s.messagesIn} input messages in ${wall.toFixed(1)} s`);
  console.log(`frames    in ${m.counts.framesIn}, processed ${m.counts.framesProcessed}, groups ${m.counts.groupsProcessed}`);
  const drops = Object.entries(m.dropped);
  console.log(`dropped   ${drops.length ? drops.map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`);
  console.log(`latency   ingest p50 ${m.latencyMs.ingest.p50.toFixed(1)} ms, s2 p50 ${m.latencyMs.s2.p50.toFixed(1)} ms, policy p50 ${m.latencyMs.policy.p50.toFixed(2)} ms, end-to-end p95 ${m.latencyMs.end_to_end.p95.toFixed(1)} ms`);
  console.log(`actions   ${s.actions} on ${s.actionTopic} (${s.safeActions} safe actions while stale), limits ${s.actionLimitsRespected ? 'respected' : 'VIOLATED'}`);
  console.log(`features  ${s.features} S2Features on ${s.featuresTopic}`);
  console.log(`wrote ${out}`);
  return s.actionLimitsRespected ? 0 : 1;
}
