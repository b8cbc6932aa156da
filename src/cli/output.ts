// The one rule for what a command writes, enforced here for every command: the output's folder must exist, it may
// not be one of the inputs, and an existing output is refused unless --force (then it is replaced only on success,
// by the atomic writers of src/io/atomic.ts).
import { readdirSync, statSync, type Stats } from 'node:fs';
import { UserError } from '../errors.js';
import { checkOutputPath, refuseAliases, type NamedPath } from '../io/atomic.js';

export interface OutputClaim extends NamedPath {
  kind: 'file' | 'folder';
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Checks every output before anything is read or computed: a UserError naming the path and --force for an existing
 * file or non-empty folder (an empty folder holds nothing to lose). `inputs` are the paths the command reads.
 */
export function claimOutputs(command: string, outputs: readonly OutputClaim[], force: boolean, inputs: readonly NamedPath[] = []): void {
  // An output that is an input is the worst mistake: said first, whatever else is wrong with the path.
  refuseAliases(outputs, inputs);
  for (const o of outputs) checkOutputPath(o.path, o.kind, o.what);
  if (force) return;
  for (const o of outputs) {
    const s = statOrUndefined(o.path);
    if (s === undefined) continue;
    if (s.isDirectory()) {
      if (readdirSync(o.path).length > 0) throw new UserError(`${command}: ${o.what} ${o.path} exists and is not empty; pass --force to replace it`);
    } else throw new UserError(`${command}: ${o.what} ${o.path} exists; pass --force to replace it`);
  }
}
