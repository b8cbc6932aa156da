// Is a ROS 2 usable here? A sourced distribution and an rclnodejs built against it. No rclnodejs import at load time.

/** The sourced ROS 2 distribution, or undefined when none is sourced. */
export function sourcedRosDistro(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.ROS_DISTRO && env.AMENT_PREFIX_PATH ? env.ROS_DISTRO : undefined;
}

/** Loads rclnodejs if ROS 2 is sourced and the binding is built; otherwise says why not, in one line. */
export async function loadRclnodejs(): Promise<{ ok: true } | { ok: false; reason: string }> {
  const distro = sourcedRosDistro();
  if (!distro) return { ok: false, reason: 'ROS 2 not sourced (source /opt/ros/<distro>/setup.bash first)' };
  try {
    await import('rclnodejs');
    return { ok: true };
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return { ok: false, reason: `rclnodejs is not built for ROS 2 ${distro} (run: npm rebuild rclnodejs --ignore-scripts=false): ${msg}` };
  }
}
