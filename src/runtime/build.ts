// Assembles the system once for every entry point (the ROS 2 node, replay, extract, start, eval, sim collect, fit):
// loads and warms up the models and checks every shape against the configuration at start-up, each check written
// once here, each error naming the config key and both numbers.
import { asyncScheduler, type SchedulerLike } from 'rxjs';
import { need, type Config } from '../config/config.js';
import { UserError } from '../errors.js';
import { FeatureExtractor, type StartupNote } from '../pipeline/extractor.js';
import { PolicyPipeline } from '../pipeline/pipeline.js';
import { PolicyHead, type PolicyShape } from '../policy/head.js';
import { S2OptionError, renameS2Options } from '../s2/plan.js';

/** What a run needs: the feature half (frames → features), the policy half (features → actions), or both. */
export interface RuntimeNeeds {
  features: boolean;
  policy: boolean;
  /** The run, for errors: 'replay', 'the ROS 2 node', … */
  by: string;
}

export interface Runtime {
  readonly config: Config;
  readonly extractor?: FeatureExtractor;
  readonly head?: PolicyHead;
  /** Start-up notes worth a line in the log (not errors): every entry point prints them (logStartupNotes). */
  readonly notes: StartupNote[];
  /** A pipeline over these models on `scheduler`'s clock; the models stay owned by the runtime. */
  pipeline(scheduler?: SchedulerLike): PolicyPipeline;
  release(): Promise<void>;
}

/** An S² planner message with its option names as config keys (s2.max_split_size), for errors about a config. */
export const asConfigKeys = (message: string): string => renameS2Options(message, (snake) => `s2.${snake}`);

/** Actions each action interface carries per command, where it fixes the number. */
const INTERFACE_DIMS: Partial<Record<string, number>> = { twist_stamped: 6 };

/**
 * Every shape check between the models and the configuration. `perCamera` is the extractor's pooled width (undefined
 * when the run has no feature half). Throws a UserError naming the key and both numbers.
 */
export function checkShapes(
  config: Config,
  source: string,
  head: PolicyShape | undefined,
  perCamera: number | undefined,
  policyFile = config.policy?.model ?? 'policy',
): void {
  const fail = (key: string, why: string): never => {
    throw new UserError(`${source}: ${key}: ${why}`);
  };
  if (!head) return;
  const policy = need(config, 'policy', source, 'the policy head');
  if (perCamera !== undefined) {
    const given = perCamera * config.cameras.length;
    if (head.featureDim !== given) {
      fail(
        'policy.model',
        `${policyFile} input '${policy.features_input}' takes ${head.featureDim} features, the ${config.cameras.length} camera(s) give ${config.cameras.length} × ${perCamera} = ${given} (features.pool ${config.features.pool})`,
      );
    }
  }
  if (head.stateDim > 0) {
    const names = config.joint_states?.names;
    if (!names) fail('joint_states.names', `${policyFile} input '${policy.state_input}' takes a state of ${head.stateDim} values; name its joints`);
    else if (names.length !== head.stateDim)
      fail('joint_states.names', `has ${names.length} joints, ${policyFile} input '${policy.state_input}' takes ${head.stateDim} values`);
  }
  const control = config.control;
  if (!control) return;
  const d = head.actionDim;
  if (control.joint_names && control.joint_names.length !== d)
    fail('control.joint_names', `has ${control.joint_names.length} names, ${policyFile} gives ${d} action values`);
  for (const key of ['lower', 'upper', 'max_delta'] as const) {
    const v = control[key];
    if (v && v.length !== d) fail(`control.${key}`, `has ${v.length} values, ${policyFile} gives ${d} action values`);
  }
  const fixed = INTERFACE_DIMS[control.action_interface];
  if (fixed !== undefined && fixed !== d) fail('control.action_interface', `${control.action_interface} carries ${fixed} values, ${policyFile} gives ${d}`);
}

/** Loads the models a run needs, checks them against the config, and returns the runtime. `source` names the config. */
export async function buildRuntime(config: Config, source: string, needs: RuntimeNeeds): Promise<Runtime> {
  let extractor: FeatureExtractor | undefined;
  let head: PolicyHead | undefined;
  const notes: StartupNote[] = [];
  try {
    if (needs.policy) {
      need(config, 'policy', source, needs.by);
      need(config, 'control', source, needs.by);
    }
    if (needs.features) {
      try {
        extractor = await FeatureExtractor.create(config);
        notes.push(...extractor.notes);
      } catch (e) {
        if (e instanceof S2OptionError) throw new UserError(`${source}: ${asConfigKeys(e.message)}`);
        throw e;
      }
    }
    if (needs.policy) {
      const p = need(config, 'policy', source, needs.by);
      head = await PolicyHead.load({ model: p.model, stats: p.stats, featuresInput: p.features_input, stateInput: p.state_input, output: p.output });
      checkShapes(config, source, head.shape, extractor?.layout.perCamera);
    }
  } catch (e) {
    await extractor?.release();
    await head?.release();
    throw e;
  }
  return {
    config,
    extractor,
    head,
    notes,
    pipeline: (scheduler: SchedulerLike = asyncScheduler) => new PolicyPipeline(config, extractor, head, scheduler),
    release: async () => {
      await extractor?.release();
      await head?.release();
    },
  };
}
