// Every output (file or folder) is written under a temporary name in its target folder and renamed into place on
// success, so a failed run leaves no partial output and an existing one untouched; and no output may be an input.
import { closeSync, existsSync, mkdirSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync, type Stats } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { UserError } from '../errors.js';

/** A path and how the user named it ('--out', '--bag', 'policy.model'), for messages. */
export interface NamedPath {
  path: string;
  what: string;
}

/** Temporary outputs not yet committed or aborted, removed if the process exits early. */
const pending = new Set<string>();
let exitHookInstalled = false;

function track(tmp: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const p of pending) rmSync(p, { recursive: true, force: true });
    });
  }
  pending.add(tmp);
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const byCode: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    ENOENT: 'no such file or folder',
    ENOTDIR: 'a path component is not a folder',
    EISDIR: 'is a folder',
    ENAMETOOLONG: 'name too long',
  };
  return (err.code && byCode[err.code]) ?? (e instanceof Error ? e.message.split('\n')[0] : String(e));
}

/** Where a temporary sibling of `path` goes: same folder (so the rename cannot cross file systems), hidden name. */
function tempName(path: string): string {
  const rand = Math.random().toString(36).slice(2, 8);
  return join(dirname(path), `.${basename(path)}.${process.pid}.${rand}.tmp`);
}

/**
 * Checks that `path` can become an output of the given kind: its folder exists and is a folder, and the path is not
 * already the other kind. A UserError naming `what` otherwise. Nothing is created.
 */
export function checkOutputPath(path: string, kind: 'file' | 'folder', what = path): void {
  const parent = dirname(resolve(path));
  const ps = statOrUndefined(parent);
  const label = what === path ? path : `${what} ${path}`;
  if (!ps) throw new UserError(`${label}: cannot write: folder ${dirname(path)} does not exist`);
  if (!ps.isDirectory()) throw new UserError(`${label}: cannot write: ${dirname(path)} is not a folder`);
  const s = statOrUndefined(path);
  if (s && kind === 'file' && s.isDirectory()) throw new UserError(`${label}: is a folder; give a file name`);
  if (s && kind === 'folder' && !s.isDirectory()) throw new UserError(`${label}: is a file; give a folder`);
}

/** The real path of `path`, or of its nearest existing ancestor joined with the rest (for paths not yet created). */
function realOrProjected(path: string): string {
  const abs = resolve(path);
  let head = abs;
  const tail: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...tail.reverse());
    } catch {
      const up = dirname(head);
      if (up === head) return abs;
      tail.push(basename(head));
      head = up;
    }
  }
}

function inside(child: string, folder: string): boolean {
  const r = relative(folder, child);
  return r === '' || (!r.startsWith('..') && !r.startsWith(sep) && r !== '..');
}

/**
 * Refuses, before anything is opened, an output that is one of the inputs: the same real path (through symbolic
 * links), the same file (hard links: device and inode), an input inside an output folder (replaced whole on success),
 * or an output inside an input folder. Inputs that do not exist are ignored here (their reader names them).
 */
export function refuseAliases(outputs: readonly NamedPath[], inputs: readonly NamedPath[]): void {
  for (const o of outputs) {
    const oReal = realOrProjected(o.path);
    const os = statOrUndefined(o.path);
    for (const i of inputs) {
      const is = statOrUndefined(i.path);
      if (!is) continue;
      const iReal = realOrProjected(i.path);
      const same = oReal === iReal || (os !== undefined && os.dev === is.dev && os.ino === is.ino);
      if (same) throw new UserError(`${o.what} ${o.path}: is the input ${i.what} ${i.path}; writing it would destroy the input — choose another output`);
      if (is.isDirectory() ? inside(oReal, iReal) : false) {
        throw new UserError(`${o.what} ${o.path}: lies inside the input folder ${i.what} ${i.path}; choose an output outside it`);
      }
      if (os?.isDirectory() && inside(iReal, oReal)) {
        throw new UserError(`${o.what} ${o.path}: holds the input ${i.what} ${i.path}, and the output folder is replaced whole; choose another output folder`);
      }
    }
  }
}

/** An output file being written under a temporary name; commit() renames it into place, abort() removes it. */
export class AtomicFile {
  private done = false;
  private constructor(
    readonly path: string,
    /** Write here; the file does not exist yet. */
    readonly tmp: string,
  ) {}

  /** Checks the target (UserError naming `what`) and reserves a temporary name beside it. */
  static begin(path: string, what = path): AtomicFile {
    checkOutputPath(path, 'file', what);
    const tmp = tempName(path);
    track(tmp);
    return new AtomicFile(path, tmp);
  }

  /** Moves the finished temporary file onto the target (replacing an existing file in one step). */
  commit(): void {
    if (this.done) return;
    this.done = true;
    pending.delete(this.tmp);
    try {
      renameSync(this.tmp, this.path);
    } catch (e) {
      rmSync(this.tmp, { force: true });
      throw new UserError(`${this.path}: cannot write: ${reason(e)}`);
    }
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    pending.delete(this.tmp);
    rmSync(this.tmp, { force: true });
  }
}

/**
 * An output folder being written under a temporary name; commit() puts it in place of the target, replacing an
 * existing folder whole (moved aside first, removed after), abort() removes it.
 */
export class AtomicDir {
  private done = false;
  private constructor(
    readonly path: string,
    /** Write the folder's files here; the folder exists and is empty. */
    readonly tmp: string,
  ) {}

  static begin(path: string, what = path): AtomicDir {
    checkOutputPath(path, 'folder', what);
    const tmp = tempName(path);
    try {
      mkdirSync(tmp);
    } catch (e) {
      throw new UserError(`${what === path ? path : `${what} ${path}`}: cannot write: ${reason(e)}`);
    }
    track(tmp);
    return new AtomicDir(path, tmp);
  }

  commit(): void {
    if (this.done) return;
    this.done = true;
    pending.delete(this.tmp);
    let aside: string | undefined;
    try {
      if (existsSync(this.path)) {
        aside = tempName(this.path).replace(/\.tmp$/, '.old');
        renameSync(this.path, aside);
      }
      renameSync(this.tmp, this.path);
    } catch (e) {
      if (aside !== undefined && !existsSync(this.path)) renameSync(aside, this.path);
      rmSync(this.tmp, { recursive: true, force: true });
      throw new UserError(`${this.path}: cannot write: ${reason(e)}`);
    }
    if (aside !== undefined) rmSync(aside, { recursive: true, force: true });
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    pending.delete(this.tmp);
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** Writes `data` to `path` atomically (temporary name, fsync, rename). */
export function writeFileAtomic(path: string, data: string | Uint8Array, what = path): void {
  const out = AtomicFile.begin(path, what);
  try {
    const fd = openSync(out.tmp, 'wx');
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let done = 0;
      while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    out.abort();
    if (e instanceof UserError) throw e;
    throw new UserError(`${what === path ? path : `${what} ${path}`}: cannot write: ${reason(e)}`);
  }
  out.commit();
}

/** Runs `fill(tmp)` to produce the file at `tmp`, then commits it; any failure removes it and rethrows. */
export async function withAtomicFile<T>(path: string, fill: (tmp: string) => Promise<T> | T, what = path): Promise<T> {
  const out = AtomicFile.begin(path, what);
  try {
    const result = await fill(out.tmp);
    out.commit();
    return result;
  } catch (e) {
    out.abort();
    throw e;
  }
}

/** Runs `fill(tmpDir)` to fill a fresh folder, then puts it in place of `path`; any failure removes it and rethrows. */
export async function withAtomicDir<T>(path: string, fill: (tmpDir: string) => Promise<T> | T, what = path): Promise<T> {
  const out = AtomicDir.begin(path, what);
  try {
    const result = await fill(out.tmp);
    out.commit();
    return result;
  } catch (e) {
    out.abort();
    throw e;
  }
}

/** For tests: temporary outputs currently open in this process. */
export function pendingOutputs(): readonly string[] {
  return [...pending];
}
