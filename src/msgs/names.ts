// ROS 2 name resolution, as rcl expands topic and service names: '~/x' is private to the node
// (<namespace>/<node>/x), a relative name 'x' lives in the node's namespace (<namespace>/x), '/x' is absolute.
// The node and the replay both resolve names here, so a recording's topics match the live node's.

export const DEFAULT_NODE_NAME = 's2_policy';

/** The fully qualified name of `name` for node `node` in `namespace` ('' or '/' = the root namespace). */
export function resolveName(name: string, node = DEFAULT_NODE_NAME, namespace = ''): string {
  const ns = namespace === '' || namespace === '/' ? '' : `/${namespace.replace(/^\/+|\/+$/g, '')}`;
  if (name.startsWith('/')) return name;
  if (name === '~') return `${ns}/${node}`;
  if (name.startsWith('~/')) return `${ns}/${node}/${name.slice(2)}`;
  return `${ns}/${name}`;
}
