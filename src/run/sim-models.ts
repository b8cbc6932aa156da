// The demo models for the ROS 2 simulation node (launch/sim.launch.py): the cached demo backbone and head, and a
// ROS 2 parameter file pointing the node at them.
import { join, resolve } from 'node:path';
import { need } from '../config/config.js';
import { writeFileAtomic } from '../io/atomic.js';
import { configToParams, stringifyParamsFile } from '../ros/params.js';
import { DEMO_SIZES, ensureDemoModels, type DemoModels } from '../sim/closed-loop.js';

export interface SimModelsResult {
  models: DemoModels;
  /** The ROS 2 parameter file written beside the models. */
  paramsFile: string;
}

/** Builds (or reuses, when the recipe is unchanged) the demo models in `out` and writes `out`/sim_params.yaml. */
export async function writeSimModels(out: string, log?: (line: string) => void): Promise<SimModelsResult> {
  const dir = resolve(out);
  const models = await ensureDemoModels(dir, { sizes: DEMO_SIZES }, log);
  const c = models.config;
  need(c, 'control', 'demo config', 'sim models').action_topic = '/s2_policy/actions';
  const paramsFile = join(dir, 'sim_params.yaml');
  const head = `${models.summary.head} head`;
  writeFileAtomic(
    paramsFile,
    stringifyParamsFile(
      configToParams(c),
      ['s2_policy'],
      `# s2_policy parameters for launch/sim.launch.py (demo models: k-means backbone pretrained on simulated frames without labels, ${head})\n`,
    ),
  );
  return { models, paramsFile };
}
