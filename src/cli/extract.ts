// `s2-policy extract`: S² features of every synchronised frame group of a recording, for training a policy.
import { existsSync } from 'node:fs';
import { extractFeatures } from '../run/extract.js';
import { loadConfig } from '../config/config.js';
import { UserError } from '../errors.js';
import type { Command } from './command.js';
import { configInputs, parseFlags, required, str } from './args.js';
import { claimOutputs } from './output.js';
import { progressPrinter } from './progress.js';
import { itemList, note, warn } from './replay.js';

const EXTRACT_HELP = `usage: s2-policy extract --bag IN [--bag IN2 …] --config cfg.yaml --out DIR [--actions-topic TOPIC] [--rows frames|actions] [--force]
       IN is a .mcap or .db3 file, a rosbag2 folder (mcap or sqlite3 storage) or its metadata.yaml;
       several --bag: one episode each (episodes.npy names each row's recording)
       --rows frames (default): a row per camera group with the latest state and action;
       --rows actions: a row per recorded action with the latest state, frame_of.npy naming its camera group`;

export const extractCommand: Command = {
  name: 'extract',
  summary: 'S² features of every frame group of a recording, with aligned state and actions, as .npy',
  help: EXTRACT_HELP,
  writes: '--out',
  run: async (argv) => {
    const flags = parseFlags('extract', argv, {
      bag: { type: 'string', multiple: true },
      config: { type: 'string' },
      out: { type: 'string' },
      'actions-topic': { type: 'string' },
      rows: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
    if (flags.help) {
      console.log(EXTRACT_HELP);
      return 0;
    }
    const bags = (flags.bag as unknown as string[] | undefined) ?? [];
    if (bags.length === 0) throw new UserError('extract: --bag is required');
    const dup = bags.find((b, i) => bags.indexOf(b) !== i);
    if (dup !== undefined) throw new UserError(`extract: --bag ${dup} is given twice`);
    const rows = str(flags, 'rows') ?? 'frames';
    if (rows !== 'frames' && rows !== 'actions') throw new UserError(`extract: --rows must be frames or actions, got '${rows}'`);
    const configFile = required(flags, 'config', 'extract');
    const out = required(flags, 'out', 'extract');
    for (const bag of bags) if (!existsSync(bag)) throw new UserError(`${bag}: no such recording`);
    const config = loadConfig(configFile);
    claimOutputs('extract', [{ path: out, what: '--out', kind: 'folder' }], Boolean(flags.force), [
      ...bags.map((bag) => ({ path: bag, what: '--bag' })),
      { path: configFile, what: '--config' },
      ...configInputs(config),
    ]);
    const s = await extractFeatures({
      bags,
      config,
      rows,
      configFile,
      out,
      actionsTopic: str(flags, 'actions-topic'),
      progress: progressPrinter('extract'),
      onWarning: warn,
      onNote: note,
    });
    const from = s.episodes > 1 ? ` of ${s.episodes} recordings` : '';
    const rowsLine = rows === 'actions' ? ` and ${s.rows} action rows` : '';
    console.log(`extracted ${s.frames} frame groups${rowsLine}${from} × ${s.featureDim} features into ${out}: ${s.files.join(', ')}`);
    console.log(`messages  ${s.accounting.total} in the recording${s.episodes > 1 ? 's' : ''}: ${itemList(s.accounting.items)}`);
    for (const c of config.cameras) {
      const k = s.cameras[c.name];
      console.log(`camera    ${c.name} (${c.topic}): in ${k.in}: ${itemList({ processed: k.processed, ...k.dropped })}`);
    }
    console.log(`dropped   ${itemList(s.dropped)}`);
    return 0;
  },
};
