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

const EXTRACT_HELP = `usage: s2-policy extract --bag IN --config cfg.yaml --out DIR [--actions-topic TOPIC] [--force]
       IN is a .mcap or .db3 file, a rosbag2 folder (mcap or sqlite3 storage) or its metadata.yaml`;

export const extractCommand: Command = {
  name: 'extract',
  summary: 'S² features of every frame group of a recording, with aligned state and actions, as .npy',
  help: EXTRACT_HELP,
  writes: '--out',
  run: async (argv) => {
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
    const config = loadConfig(configFile);
    claimOutputs('extract', [{ path: out, what: '--out', kind: 'folder' }], Boolean(flags.force), [
      { path: bag, what: '--bag' },
      { path: configFile, what: '--config' },
      ...configInputs(config),
    ]);
    const s = await extractFeatures({
      bag,
      config,
      configFile,
      out,
      actionsTopic: str(flags, 'actions-topic'),
      progress: progressPrinter('extract'),
      onWarning: warn,
      onNote: note,
    });
    console.log(`extracted ${s.frames} frame groups × ${s.featureDim} features into ${out}: ${s.files.join(', ')}`);
    console.log(`messages  ${s.accounting.total} in the recording: ${itemList(s.accounting.items)}`);
    for (const c of config.cameras) {
      const k = s.cameras[c.name];
      console.log(`camera    ${c.name} (${c.topic}): in ${k.in}: ${itemList({ processed: k.processed, ...k.dropped })}`);
    }
    console.log(`dropped   ${itemList(s.dropped)}`);
    return 0;
  },
};
