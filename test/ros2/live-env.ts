// What every live ROS 2 test needs first: a sourced ROS 2 (and, for tests that talk over topics, rclnodejs built
// against it), or a skip announced once per run; a DDS domain of the run's own.
import { loadRclnodejs, sourcedRosDistro } from '../../src/ros/detect.js';

type Rcl = typeof import('rclnodejs');
let announced = false;

function skip(ctx: Mocha.Context, why: string): never {
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
