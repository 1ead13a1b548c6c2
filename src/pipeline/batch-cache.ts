/**
 * The content-addressed result cache of `qtool batch --cache DIR`, shared by shards and re-runs (a
 * mounted volume, a CI cache folder).
 *
 * Key: sha256 of a small JSON document naming the content, never the paths, of everything a job's
 * result depends on: the model bytes and the external-data files it names, the data bytes (calibration
 * data or table, plan, eval data and labels, gate data, labels and reference), the recipe and gate as
 * written minus their paths, the qtool and onnxruntime versions, and the output's file name when the
 * recipe writes external data (the model names its `.data` file).
 *
 * Layout: `DIR/<key[0..2]>/<key>/` holds the output files and `entry.json` (their sha256 and sizes and
 * the job's outcome). An entry is built in `DIR/.tmp/<host>-<pid>-<random>/` and renamed into place
 * in one step, so it appears whole or not at all; when two writers finish the same key, the first
 * rename wins and the second writer drops its copy. A hit is copied out through a temp file whose
 * bytes are hashed on the way and compared with `entry.json` before the rename, so a damaged entry
 * is never served: it is moved aside and the job runs.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseDocument, stringifyDocument } from '../documents/index.js';
import { InputError } from '../errors.js';
import { describeFsError } from '../files.js';
import { ortVersion } from '../runtime/index.js';
import { externalDataFiles } from './batch-shard.js';

export const CACHE_ENTRY_FILE = 'entry.json';

/** The qtool version (from its package.json), part of every cache key. */
export function qtoolVersion(): string {
  const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../package.json');
  return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
}

/** What a job's result depends on, by content: the document whose sha256 is the cache key. */
export interface CacheKeyInput {
  qtool: string;
  onnxruntime: string;
  model: { sha256: string; externalData: { location: string; sha256: string }[] };
  /** Recipe and gate as resolved, with every path field replaced by the sha256 of its content. */
  recipe: Record<string, unknown>;
  gate: Record<string, unknown> | null;
  /** The output's file name, only when the recipe writes external data (the model names `<name>.data`). */
  outputName: string | null;
}

/** The inputs of cacheKeyInput(): a resolved job (absolute paths), duck-typed to keep this module free of batch.ts. */
export interface CacheableJob {
  model: string;
  output: string;
  recipe: Record<string, unknown>;
  gate?: Record<string, unknown>;
}

/** Recipe and gate fields that name files: their content goes into the key, not their path. */
const RECIPE_PATH_FIELDS = ['data', 'calib', 'plan', 'eval', 'evalLabels'] as const;
const GATE_PATH_FIELDS = ['data', 'labels', 'reference'] as const;

/** sha256 of a file, or of a folder's files (names and contents, sorted); 'missing' when absent. */
export function hashContent(p: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(p);
  } catch {
    return 'missing';
  }
  const h = createHash('sha256');
  if (stat.isDirectory()) {
    for (const name of fs.readdirSync(p).sort()) h.update(`${name}\0${hashContent(path.join(p, name))}\n`);
    return h.digest('hex');
  }
  const fd = fs.openSync(p, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

function withContentHashes(fields: Record<string, unknown>, pathFields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(fields).sort()) {
    const v = fields[k];
    if (v === undefined) continue;
    out[k] = pathFields.includes(k) && typeof v === 'string' && v !== 'random' ? { sha256: hashContent(v) } : v;
  }
  return out;
}

export function cacheKeyInput(job: CacheableJob, versions: { qtool: string; onnxruntime: string } = { qtool: qtoolVersion(), onnxruntime: ortVersion() }): CacheKeyInput {
  const dir = path.dirname(job.model);
  const externalData = externalDataFiles(job.model).map((f) => ({ location: path.relative(dir, f).split(path.sep).join('/'), sha256: hashContent(f) }));
  return {
    qtool: versions.qtool,
    onnxruntime: versions.onnxruntime,
    model: { sha256: hashContent(job.model), externalData },
    recipe: withContentHashes(job.recipe, RECIPE_PATH_FIELDS),
    gate: job.gate ? withContentHashes(job.gate, GATE_PATH_FIELDS) : null,
    outputName: job.recipe.externalData === true ? path.basename(job.output) : null,
  };
}

/** The cache key of a job: sha256 of its CacheKeyInput as stable JSON. */
export function cacheKey(input: CacheKeyInput): string {
  return createHash('sha256').update(stringifyDocument({ kind: 'qtool.cache-key', version: 1, ...input })).digest('hex');
}

const CacheFileSchema = z.object({
  /** Path inside the entry ('/'-separated, no '..'); the first file is the output model, the others keep the relative paths the model names (external data). */
  name: z
    .string()
    .min(1)
    .refine((n) => !n.startsWith('/') && !n.includes('\\') && !n.split('/').includes('..') && !n.split('/').includes(''), 'expected a relative path inside the entry'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  sizeBytes: z.number().int().nonnegative(),
});

export const CacheEntrySchema = z.object({
  kind: z.literal('qtool.cache-entry'),
  version: z.literal(1),
  key: z.string().regex(/^[0-9a-f]{64}$/),
  files: z.array(CacheFileSchema).min(1),
  /** The job's outcome when it ran (outputBytes, sizeRatio, gate), returned again on a hit. */
  outcome: z.record(z.string(), z.unknown()),
});
export type CacheEntry = z.infer<typeof CacheEntrySchema>;

export function entryDir(cacheDir: string, key: string): string {
  return path.join(cacheDir, key.slice(0, 2), key);
}

const tmpRoot = (cacheDir: string) => path.join(cacheDir, '.tmp');

/** A name for this process's temp folders: host and pid (to sweep them once the process is dead) and a random part. */
export function ownedTempName(): string {
  return `${os.hostname().replace(/[^A-Za-z0-9.-]/g, '_')}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Create the cache folder (and its temp folder); refuse a path that is a file. */
export function openCache(cacheDir: string): void {
  try {
    fs.mkdirSync(tmpRoot(cacheDir), { recursive: true });
  } catch (err) {
    throw new InputError('E_WRITE', `--cache: ${describeFsError(err, 'cannot create the cache folder')}`, { file: cacheDir, cause: err });
  }
  sweepOwnedTemp(tmpRoot(cacheDir));
}

/** Read an entry's manifest; undefined when there is no entry (or it is unreadable: treated as a miss). */
export function lookupCache(cacheDir: string, key: string): CacheEntry | undefined {
  const file = path.join(entryDir(cacheDir, key), CACHE_ENTRY_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const entry = parseDocument(JSON.parse(text), CacheEntrySchema, file);
    return entry.key === key ? entry : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Copy a hit's files into `targetDir` (the first as `modelName`), each through a temp file hashed on
 * the way and renamed only when its sha256 and size match the entry. Returns the written paths, or
 * undefined when the entry is damaged (then it is moved aside, so the next lookup misses).
 */
export function restoreFromCache(cacheDir: string, entry: CacheEntry, targetDir: string, modelName: string): string[] | undefined {
  const src = entryDir(cacheDir, entry.key);
  const written: string[] = [];
  for (const [i, f] of entry.files.entries()) {
    const target = path.join(targetDir, ...(i === 0 ? [modelName] : f.name.split('/')));
    const tmp = path.join(path.dirname(target), `.qtool-tmp-${process.pid}-${randomBytes(4).toString('hex')}-${path.basename(target)}`);
    let ok = false;
    try {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      ok = copyVerified(path.join(src, ...f.name.split('/')), tmp, f.sha256, f.sizeBytes);
      if (ok) fs.renameSync(tmp, target);
    } catch {
      ok = false;
    } finally {
      if (!ok) fs.rmSync(tmp, { force: true });
    }
    if (!ok) {
      for (const w of written) fs.rmSync(w, { force: true });
      discardEntry(cacheDir, entry.key);
      return undefined;
    }
    written.push(target);
  }
  return written;
}

/** Copy `from` to `to` hashing the bytes; true when sha256 and size match (`to` fsynced), else false. */
function copyVerified(from: string, to: string, sha256: string, sizeBytes: number): boolean {
  const h = createHash('sha256');
  const inFd = fs.openSync(from, 'r');
  let outFd: number | undefined;
  let total = 0;
  try {
    outFd = fs.openSync(to, 'wx');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = fs.readSync(inFd, buf, 0, buf.length, null)) > 0; ) {
      h.update(buf.subarray(0, n));
      for (let off = 0; off < n; ) off += fs.writeSync(outFd, buf, off, n - off);
      total += n;
    }
    fs.fsyncSync(outFd);
  } finally {
    fs.closeSync(inFd);
    if (outFd !== undefined) fs.closeSync(outFd);
  }
  return total === sizeBytes && h.digest('hex') === sha256;
}

/** Move a damaged entry aside (atomically, so readers either see it whole or not) and delete it. */
function discardEntry(cacheDir: string, key: string): void {
  const trash = path.join(tmpRoot(cacheDir), `${ownedTempName()}-discard`);
  try {
    fs.renameSync(entryDir(cacheDir, key), trash);
  } catch {
    return; // already gone (another reader discarded it)
  }
  fs.rmSync(trash, { recursive: true, force: true });
}

/**
 * Store a finished job's files (the output model first; the others under their paths relative to
 * `baseDir`) under `key`. Returns 'stored', or 'exists' when another writer stored the key first
 * (its entry is kept; ours is dropped).
 */
export function storeInCache(cacheDir: string, key: string, files: readonly string[], baseDir: string, outcome: Record<string, unknown>): 'stored' | 'exists' {
  const final = entryDir(cacheDir, key);
  if (fs.existsSync(path.join(final, CACHE_ENTRY_FILE))) return 'exists';
  const tmp = path.join(tmpRoot(cacheDir), ownedTempName());
  try {
    fs.mkdirSync(tmp, { recursive: true });
    const manifest: CacheEntry = { kind: 'qtool.cache-entry', version: 1, key, files: [], outcome };
    for (const [i, f] of files.entries()) {
      const name = i === 0 ? 'model.onnx' : path.relative(baseDir, f).split(path.sep).join('/');
      const stat = fs.statSync(f);
      const sha256 = hashContent(f);
      const dst = path.join(tmp, ...name.split('/'));
      fs.mkdirSync(path.dirname(dst), { recursive: true });
      fs.copyFileSync(f, dst);
      const fd = fs.openSync(dst, 'r');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      manifest.files.push({ name, sha256, sizeBytes: stat.size });
    }
    fs.writeFileSync(path.join(tmp, CACHE_ENTRY_FILE), stringifyDocument(manifest));
    const fd = fs.openSync(path.join(tmp, CACHE_ENTRY_FILE), 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.mkdirSync(path.dirname(final), { recursive: true });
    try {
      fs.renameSync(tmp, final);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return 'exists';
      throw err;
    }
    return 'stored';
  } catch (err) {
    throw new InputError('E_WRITE', `--cache: ${describeFsError(err, 'cannot store a result')}`, { file: cacheDir, cause: err });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** True when `pid` is a live process on this host (EPERM: alive, someone else's). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Folders from other hosts are removed only after this long (their pid cannot be checked from here). */
export const FOREIGN_TEMP_MAX_AGE_MS = 24 * 3600 * 1000;

/**
 * Remove the temp folders (named by ownedTempName(), optionally after `prefix`) in `dir` whose
 * process is dead: same host and the pid gone, or another host's and older than a day.
 */
export function sweepOwnedTemp(dir: string, prefix = ''): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '_');
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const m = /^(.*)-(\d+)-[0-9a-f]{12}(?:-discard)?$/.exec(n.slice(prefix.length));
    if (!m) continue;
    const p = path.join(dir, n);
    const stale = m[1] === host ? !isProcessAlive(Number(m[2])) : Date.now() - (fs.statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) > FOREIGN_TEMP_MAX_AGE_MS;
    if (stale) fs.rmSync(p, { recursive: true, force: true });
  }
}
