// `s2-policy ros`: the ROS 2 node (what `ros2 run s2_policy s2_policy_node` starts). ROS arguments pass through.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../errors.js';
import { loadRclnodejs } from '../ros/detect.js';
import type { Command } from './command.js';

const ROS_HELP = `usage: s2-policy ros [--node combined|features|policy_head|sim] [--config cfg.yaml] [--ros-args --params-file params.yaml -r __ns:=/robot -p autostart:=true ...]`;

export const rosCommand: Command = {
  name: 'ros',
  summary: 'the ROS 2 node (needs a sourced ROS 2 and rclnodejs built against it)',
  help: ROS_HELP,
  run: (argv) => rosRun(argv),
};

async function rosRun(argv: string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    console.log(ROS_HELP);
    return 0;
  }
  let mode: 'combined' | 'features' | 'policy_head' | 'sim' = 'combined';
  let rest = argv;
  if (argv[0] === '--node') {
    const m = argv[1];
    if (m !== 'combined' && m !== 'features' && m !== 'policy_head' && m !== 'sim')
      throw new UserError(`ros: --node must be combined, features, policy_head or sim, got '${m ?? ''}'`);
    mode = m;
    rest = argv.slice(2);
  }
  let configFile: string | undefined;
  if (rest[0] === '--config') {
    configFile = rest[1];
    if (!configFile) throw new UserError('ros: --config needs a YAML config file');
    if (!existsSync(configFile)) throw new UserError(`${configFile}: no such config file`);
    rest = rest.slice(2);
  }
  const ros = await loadRclnodejs();
  if (!ros.ok) throw new UserError(`ros: ${ros.reason}`);
  if (mode === 'sim') {
    const { runSimNode } = await import('../ros/sim-node.js');
    return runSimNode({ argv: rest });
  }
  const { runNode } = await import('../ros/node.js');
  return runNode({ argv: rest, mode, configFile: configFile && resolve(configFile) });
}
