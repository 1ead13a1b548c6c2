import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, InternalError, UsageError } from './errors.js';

type TempListener = (op: 'add' | 'delete', file: string) => void;

/** A Set of temp paths that tells a listener about each change (the CLI's worker forwards them to the main thread). */
class TempRegistry extends Set<string> {
  listener?: TempListener;
  override add(file: string): this {
    super.add(file);
    this.listener?.('add', file);
    return this;
  }
  override delete(file: string): boolean {
    const had = super.delete(file);
    if (had) this.listener?.('delete', file);
    return had;
  }
}

/**
 * Temp files and folders currently in use (each named with the owning pid, see tempPathFor and
 * makeOwnTempDir); removed on SIGINT/SIGTERM by the CLI, and by sweepStaleTemp once their process is dead.
 */
export const PENDING_TEMP_FILES = new TempRegistry();

/** Be told about every temp path registered or released (one listener; undefined removes it). */
export function onTempFilesChange(listener: TempListener | undefined): void {
  PENDING_TEMP_FILES.listener = listener;
}

/**
 * Read a whole file, turning fs failures into InputError naming the file. FIFOs and pipes are read
 * sequentially (readPipeSync); devices and sockets are refused. Typed as Uint8Array (it is a Buffer
 * at run time) so the published .d.ts needs no Node type definitions.
 */
export function readInput(file: string, opts: PipeReadOptions = {}): Uint8Array {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot read file'), { file, cause: err });
  }
  if (stat.isDirectory()) throw new InputError('E_READ', 'is a directory, expected a file', { file });
  if (stat.isFIFO()) return readPipeSync(file, opts);
  if (!stat.isFile()) throw new InputError('E_READ', `is ${kindOf(stat)}: expected a regular file or a pipe`, { file });
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

/** How long a pipe may stay without a writer before reading it fails (E_READ), and its size cap. */
export const PIPE_WAIT_MS = 30_000;
export const MAX_PIPE_BYTES = 2 ** 31 - 1;

export interface PipeReadOptions {
  /** Fail when no writer has sent a byte after this long (default PIPE_WAIT_MS). */
  waitMs?: number;
  /** Fail past this many bytes (default MAX_PIPE_BYTES). */
  maxBytes?: number;
}

/**
 * Open a FIFO or pipe without blocking (a FIFO with no writer would block open(2) forever).
 * Returns the fd; read it with readPipeChunk.
 */
export function openPipe(file: string): number {
  try {
    return fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot open pipe'), { file, cause: err });
  }
}

/**
 * One non-blocking read: bytes read (> 0), 0 at end of data or while no writer is connected, or
 * -1 when a writer is connected but has sent nothing yet (EAGAIN).
 */
export function readPipeChunk(fd: number, buf: Uint8Array, file: string): number {
  try {
    return fs.readSync(fd, buf, 0, buf.length, null);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return -1;
    throw new InputError('E_READ', describeFsError(err, 'cannot read pipe'), { file, cause: err });
  }
}

export function pipeTimeoutError(file: string, waitMs: number): InputError {
  return new InputError('E_READ', `pipe: no data after ${Math.round(waitMs / 1000)} s: expected a writer (is the producing command running?)`, { file });
}

export function pipeTooLargeError(file: string, maxBytes: number): InputError {
  return new InputError('E_DATA_TOO_LARGE', `pipe: more than ${maxBytes} bytes: expected at most that (write the data to a file instead)`, { file });
}

/** Read a FIFO/pipe to its end, sequentially (no positioned reads), waiting at most `waitMs` for a first byte. */
export function readPipeSync(file: string, opts: PipeReadOptions = {}): Uint8Array {
  const waitMs = opts.waitMs ?? PIPE_WAIT_MS;
  const maxBytes = opts.maxBytes ?? MAX_PIPE_BYTES;
  const fd = openPipe(file);
  const chunks: Buffer[] = [];
  let total = 0;
  const start = Date.now();
  const pause = new Int32Array(new SharedArrayBuffer(4));
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(1 << 20);
      const n = readPipeChunk(fd, buf, file);
      if (n > 0) {
        total += n;
        if (total > maxBytes) throw pipeTooLargeError(file, maxBytes);
        chunks.push(buf.subarray(0, n));
        continue;
      }
      if (n === 0 && total > 0) break;
      if (n === 0 && Date.now() - start > waitMs) throw pipeTimeoutError(file, waitMs);
      Atomics.wait(pause, 0, 0, 10);
    }
  } finally {
    fs.closeSync(fd);
  }
  return Buffer.concat(chunks, total);
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

export interface OutputCheckOptions {
  /** Replace existing outputs (default true for the library; the CLI passes --force). */
  force?: boolean;
  /**
   * Every file the command reads (model, its external data files, data sets, tables, plans, jobs
   * file). No output may be one of them, by real path or by inode, with or without --force.
   */
  inputs?: readonly string[];
}

interface FileIdentity {
  readonly real: string;
  readonly dev?: number;
  readonly ino?: number;
}

/** Real path (of the file, or of its folder plus its name when it does not exist yet) and inode. */
function identityOf(p: string): FileIdentity {
  const abs = path.resolve(p);
  const st = fs.statSync(abs, { throwIfNoEntry: false });
  const real = realOrUndefined(abs) ?? path.join(realOrUndefined(path.dirname(abs)) ?? path.dirname(abs), path.basename(abs));
  return st ? { real, dev: st.dev, ino: st.ino } : { real };
}

function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  if (a.real === b.real) return true;
  return a.ino !== undefined && a.dev === b.dev && a.ino === b.ino;
}

/**
 * Check, before any work, that `target` can be written: its folder exists and it is not a folder.
 * With `force: false`, an existing file is refused too (E_OUTPUT_EXISTS, exit 2). Commands call it
 * for every output up front, so a typo in the last output path neither wastes a long run nor leaves
 * the first outputs written and the others not. See checkOutputPaths for the full guard.
 */
export function checkOutputPath(target: string, opts: OutputCheckOptions = {}): void {
  checkOutputPaths([target], opts);
}

/**
 * The one output-path guard: every command and the batch runner call it with all the files they
 * will write (model, its `.data` companion, copied data files, reports) and all the files they read.
 * Refused, whatever `force` says: an output that is an input (same real path, or same inode: hard
 * links and symlinks included), two outputs naming the same file, an output whose folder is missing,
 * and an existing output that is not a regular file (a folder, /dev/null, a FIFO, a socket).
 * Refused without `force`: an output that already exists. A symlink output is replaced by the new
 * file (rename), never written through. Also sweeps stale temp files of dead qtool processes from
 * the outputs' folders and the system temp folder (sweepStaleTemp).
 */
export function checkOutputPaths(targets: readonly (string | undefined)[], opts: OutputCheckOptions = {}): void {
  const outs = targets.filter((t): t is string => typeof t === 'string' && t.length > 0);
  // Every command passes here first: the place to sweep temp files a killed run left where we write.
  sweepStaleTemp(outs.map((t) => path.dirname(path.resolve(t))));
  const inputs = (opts.inputs ?? []).filter((p) => p && p !== '<bytes>' && p !== 'random').map((p) => ({ p, id: identityOf(p) }));
  const seen: { p: string; id: FileIdentity }[] = [];
  for (const target of outs) {
    const dir = path.dirname(path.resolve(target));
    const dirStat = fs.statSync(dir, { throwIfNoEntry: false });
    if (!dirStat) throw new InputError('E_WRITE', `cannot write: expected an existing folder ${path.dirname(target)}, got none`, { file: target });
    if (!dirStat.isDirectory()) throw new InputError('E_WRITE', `cannot write: ${path.dirname(target)} is not a folder`, { file: target });
    const lst = fs.lstatSync(target, { throwIfNoEntry: false });
    const st = fs.statSync(target, { throwIfNoEntry: false });
    if (st?.isDirectory()) throw new InputError('E_WRITE', 'is a directory, expected a file', { file: target });
    if (st && !st.isFile()) throw new InputError('E_WRITE', `is ${kindOf(st)}: expected a regular file to replace (qtool never writes into devices or pipes)`, { file: target });
    const id = identityOf(target);
    for (const input of inputs) {
      if (sameFile(id, input.id)) {
        const how = input.id.real === path.resolve(input.p) && id.real === path.resolve(target) ? '' : ` (${input.id.real})`;
        throw new UsageError('E_OUTPUT_IS_INPUT', `output would overwrite the input ${input.p}${how}: expected a different output path (--force never replaces an input)`, { file: target });
      }
    }
    for (const other of seen) {
      if (sameFile(id, other.id)) throw new UsageError('E_OPTION_CONFLICT', `two outputs name the same file (${other.p}): expected distinct output paths`, { file: target });
    }
    seen.push({ p: target, id });
    if ((lst || st) && opts.force === false) throw new UsageError('E_OUTPUT_EXISTS', 'output exists: expected a new file (pass --force to overwrite)', { file: target });
  }
}

/**
 * Write `chunks` to `target` atomically: a temp file in the same folder, fsync, rename.
 * Chunks are written one by one so a large model is never concatenated in memory.
 */
export function writeFileAtomic(target: string, data: Uint8Array | string | readonly Uint8Array[]): void {
  refuseSpecialTarget(target);
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

/** Renaming over a device, FIFO or socket would replace it (as root: /dev/null becomes a file). */
export function refuseSpecialTarget(target: string): void {
  const lst = fs.lstatSync(target, { throwIfNoEntry: false });
  if (lst && !lst.isFile() && !lst.isSymbolicLink()) throw new InputError('E_WRITE', `is ${kindOf(lst)}: expected a regular file to replace`, { file: target });
}

function writeAll(fd: number, chunk: Uint8Array): void {
  let off = 0;
  while (off < chunk.length) {
    // fs.writeSync writes at most 2 GiB - 1 per call on some platforms.
    const n = fs.writeSync(fd, chunk, off, Math.min(chunk.length - off, 0x40000000));
    off += n;
  }
}

/** Remove temp files and folders left by interrupted work (called on SIGINT/SIGTERM). */
export function removePendingTempFiles(): void {
  for (const f of PENDING_TEMP_FILES) {
    try {
      fs.rmSync(f, { force: true, recursive: true });
    } catch {
      // best effort: sweepStaleTemp removes it on a later start
    }
  }
  PENDING_TEMP_FILES.clear();
}

/**
 * A fresh folder in the system temp folder, named `qtool-<kind>-<pid>-XXXXXX` and registered as
 * pending (so Ctrl-C removes it and a later start sweeps it when this process died). Remove it with
 * removeOwnTempDir.
 */
export function makeOwnTempDir(kind: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `qtool-${kind}-${process.pid}-`));
  PENDING_TEMP_FILES.add(dir);
  return dir;
}

export function removeOwnTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  PENDING_TEMP_FILES.delete(dir);
}

/** `.qtool-tmp-<pid>-…` next to outputs; `qtool-<kind>-<pid>-…` in the system temp folder. */
const STALE_TEMP_PATTERNS = [/^\.qtool-tmp-(\d+)-/, /^qtool-[a-z]+-(\d+)-/];

function isProcessAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove temp files and folders that qtool processes which are no longer running left in `dirs`
 * (killed with SIGKILL, power loss): names carry the owner's pid, so a live run's files are kept.
 * The system temp folder is always swept. Returns the removed paths. Never throws.
 */
export function sweepStaleTemp(dirs: readonly string[] = []): string[] {
  const removed: string[] = [];
  const seen = new Set<string>();
  for (const d of [os.tmpdir(), ...dirs]) {
    const dir = path.resolve(d);
    if (seen.has(dir)) continue;
    seen.add(dir);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      for (const re of STALE_TEMP_PATTERNS) {
        const m = re.exec(name);
        if (!m) continue;
        if (re === STALE_TEMP_PATTERNS[1] && dir !== path.resolve(os.tmpdir())) continue;
        const pid = Number(m[1]);
        if (!Number.isSafeInteger(pid) || pid <= 0 || isProcessAlive(pid)) continue;
        const p = path.join(dir, name);
        try {
          fs.rmSync(p, { recursive: true, force: true });
          removed.push(p);
        } catch {
          // not ours to remove (permissions): leave it
        }
      }
    }
  }
  return removed;
}

/** Where a path resolved by resolveInside may really live, besides `dir` itself. */
export interface ResolveInsideOptions {
  /** Further folders whose real path counts as inside (the real folder of a symlinked model file). */
  roots?: readonly string[];
  /**
   * 'read' (default): an existing target must be a regular file whose real path is inside;
   * 'write': the target's real folder must be inside, and an existing target must be a regular file, not a link.
   */
  purpose?: 'read' | 'write';
}

function escape(rel: string, why: string, file?: string): InputError {
  return new InputError('E_EXTERNAL_DATA_ESCAPE', `external data location "${rel}" ${why}`, { file });
}

function realOrUndefined(p: string): string | undefined {
  try {
    return fs.realpathSync(p);
  } catch {
    return undefined;
  }
}

function isWithin(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Resolve `rel` inside `dir`; refuse absolute paths and anything that escapes `dir`, lexically and
 * through links: the real path (symlinks of the file or of any folder on the way resolved) must lie
 * inside the real path of `dir` (or of one of `opts.roots`), and an existing target must be a regular
 * file (no FIFO, device, socket or folder). Returns the real absolute path when the target exists,
 * the lexical one otherwise (the caller reports a missing file). Throws InputError E_EXTERNAL_DATA_ESCAPE.
 */
export function resolveInside(dir: string, rel: string, file?: string, opts: ResolveInsideOptions = {}): string {
  if (rel.length === 0 || path.isAbsolute(rel) || path.win32.isAbsolute(rel) || rel.includes('\0')) {
    throw escape(rel, 'must be a relative path inside the model folder', file);
  }
  const base = path.resolve(dir);
  const resolved = path.resolve(base, rel);
  const relBack = path.relative(base, resolved);
  if (relBack.startsWith('..') || path.isAbsolute(relBack) || rel.split(/[\\/]/).includes('..')) {
    throw escape(rel, 'escapes the model folder', file);
  }
  if (relBack === '') {
    // "." or "./" names the folder itself, never a data file.
    throw escape(rel, 'must name a file inside the model folder, got the folder itself', file);
  }
  const roots = [base, ...(opts.roots ?? [])].map((r) => realOrUndefined(r) ?? path.resolve(r));
  const inside = (p: string) => roots.some((r) => isWithin(r, p));
  const lst = fs.lstatSync(resolved, { throwIfNoEntry: false });
  if (!lst) {
    // Missing: the nearest existing folder on the way must still be inside (no folder link leading out).
    let up = path.dirname(resolved);
    while (!fs.existsSync(up) && up !== path.dirname(up)) up = path.dirname(up);
    const realUp = realOrUndefined(up);
    if (realUp && !inside(realUp)) throw escape(rel, `leads out of the model folder through a link (to ${realUp})`, file);
    return resolved;
  }
  if (opts.purpose === 'write' && lst.isSymbolicLink()) throw escape(rel, 'is a symbolic link: refusing to write through it', file);
  const real = realOrUndefined(resolved);
  if (!real) throw escape(rel, 'is a dangling symbolic link', file);
  if (!inside(real)) throw escape(rel, `leads out of the model folder through a link (to ${real})`, file);
  const st = fs.statSync(real);
  if (st.isDirectory()) throw new InputError('E_EXTERNAL_DATA', `external data location "${rel}": expected a file, got a folder`, { file });
  if (!st.isFile()) throw escape(rel, `is ${kindOf(st)}: expected a regular file`, file);
  return real;
}

/** "a folder", "a FIFO", … for messages about non-regular files. */
/** The parts of fs.Stats that kindOf reads (structural, so the published .d.ts needs no @types/node). */
export interface FileKindStats {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
  isSymbolicLink(): boolean;
  isFile(): boolean;
}

export function kindOf(st: FileKindStats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return st.isFile() ? 'a regular file' : 'not a regular file';
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
