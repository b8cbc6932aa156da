// `s2-policy ros`: the ROS 2 node (what `ros2 run s2_policy s2_policy_node` starts). ROS arguments pass through.
import { UserError } from '../errors.js';
import { loadRclnodejs } from '../ros/detect.js';

export const ROS_HELP = `usage: s2-policy ros [--node combined|features|policy_head|sim] [--ros-args --params-file params.yaml -r __ns:=/robot -p autostart:=true ...]`;

export async function rosCommand(argv: string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    console.log(ROS_HELP);
    return 0;
  }
  let mode: 'combined' | 'features' | 'policy_head' | 'sim' = 'combined';
  let rest = argv;
  if (argv[0] === '--node') {
    const m = argv[1];
    if (m !== 'combined' && m !== 'features' && m !== 'policy_head' && m !== 'sim') throw new UserError(`ros: --node must be combined, features, policy_head or sim, got '${m ?? ''}'`);
    mode = m;
    rest = argv.slice(2);
  }
  const ros = await loadRclnodejs();
  if (!ros.ok) throw new UserError(`ros: ${ros.reason}`);
  if (mode === 'sim') {
    const { runSimNode } = await import('../ros/sim-node.js');
    return runSimNode({ argv: rest });
  }
  const { runNode } = await import('../ros/node.js');
  return runNode({ argv: rest, mode });
}
