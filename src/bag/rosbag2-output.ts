// Output recordings (one .mcap or a rosbag2 folder) written under a temporary sibling name and renamed into place on
// success: a failed run leaves nothing, and an existing output is replaced only when asked to and only at the end.
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { isMcapFileName } from './rosbag2-writer.js';

/**
 * Runs `fill(tmp, name)` to write the output at the temporary path `tmp` (ending in .mcap for a file output; a folder
 * path not yet created otherwise; `name` is the final folder name that a rosbag2 folder's files are named after),
 * then renames it to `out`.
 */
export async function writeRecordingOutput<T>(out: string, force: boolean, fill: (tmp: string, name: string) => Promise<T>): Promise<T> {
  const folder = !isMcapFileName(out);
  const parent = dirname(out);
  if (!existsSync(parent) || !statSync(parent).isDirectory()) throw new UserError(`${out}: cannot write: folder ${parent} does not exist`);
  if (existsSync(out)) {
    if (!force) throw new UserError(`${out} exists; pass --force to overwrite`);
    const isDir = statSync(out).isDirectory();
    if (folder && !isDir) throw new UserError(`${out}: is a file, and an output without .mcap is a rosbag2 folder; remove it or name the output *.mcap`);
    if (!folder && isDir) throw new UserError(`${out}: is a folder; give a file name`);
  }
  const rand = Math.random().toString(36).slice(2, 8);
  const tmp = join(parent, `.${basename(out)}.${process.pid}.${rand}.tmp${folder ? '' : '.mcap'}`);
  let result: T;
  try {
    result = await fill(tmp, basename(out));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  let aside: string | undefined;
  if (existsSync(out)) {
    aside = join(parent, `.${basename(out)}.${process.pid}.${rand}.old`);
    renameSync(out, aside);
  }
  try {
    renameSync(tmp, out);
  } catch (e) {
    if (aside !== undefined) renameSync(aside, out);
    rmSync(tmp, { recursive: true, force: true });
    throw new UserError(`${out}: cannot write: ${(e as Error).message.split('\n')[0]}`);
  }
  if (aside !== undefined) rmSync(aside, { recursive: true, force: true });
  return result;
}
