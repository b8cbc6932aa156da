// `s2-policy params`: the ROS 2 parameter file equivalent to a YAML config (the node also takes the YAML itself,
// as `config_file`), or the configuration reference as markdown.
import { loadConfig } from '../config/config.js';
import { TABLE_BEGIN, TABLE_END, configTableMarkdown } from '../config/docs.js';
import { PARAMS, configToParams, stringifyParamsFile } from '../ros/params.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { Command } from './command.js';
import { parseFlags, str } from './args.js';
import { claimOutputs } from './output.js';

const PARAMS_HELP = `usage: s2-policy params --config cfg.yaml [--out params.yaml [--force]] [--node s2_policy]   the equivalent ROS 2 parameter file
       s2-policy params --markdown                                               the configuration reference table`;

/** The ROS 2 parameter names that carry a config key. */
export const paramNamesOf = (key: string): string[] => PARAMS.filter((p) => p.key === key).map((p) => p.name);

export const paramsCommand: Command = {
  name: 'params',
  summary: 'the ROS 2 parameter file equivalent to a YAML config, or the configuration reference',
  help: PARAMS_HELP,
  writes: '--out',
  run: (argv) => paramsRun(argv),
};

function paramsRun(argv: string[]): number {
  const flags = parseFlags('params', argv, {
    config: { type: 'string' },
    out: { type: 'string' },
    node: { type: 'string' },
    markdown: { type: 'boolean' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(PARAMS_HELP);
    return 0;
  }
  if (flags.markdown) {
    console.log(`${TABLE_BEGIN}\n${configTableMarkdown(paramNamesOf)}\n${TABLE_END}`);
    return 0;
  }
  const file = str(flags, 'config');
  if (file === undefined) throw new UserError('params: --config is required (or --markdown)');
  const out = str(flags, 'out');
  if (out !== undefined) claimOutputs('params', [{ path: out, what: '--out', kind: 'file' }], Boolean(flags.force), [{ path: file, what: '--config' }]);
  const config = loadConfig(file);
  const text = stringifyParamsFile(configToParams(config), [str(flags, 'node') ?? 's2_policy'], `# ROS 2 parameters equivalent to ${file}\n`);
  if (out === undefined) process.stdout.write(text);
  else {
    writeFileAtomic(out, text, '--out');
    console.log(`wrote ${out}`);
  }
  return 0;
}
