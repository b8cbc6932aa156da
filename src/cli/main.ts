// The s2-policy command line: dispatches to the commands and turns user errors into one-line messages.
import { UserError } from '../errors.js';
import { S2OptionError, renameS2Options } from '../s2/plan.js';
import type { Command } from './command.js';
import { compileCommand } from './compile.js';
import { evalCommand } from './eval.js';
import { extractCommand } from './extract.js';
import { featuresCommand } from './features.js';
import { fitCommand } from './fit.js';
import { inspectCommand } from './inspect.js';
import { makeDemoCommand } from './make-demo.js';
import { makeInputCommand } from './make-input.js';
import { makeModelCommand } from './make-model.js';
import { paramsCommand } from './params.js';
import { replayCommand } from './replay.js';
import { rosCommand } from './ros.js';
import { simCollectCommand, simFramesCommand, simModelsCommand } from './sim.js';
import { startCommand } from './start.js';

/** Every command, in the order of the help. */
export const COMMANDS: readonly Command[] = [
  startCommand,
  featuresCommand,
  inspectCommand,
  compileCommand,
  makeModelCommand,
  makeInputCommand,
  makeDemoCommand,
  replayCommand,
  extractCommand,
  simCollectCommand,
  simModelsCommand,
  simFramesCommand,
  fitCommand,
  evalCommand,
  rosCommand,
  paramsCommand,
];

const HELP = `s2-policy: S² multi-scale features from ONNX vision backbones, for robot policies

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`).join('\n')}

${COMMANDS.map((c) => c.help).join('\n\n')}`;

/** Top-level names (sim collect and sim models share 'sim'). */
const TOP = [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]))];

/** S² option names as the command line spells them (maxSplitSize → --max-split-size). */
function asFlags(message: string): string {
  return renameS2Options(message, (snake) => `--${snake.replace(/_/g, '-')}`);
}

function find(argv: string[]): { command: Command; rest: string[] } | undefined {
  const [first, second, ...rest] = argv;
  const sub = COMMANDS.filter((c) => c.name.startsWith(`${first} `));
  if (sub.length === 0) {
    const command = COMMANDS.find((c) => c.name === first);
    return command && { command, rest: argv.slice(1) };
  }
  const command = sub.find((c) => c.name === `${first} ${second}`);
  if (command) return { command, rest };
  if (second === undefined || second === '--help' || second === '-h') {
    console.log(sub.map((c) => c.help).join('\n'));
    return undefined;
  }
  throw new UserError(`unknown command '${first} ${second}' (${sub.map((c) => c.name).join(', ')}; see s2-policy ${first} --help)`);
}

export async function run(argv: string[]): Promise<number> {
  const [command] = argv;
  try {
    if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
      console.log(HELP);
      return command === undefined ? 2 : 0;
    }
    if (!TOP.includes(command)) throw new UserError(`unknown command '${command}' (commands: ${TOP.join(', ')}; see s2-policy --help)`);
    const found = find(argv);
    return found ? await found.command.run(found.rest) : 0;
  } catch (e) {
    const message = userMessage(e);
    if (message === undefined) throw e;
    console.error(`s2-policy: ${message}`);
    return 2;
  }
}

/** File-system failures that are the environment's (a path, its permissions, the disk), not a bug of ours. */
const FS_REASONS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EISDIR: 'is a folder',
  ENOTDIR: 'a path component is not a folder',
  ENAMETOOLONG: 'name too long',
  EMFILE: 'too many open files',
  ELOOP: 'too many symbolic links',
  EEXIST: 'already exists',
  ENOTEMPTY: 'folder not empty',
  EXDEV: 'crosses file systems',
};

/**
 * The one error boundary: what a user can act on becomes one line (UserError, S² option errors with their flag
 * names, file-system errors naming their path); anything else is our bug and keeps its stack trace.
 */
export function userMessage(e: unknown): string | undefined {
  let message: string | undefined;
  if (e instanceof UserError) message = e.message;
  else if (e instanceof S2OptionError) message = asFlags(e.message);
  else {
    const err = e as NodeJS.ErrnoException | undefined;
    const reason = typeof err?.code === 'string' ? FS_REASONS[err.code] : undefined;
    if (reason !== undefined && typeof err?.path === 'string') message = `${err.path}: ${reason}`;
  }
  return message?.replace(/\s*\n\s*/g, '; ');
}
