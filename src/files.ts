import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, InternalError, UsageError } from './errors.js';

/** Temp files currently being written; removed on SIGINT by the CLI. */
export const PENDING_TEMP_FILES = new Set<string>();

/**
 * Read a whole file, turning fs failures into InputError naming the file. Typed as Uint8Array (it is a
 * Buffer at run time) so the published .d.ts needs no Node type definitions.
 */
export function readInput(file: string): Uint8Array {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot read file'), { file, cause: err });
  }
  if (stat.isDirectory()) throw new InputError('E_READ', 'is a directory, expected a file', { file });
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot read file'), { file, cause: err });
  }
}

/** readInput decoded as UTF-8 (a BOM is kept, as Buffer#toString does). */
export function readInputText(file: string): string {
  const bytes = readInput(file);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

export function describeFsError(err: unknown, fallback: string): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory, expected a file';
    case 'ENOTDIR':
      return 'a path component is not a directory';
    default:
      return code ? `${fallback} (${code})` : fallback;
  }
}

function tempPathFor(target: string): string {
  const dir = path.dirname(path.resolve(target));
  return path.join(dir, `.qtool-tmp-${process.pid}-${randomBytes(4).toString('hex')}-${path.basename(target)}`);
}

/**
 * Check, before any work, that `target` can be written: its folder exists and it is not a folder.
 * With `force: false`, an existing file is refused too (E_OUTPUT_EXISTS, exit 2). Commands call it
 * for every output up front, so a typo in the last output path neither wastes a long run nor leaves
 * the first outputs written and the others not.
 */
export function checkOutputPath(target: string, opts: { force?: boolean } = {}): void {
  const dir = path.dirname(path.resolve(target));
  let dirStat: fs.Stats | undefined;
  try {
    dirStat = fs.statSync(dir);
  } catch {
    dirStat = undefined;
  }
  if (!dirStat) throw new InputError('E_WRITE', `cannot write: expected an existing folder ${path.dirname(target)}, got none`, { file: target });
  if (!dirStat.isDirectory()) throw new InputError('E_WRITE', `cannot write: ${path.dirname(target)} is not a folder`, { file: target });
  const stat = fs.statSync(target, { throwIfNoEntry: false });
  if (stat?.isDirectory()) throw new InputError('E_WRITE', 'is a directory, expected a file', { file: target });
  if (stat && opts.force === false) throw new UsageError('E_OUTPUT_EXISTS', 'output exists: expected a new file (pass --force to overwrite)', { file: target });
}

/**
 * Write `chunks` to `target` atomically: a temp file in the same folder, fsync, rename.
 * Chunks are written one by one so a large model is never concatenated in memory.
 */
export function writeFileAtomic(target: string, data: Uint8Array | string | readonly Uint8Array[]): void {
  const tmp = tempPathFor(target);
  PENDING_TEMP_FILES.add(tmp);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w');
    const chunks = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
    for (const chunk of chunks) writeAll(fd, chunk);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw new InputError('E_WRITE', describeFsError(err, 'cannot write file'), { file: target, cause: err });
  } finally {
    PENDING_TEMP_FILES.delete(tmp);
  }
}

function writeAll(fd: number, chunk: Uint8Array): void {
  let off = 0;
  while (off < chunk.length) {
    // fs.writeSync writes at most 2 GiB - 1 per call on some platforms.
    const n = fs.writeSync(fd, chunk, off, Math.min(chunk.length - off, 0x40000000));
    off += n;
  }
}

/** Remove temp files left by interrupted writes (called on SIGINT). */
export function removePendingTempFiles(): void {
  for (const f of PENDING_TEMP_FILES) fs.rmSync(f, { force: true });
  PENDING_TEMP_FILES.clear();
}

/**
 * Resolve `rel` inside `dir`; refuse absolute paths and anything that escapes `dir`.
 * Returns the absolute path or throws InputError E_EXTERNAL_DATA_ESCAPE.
 */
export function resolveInside(dir: string, rel: string, file?: string): string {
  if (rel.length === 0 || path.isAbsolute(rel) || path.win32.isAbsolute(rel) || rel.includes('\0')) {
    throw new InputError('E_EXTERNAL_DATA_ESCAPE', `external data location "${rel}" must be a relative path inside the model folder`, { file });
  }
  const base = path.resolve(dir);
  const resolved = path.resolve(base, rel);
  const relBack = path.relative(base, resolved);
  if (relBack.startsWith('..') || path.isAbsolute(relBack) || rel.split(/[\\/]/).includes('..')) {
    throw new InputError('E_EXTERNAL_DATA_ESCAPE', `external data location "${rel}" escapes the model folder`, { file });
  }
  if (relBack === '') {
    // "." or "./" names the folder itself, never a data file.
    throw new InputError('E_EXTERNAL_DATA_ESCAPE', `external data location "${rel}" must name a file inside the model folder, got the folder itself`, { file });
  }
  return resolved;
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function fileExists(file: string): boolean {
  try {
    fs.statSync(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * The compiled script `name` (a child-process or worker-thread entry) in the folder of the module at
 * `moduleUrl` (its import.meta.url); when that module runs from src/ (tests), the same folder under
 * dist/, which tsc fills.
 */
export function compiledScript(moduleUrl: string, name: string): string {
  const here = path.dirname(fileURLToPath(moduleUrl));
  const local = path.join(here, name);
  if (fs.existsSync(local)) return local;
  const dist = path.resolve(here, '../../dist', path.basename(here), name);
  if (fs.existsSync(dist)) return dist;
  throw new InternalError(`${name} not found next to ${here} nor in dist/ (run npm run build)`);
}
