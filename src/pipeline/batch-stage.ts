/**
 * How one batch job produces its output files without ever leaving a partial one, whoever dies when:
 * the files are made in a private staging folder next to the output (`.qtool-stage-<host>-<pid>-<random>/`,
 * same file system, so the final step is a rename), either by the job's child process or copied from
 * the result cache, and only the live batch process publishes them (renames them into place) once
 * the child has answered. A child orphaned by a kill -9 of the batch process exits on its own
 * (child-watch.ts) and, even while still busy, can only ever write into its staging folder, which the
 * next run in that folder sweeps (the pid in its name is dead).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BatchJobOutcome, ResolvedJob } from './batch.js';
import { cacheKey, cacheKeyInput, lookupCache, ownedTempName, restoreFromCache, storeInCache, sweepOwnedTemp } from './batch-cache.js';
import { InternalError, toQtoolError } from '../errors.js';
import { childScript, runChild } from './child-process.js';

export const STAGE_PREFIX = '.qtool-stage-';

export interface Staging {
  dir: string;
  /** Where the job writes its output model (same file name as the real output). */
  output: string;
}

/** A fresh staging folder next to `output`. */
export function createStaging(output: string): Staging {
  const dir = path.join(path.dirname(output), `${STAGE_PREFIX}${ownedTempName()}`);
  fs.mkdirSync(dir, { recursive: true });
  return { dir, output: path.join(dir, path.basename(output)) };
}

export function removeStaging(stage: Staging): void {
  fs.rmSync(stage.dir, { recursive: true, force: true });
}

/**
 * The finished files in a staging folder: the output model first, then its companions (external
 * data, possibly in subfolders, as the model names them) by relative path; temp files are skipped.
 */
export function stagedFiles(stage: Staging): string[] {
  const model = path.basename(stage.output);
  const rels: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(stage.dir, rel), { withFileTypes: true })) {
      if (e.name.startsWith('.qtool-tmp-')) continue;
      const r = rel ? path.join(rel, e.name) : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) rels.push(r);
    }
  };
  walk('');
  if (!rels.includes(model)) return [];
  return [model, ...rels.filter((n) => n !== model).sort()].map((n) => path.join(stage.dir, n));
}

/**
 * Rename staged files (paths under `stageDir`) to the same relative paths under `outDir`:
 * companions first, the model last, so a reader never sees the new model before its data.
 * Returns the final paths.
 */
export function publishStaged(files: readonly string[], stageDir: string, outDir: string): string[] {
  const finalOf = (f: string) => path.join(outDir, path.relative(stageDir, f));
  for (const f of [...files.slice(1), files[0]]) {
    fs.mkdirSync(path.dirname(finalOf(f)), { recursive: true });
    fs.renameSync(f, finalOf(f));
  }
  return files.map(finalOf);
}

/** Remove the staging folders of dead batch processes in these folders. */
export function sweepStaleStaging(dirs: Iterable<string>): void {
  for (const d of new Set(dirs)) sweepOwnedTemp(d, STAGE_PREFIX);
}

export interface StagedRun {
  outcome: BatchJobOutcome;
  /** The published files, the output model first. */
  files: string[];
  cache?: 'hit' | 'stored';
  /** Why a finished result could not be stored (the job itself succeeded). */
  cacheProblem?: string;
}

/**
 * Produce a job's output: from the cache when `cacheDir` holds its key, else by running the job in
 * its own child process; then store a passing result in the cache and publish the files. A job whose
 * gate failed is published (its output was written, like `qtool eval` after `quantize`) but not cached.
 */
export async function runJobStaged(
  job: ResolvedJob,
  opts: {
    cacheDir?: string;
    /** false: recompute even on a hit (`--force`); the result is still offered to the cache. */
    useHits?: boolean;
    signal?: AbortSignal;
    /** Events (progress) the job's child sends while it runs. */
    onEvent?: (event: unknown) => void;
  },
): Promise<StagedRun> {
  const stage = createStaging(job.output);
  try {
    const key = opts.cacheDir ? cacheKey(cacheKeyInput(job)) : undefined;
    const entry = key && opts.useHits !== false ? lookupCache(opts.cacheDir!, key) : undefined;
    if (entry) {
      const restored = restoreFromCache(opts.cacheDir!, entry, stage.dir, path.basename(job.output));
      if (restored) return { outcome: entry.outcome as unknown as BatchJobOutcome, files: publishStaged(restored, stage.dir, path.dirname(job.output)), cache: 'hit' };
    }
    const child = runChild<BatchJobOutcome>(childScript('batch-child.js'), { ...job, output: stage.output }, { signal: opts.signal, name: job.id, onEvent: opts.onEvent });
    const outcome = await child.result;
    const files = stagedFiles(stage);
    if (files.length === 0) throw new InternalError(`${job.id}: the job answered but left no output in ${stage.dir}`);
    const passed = !outcome.quantizeGate && (!outcome.gate || outcome.gate.passed);
    let cache: StagedRun['cache'];
    let cacheProblem: string | undefined;
    if (key && passed) {
      // A full or read-only cache volume costs the next run a recomputation, not this job its result.
      try {
        storeInCache(opts.cacheDir!, key, files, stage.dir, { ...outcome });
        cache = 'stored';
      } catch (err) {
        cacheProblem = toQtoolError(err).message;
      }
    }
    return { outcome, files: publishStaged(files, stage.dir, path.dirname(job.output)), cache, cacheProblem };
  } finally {
    removeStaging(stage);
  }
}
