// `s2-policy make-demo`: writes the demo kit (src/run/demo-kit.ts) into a folder.
import { writeDemoKit } from '../run/demo-kit.js';
import type { Command } from './command.js';
import { int, parseFlags, required } from './args.js';
import { claimOutputs } from './output.js';

const MAKE_DEMO_HELP = `usage: s2-policy make-demo --out DIR [--duration S] [--width W] [--height H] [--force]`;

export const makeDemoCommand: Command = {
  name: 'make-demo',
  summary: 'write a demo kit: backbone, policy head, config and a two-camera recording',
  help: MAKE_DEMO_HELP,
  writes: '--out',
  run: async (argv) => {
    const flags = parseFlags('make-demo', argv, {
      out: { type: 'string' },
      duration: { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
    if (flags.help) {
      console.log(MAKE_DEMO_HELP);
      return 0;
    }
    const out = required(flags, 'out', 'make-demo');
    claimOutputs('make-demo', [{ path: out, what: '--out', kind: 'folder' }], Boolean(flags.force));
    const kit = await writeDemoKit(out, { durationS: int(flags, 'duration'), width: int(flags, 'width'), height: int(flags, 'height') });
    console.log(`wrote ${kit.config}, ${kit.recording}, ${kit.backbone}, ${kit.policy} (+ policy.stats.json)`);
    return 0;
  },
};
