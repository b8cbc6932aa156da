// The s2-policy command line: dispatches to the commands and turns user errors into one-line messages.
import { UserError } from '../errors.js';
import { S2OptionError, renameS2Options } from '../s2/plan.js';
import { COMPILE_HELP, compileCommand } from './compile.js';
import { EXTRACT_HELP, extractCommand } from './extract.js';
import { FEATURES_HELP, featuresCommand } from './features.js';
import { INSPECT_HELP, inspectCommand } from './inspect.js';
import { MAKE_DEMO_HELP, makeDemoCommand } from './make-demo.js';
import { MAKE_MODEL_HELP, makeModelCommand } from './make-model.js';
import { REPLAY_HELP, replayCommand } from './replay.js';
import { PARAMS_HELP, paramsCommand } from './params.js';
import { ROS_HELP, rosCommand } from './ros.js';
import { START_HELP, startCommand } from './start.js';
import { EVAL_HELP, FIT_HELP, SIM_HELP, evalCommand, fitCommand, simCommand } from './learn.js';

const HELP = `s2-policy: S² multi-scale features from ONNX vision backbones, for robot policies

commands:
  start        the default main job: closed loop with the built-in simulation (or the ROS 2 node when sourced)
  features     S² features of a .npy batch or an image, written as .npy
  inspect      a model's inputs, outputs, layout, and the S² plan for given scales
  compile      one ONNX model computing the S² features of a backbone (runs in any onnxruntime, Triton, …)
  make-model   write one of the project's deterministic test backbones
  make-demo    write a demo kit: backbone, policy head, config and a two-camera recording
  replay       run the pipeline over a ROS 2 recording (.mcap or rosbag2 folder), writing actions and features
  extract      S² features of every frame group of a recording, with aligned state and actions, as .npy
  sim collect  expert demonstrations in the simulation, as features/state/actions .npy
  fit          a linear policy head by ridge regression from demonstrations (sim collect or extract)
  eval         closed-loop success of single scale versus S² in the simulation
  ros          the ROS 2 node (needs a sourced ROS 2 and rclnodejs built against it)
  params       the ROS 2 parameter file equivalent to a YAML config, or the configuration reference

${FEATURES_HELP}

${INSPECT_HELP}

${COMPILE_HELP}

${MAKE_MODEL_HELP}

${MAKE_DEMO_HELP}

${REPLAY_HELP}

${EXTRACT_HELP}

${ROS_HELP}

${PARAMS_HELP}

${START_HELP}

${SIM_HELP}

${FIT_HELP}

${EVAL_HELP}`;

/** S² option names as the command line spells them (maxSplitSize → --max-split-size). */
function asFlags(message: string): string {
  return renameS2Options(message, (snake) => `--${snake.replace(/_/g, '-')}`);
}

export async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'features':
        return await featuresCommand(rest);
      case 'inspect':
        return await inspectCommand(rest);
      case 'compile':
        return await compileCommand(rest);
      case 'make-model':
        return makeModelCommand(rest);
      case 'make-demo':
        return await makeDemoCommand(rest);
      case 'replay':
        return await replayCommand(rest);
      case 'extract':
        return await extractCommand(rest);
      case 'ros':
        return await rosCommand(rest);
      case 'params':
        return paramsCommand(rest);
      case 'start':
        return await startCommand(rest);
      case 'sim':
        return await simCommand(rest);
      case 'fit':
        return await fitCommand(rest);
      case 'eval':
        return await evalCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(HELP);
        return command === undefined ? 2 : 0;
      default:
        throw new UserError(
          `unknown command '${command}' (commands: features, inspect, compile, make-model, make-demo, replay, extract, ros, params, start, sim, fit, eval; see s2-policy --help)`,
        );
    }
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
