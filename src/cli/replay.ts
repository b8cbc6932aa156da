// `s2-policy replay`: runs the node's pipeline over a ROS 2 recording (a .mcap or a rosbag2 folder) and writes
// actions, S2Features and /diagnostics (and optionally the inputs) to a new .mcap or rosbag2 folder, on the recording's
// clock.
import { existsSync } from 'node:fs';
import { checkOutputLayout, isDb3FileName, isMcapFileName, parseRosDistro, parseStorageId, type OutputOptions } from '../bag/rosbag2-writer.js';
import { replay, type MessageAccounting } from '../run/replay.js';
import type { StartupNote } from '../pipeline/extractor.js';
import type { MetricsSnapshot } from '../pipeline/metrics.js';
import { loadConfig, withPolicyModel } from '../config/config.js';
import { UserError } from '../errors.js';
import type { Command } from './command.js';
import { configInputs, int, parseFlags, required, str, type Flags } from './args.js';
import { claimOutputs } from './output.js';

const REPLAY_HELP = `usage: s2-policy replay --bag IN --config cfg.yaml --out OUT [--rate R] [--topics t1,t2] [--policy MODEL.onnx] [--with-inputs] [--force]
                        [--max-file-size BYTES] [--max-duration S] [--compression-mode none|file|message]
                        [--ros-distro jazzy|humble] [--storage mcap|sqlite3]
       IN is a .mcap or .db3 file, a rosbag2 folder (mcap or sqlite3 storage) or its metadata.yaml; OUT ending in .mcap
       or .db3 is one file, any other name a rosbag2 folder (metadata.yaml and OUT_0.mcap, …), split and
       zstd-compressed as ros2 bag record does on request; --ros-distro humble writes metadata version 5 and, by
       default, sqlite3 storage (Humble's only default plugin), jazzy (the default) version 9 and mcap
       --rate 0 (default) runs as fast as possible on the recording's clock; --rate 1 is real time
       --policy MODEL.onnx runs another policy head than the config's policy.model (e.g. one written by fit; its
       MODEL.stats.json beside it is used when present)`;

export const OUTPUT_FLAGS = {
  'max-file-size': { type: 'string' },
  'max-duration': { type: 'string' },
  'compression-mode': { type: 'string' },
  'ros-distro': { type: 'string' },
  storage: { type: 'string' },
} as const;

/** --max-file-size, --max-duration and --compression-mode as writer options. */
export function outputOptions(flags: Flags): OutputOptions {
  const o: OutputOptions = { maxFileSize: int(flags, 'max-file-size') };
  o.distro = parseRosDistro(str(flags, 'ros-distro'));
  o.storage = parseStorageId(str(flags, 'storage'));
  const d = str(flags, 'max-duration');
  if (d !== undefined) {
    const s = Number(d);
    if (!Number.isFinite(s) || s <= 0) throw new UserError(`--max-duration must be a positive number of seconds, got '${d}'`);
    o.maxDurationNs = BigInt(Math.round(s * 1e9));
  }
  const c = str(flags, 'compression-mode');
  if (c !== undefined) {
    if (c !== 'none' && c !== 'file' && c !== 'message') throw new UserError(`--compression-mode must be none, file or message, got '${c}'`);
    o.compression = c;
  }
  return o;
}

/** Prints a start-up note of the runtime as a log line on stderr (warnings as `warn` prints them). */
export function note(n: StartupNote): void {
  if (n.level === 'warn') warn(n.text);
  else console.error(`s2-policy: ${n.text}`);
}

/** Prints a recording's metadata disagreements as warnings. */
export function warn(message: string): void {
  console.error(`s2-policy: warning: ${message}`);
}

/** A latency for people: 'n/a' for a stage without samples rather than 'NaN ms'. */
export function ms(v: number, digits = 1): string {
  return Number.isFinite(v) ? `${v.toFixed(digits)} ms` : 'n/a (no samples)';
}

/** 'key n, key n' or 'none': the summaries' counted items. */
export function itemList(items: Record<string, number>): string {
  const e = Object.entries(items);
  return e.length ? e.map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
}

/** The summary's accounting: every message of the recording, then every frame of each camera, adding up. */
export function accountingLines(
  a: MessageAccounting,
  m: MetricsSnapshot,
  cameras: readonly { name: string; topic: string }[],
  jointsTopic: string | undefined,
  durationMs: number,
): string[] {
  const lines = [`messages  ${a.total} in the recording: ${itemList(a.items)}`];
  for (const c of cameras) {
    const k = m.cameras[c.name] ?? { in: 0, processed: 0, dropped: {} };
    lines.push(`camera    ${c.name} (${c.topic}): in ${k.in}: ${itemList({ processed: k.processed, ...k.dropped })}`);
  }
  if (jointsTopic !== undefined) {
    const j = m.joints;
    lines.push(
      `joints    ${jointsTopic}: in ${j.in}: used ${j.used}, joint_state:missing_joint ${j.in - j.used}; ${(durationMs > 0 ? (1000 * j.in) / durationMs : 0).toFixed(1)} Hz over the recording, newest ${ms(j.ageMs)} old at the end`,
    );
  }
  return lines;
}

export const replayCommand: Command = {
  name: 'replay',
  summary: 'run the pipeline over a ROS 2 recording (.mcap or rosbag2 folder), writing actions and features',
  help: REPLAY_HELP,
  writes: '--out',
  run: (argv) => replayRun(argv),
};

async function replayRun(argv: string[]): Promise<number> {
  const flags = parseFlags('replay', argv, {
    bag: { type: 'string' },
    config: { type: 'string' },
    out: { type: 'string' },
    rate: { type: 'string' },
    topics: { type: 'string' },
    policy: { type: 'string' },
    'with-inputs': { type: 'boolean' },
    force: { type: 'boolean' },
    ...OUTPUT_FLAGS,
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
  // A name ending in .mcap or .db3 is one file; any other a rosbag2 folder.
  const outputs = [{ path: out, what: '--out', kind: isMcapFileName(out) || isDb3FileName(out) ? ('file' as const) : ('folder' as const) }];
  const config = withPolicyModel(loadConfig(configFile), str(flags, 'policy'), configFile);
  claimOutputs('replay', outputs, Boolean(flags.force), [{ path: bag, what: '--bag' }, { path: configFile, what: '--config' }, ...configInputs(config)]);
  const output = outputOptions(flags);
  checkOutputLayout(out, output);
  const topics = str(flags, 'topics')
    ?.split(',')
    .map((t) => t.trim());
  const t0 = performance.now();
  const s = await replay({
    bag,
    config,
    source: configFile,
    out,
    output,
    rate,
    topics,
    withInputs: Boolean(flags['with-inputs']),
    onWarning: warn,
    onNote: note,
  });
  const wall = (performance.now() - t0) / 1000;
  const m = s.metrics;
  console.log(`replayed ${bag}: ${(s.durationMs / 1000).toFixed(2)} s of recording, ${s.messagesIn} input messages in ${wall.toFixed(1)} s`);
  for (const l of accountingLines(s.accounting, m, config.cameras, config.joint_states?.topic, s.durationMs)) console.log(l);
  console.log(`frames    in ${m.counts.framesIn}, processed ${m.counts.framesProcessed}, groups ${m.counts.groupsProcessed}`);
  const drops = Object.entries(m.dropped);
  console.log(`dropped   ${drops.length ? drops.map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`);
  console.log(
    `latency   ingest p50 ${ms(m.latencyMs.ingest.p50)}, s2 p50 ${ms(m.latencyMs.s2.p50)}, policy p50 ${ms(m.latencyMs.policy.p50, 2)}, end-to-end p95 ${ms(m.latencyMs.end_to_end.p95)}`,
  );
  console.log(
    `actions   ${s.actions} on ${s.actionTopic} (${s.safeActions} safe actions while stale, ${m.counts.heldPastChunk} fresh ticks holding the last action past their chunk), limits ${s.actionLimitsRespected ? 'respected' : 'VIOLATED'}`,
  );
  console.log(`features  ${s.features} S2Features on ${s.featuresTopic}`);
  console.log(`wrote ${out}`);
  return s.actionLimitsRespected ? 0 : 1;
}
