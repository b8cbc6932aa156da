// What every live ROS 2 test needs first: a sourced ROS 2 (and, for tests that talk over topics, rclnodejs built
// against it), or a skip announced once per run; a DDS domain of the run's own.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { loadRclnodejs, sourcedRosDistro } from '../../src/ros/detect.js';

type Rcl = typeof import('rclnodejs');
let announced = false;

/** Skips the suite, printing the reason once per run. */
export function skip(ctx: Mocha.Context, why: string): never {
  if (!announced) console.log(`skipped: ${why}`);
  announced = true;
  ctx.skip();
}

/** Skips the suite without a sourced ROS 2; sets a DDS domain of this run's own. */
export function requireRos(ctx: Mocha.Context): void {
  if (!sourcedRosDistro()) skip(ctx, 'ROS 2 not sourced');
  // A DDS domain of its own, so that parallel runs (or other ROS 2 users on the machine) do not see each other.
  process.env.ROS_DOMAIN_ID ??= String(100 + (process.pid % 100));
}

/** requireRos, then rclnodejs loaded and initialised (or the suite skipped, naming why). */
export async function liveRclnodejs(ctx: Mocha.Context): Promise<Rcl> {
  requireRos(ctx);
  const r = await loadRclnodejs();
  if (!r.ok) skip(ctx, r.reason);
  const rcl = (await import('rclnodejs')).default;
  await rcl.init();
  return rcl;
}

/** The path of a ROS 2 package's executable (<prefix>/lib/<package>/<name>) in the sourced prefixes, or undefined. */
export function rosExecutable(pkg: string, name: string): string | undefined {
  for (const prefix of (process.env.AMENT_PREFIX_PATH ?? '').split(delimiter)) {
    const file = join(prefix, 'lib', pkg, name);
    if (prefix && existsSync(file)) return file;
  }
  return undefined;
}

/** The executables a controller_manager with mock hardware needs. */
export interface Ros2Control {
  controlNode: string;
  spawner: string;
  robotStatePublisher: string;
}

/** liveRclnodejs, then ros2_control's executables found in the sourced prefixes (or the suite skipped, in one line). */
export async function liveRos2Control(ctx: Mocha.Context): Promise<{ rcl: Rcl; control: Ros2Control }> {
  requireRos(ctx);
  const controlNode = rosExecutable('controller_manager', 'ros2_control_node');
  const spawner = rosExecutable('controller_manager', 'spawner');
  const robotStatePublisher = rosExecutable('robot_state_publisher', 'robot_state_publisher');
  if (!controlNode || !spawner || !robotStatePublisher) skip(ctx, 'ros2_control not sourced');
  const rcl = await liveRclnodejs(ctx);
  return { rcl, control: { controlNode, spawner, robotStatePublisher } };
}
