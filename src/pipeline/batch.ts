/**
 * Batch compression jobs (qtool batch): each job quantizes one model in its own child process, with an
 * optional accuracy gate on the output. Failed jobs do not stop the others. A finished job leaves a
 * sidecar `<output>.qtool-job.json` with the hashes of its inputs, recipe and output; a re-run skips
 * jobs whose output and hashes are unchanged. With `shard`/`shards` only this shard's jobs run
 * (batch-shard.ts); with `cache` results are shared through a content-addressed cache (batch-cache.ts).
 * A job's files are made in a staging folder and renamed into place by this process only
 * (batch-stage.ts), so no output is ever half-written; aborting kills the running children and removes
 * their staging folders.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BatchJobRecordSchema,
  BatchJobsSchema,
  BatchOptionsSchema,
  BatchRecipeSchema,
  flattenIssues,
  readDocument,
  stringifyDocument,
  writeDocument,
  type BatchGate,
  type BatchJob,
  type BatchJobRecord,
  type BatchJobResult,
  type BatchOptions,
  type BatchRecipe,
  type BatchSummary,
} from '../documents/index.js';
import { EXIT_CODES, InputError, UsageError, toQtoolError } from '../errors.js';
import { checkOutputPaths, describeFsError } from '../files.js';
import { hashContent, openCache } from './batch-cache.js';
import { assignShards, externalDataFiles, modelBytes, recipeWeight, resolveShard } from './batch-shard.js';
import { runJobStaged, sweepStaleStaging } from './batch-stage.js';
import { interruptedError } from './child-process.js';
import { evalGateCode } from './eval.js';

/** BatchOptions (concurrency, force, shard, shards, cache, summaryFile: documents/batch-jobs.ts) plus what only a caller can give. */
export interface BatchRunOptions extends BatchOptions {
  /** Abort: running children are killed (their temp files removed); pending jobs are not started. */
  signal?: AbortSignal;
  /** Where `shards` reads JOB_COMPLETION_INDEX (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * 'start'/'done' when a job begins and ends (`done`/`total` count finished jobs); 'job' while it runs,
   * with the job's own stage progress from its child process (`job.stage`: a quantize stage or 'gate').
   */
  onProgress?: (event: BatchProgress) => void;
}

/** Progress of one job inside its child: the quantize stage (or the gate) and its samples done/total. */
export interface BatchJobProgress {
  stage: string;
  done?: number;
  total?: number;
}

export interface BatchProgress {
  id: string;
  phase: 'start' | 'job' | 'done';
  status?: BatchJobResult['status'];
  done: number;
  total: number;
  job?: BatchJobProgress;
}

/** One job with every path resolved against the jobs file's folder and its recipe merged with the defaults. */
export interface ResolvedJob {
  id: string;
  /** As written in the jobs file (for the summary). */
  written: { model: string; output: string };
  model: string;
  output: string;
  recipe: BatchRecipe;
  gate?: BatchGate;
  recipeHash: string;
}

/** What a job's child process reports back. */
export interface BatchJobOutcome {
  outputBytes: number;
  sizeRatio?: number;
  gate?: BatchJobResult['gate'];
  /** The quantize gate (as `qtool quantize` exits 4): a result that quantized nothing (E_UNCHANGED, unless the recipe sets allowUnchanged) or a --max-drop not met. */
  quantizeGate?: { code: string; message: string };
}

export function sidecarPath(output: string): string {
  return `${output}.qtool-job.json`;
}

const resolveIn = (dir: string, p: string | undefined) => (p === undefined || p === 'random' ? p : path.resolve(dir, p));

/** Read and validate a jobs file; resolve its paths and recipes. */
export function loadBatchJobs(file: string): ResolvedJob[] {
  const doc = readDocument(file, BatchJobsSchema);
  const dir = path.dirname(path.resolve(file));
  return doc.jobs.map((job: BatchJob) => {
    const merged = BatchRecipeSchema.safeParse({ ...doc.defaults, ...job.recipe });
    if (!merged.success) throw new InputError('E_DOCUMENT_INVALID', `job "${job.id}": recipe: ${merged.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, { file });
    const recipe = merged.data;
    // The hash covers the recipe and gate as written (relative paths), so moving the whole tree keeps it.
    const recipeHash = createHash('sha256').update(stringifyDocument({ recipe, gate: job.gate ?? null })).digest('hex');
    const resolvedRecipe: BatchRecipe = {
      ...recipe,
      data: resolveIn(dir, recipe.data),
      calib: resolveIn(dir, recipe.calib),
      plan: resolveIn(dir, recipe.plan),
      eval: resolveIn(dir, recipe.eval),
      evalLabels: resolveIn(dir, recipe.evalLabels),
      tokenizer: resolveIn(dir, recipe.tokenizer),
      // A recipe file (.json/.yaml) is a path; inline key=value text is kept as written.
      preprocess: typeof recipe.preprocess === 'string' && /\.(json|ya?ml)$/i.test(recipe.preprocess) ? path.resolve(dir, recipe.preprocess) : recipe.preprocess,
    };
    const gate = job.gate ? { ...job.gate, data: path.resolve(dir, job.gate.data), labels: resolveIn(dir, job.gate.labels), reference: resolveIn(dir, job.gate.reference) } : undefined;
    return { id: job.id, written: { model: job.model, output: job.output }, model: path.resolve(dir, job.model), output: path.resolve(dir, job.output), recipe: resolvedRecipe, gate, recipeHash };
  });
}

/** sha256 of a file, or of a folder's files (names and contents, sorted); 'missing' when absent. */
export const hashPath = hashContent;

/** Hashes of every input file a job reads (the model's external data included), keyed by absolute path. */
export function jobInputHashes(job: ResolvedJob): Record<string, string> {
  const r = job.recipe;
  const recipeFile = typeof r.preprocess === 'string' && /\.(json|ya?ml)$/i.test(r.preprocess) ? r.preprocess : undefined;
  const files = [job.model, ...externalDataFiles(job.model), r.data, r.calib, r.plan, r.eval, r.evalLabels, r.tokenizer, recipeFile, job.gate?.data, job.gate?.labels, job.gate?.reference];
  const out: Record<string, string> = {};
  for (const f of files) if (f && f !== 'random' && !(f in out)) out[f] = hashPath(f);
  return out;
}

/** Why the job must run again, or undefined when its output is current. */
export function staleReason(job: ResolvedJob, inputs: Record<string, string>): string | undefined {
  if (!fs.existsSync(job.output)) return 'no output yet';
  let record: BatchJobRecord;
  try {
    record = readDocument(sidecarPath(job.output), BatchJobRecordSchema);
  } catch {
    return 'no job record next to the output';
  }
  if (record.recipeHash !== job.recipeHash) return 'recipe changed';
  const a = Object.entries(record.inputs).sort();
  const b = Object.entries(inputs).sort();
  if (JSON.stringify(a) !== JSON.stringify(b)) return 'an input file changed';
  if (hashPath(job.output) !== record.outputSha256) return 'the output was modified';
  return undefined;
}

/**
 * Run every job of a jobs file (qtool.batch-jobs/1), `concurrency` at a time, each in its own child
 * process; continue past failures; return the summary (qtool.batch-summary/1). Never throws for a
 * failed job: callers check `summary.counts.failed`.
 */
export async function runBatch(jobsFile: string, options: BatchRunOptions = {}): Promise<BatchSummary> {
  const { signal, onProgress, env, ...rest } = options;
  // Parsed once here (BatchOptionsSchema holds the defaults).
  const parsed = BatchOptionsSchema.safeParse(rest);
  if (!parsed.success) throw new UsageError('E_FLAG', `invalid batch options: ${flattenIssues(parsed.error)}`);
  const settings = parsed.data;
  const { concurrency, summaryFile } = settings;
  const shardSpec = resolveShard({ shard: settings.shard, shards: settings.shards, env });
  const cacheDir = settings.cache;
  const allJobs = loadBatchJobs(jobsFile);
  if (summaryFile) checkSummaryPath(summaryFile, allJobs);
  checkBatchOutputs(jobsFile, allJobs, summaryFile);
  let shard: BatchSummary['shard'];
  let jobs = allJobs;
  if (shardSpec) {
    const { index, count } = shardSpec;
    // Every model × every recipe: size each model file once.
    const bytes = new Map<string, number>();
    const sizeOf = (m: string) => bytes.get(m) ?? bytes.set(m, modelBytes(m)).get(m)!;
    const costs = allJobs.map((j) => sizeOf(j.model) * recipeWeight(j.recipe, j.gate));
    const shardOf = assignShards(allJobs.map((j, i) => ({ id: j.id, cost: costs[i] })), count);
    shard = { index, count, jobsFileSha256: hashContent(jobsFile), assignment: allJobs.map((j, i) => ({ id: j.id, shard: shardOf[i], costEstimate: costs[i] })) };
    jobs = allJobs.filter((_, i) => shardOf[i] === index);
  }
  if (cacheDir) openCache(cacheDir);
  // Staging folders a killed batch process left next to these outputs (never published, never served).
  sweepStaleStaging(jobs.map((j) => path.dirname(j.output)));
  const results: BatchJobResult[] = new Array(jobs.length);
  let next = 0;
  let done = 0;

  const runOne = async (index: number): Promise<void> => {
    const job = jobs[index];
    const base = { id: job.id, model: job.written.model, output: job.written.output, recipeHash: job.recipeHash };
    const t0 = Date.now();
    onProgress?.({ id: job.id, phase: 'start', done, total: jobs.length });
    let result: BatchJobResult;
    if (signal?.aborted) {
      result = { ...base, status: 'interrupted', durationMs: 0 };
    } else {
      const inputs = jobInputHashes(job);
      const stale = settings.force ? 'forced' : staleReason(job, inputs);
      if (!stale) {
        result = { ...base, status: 'skipped', note: 'output and input hashes unchanged', durationMs: Date.now() - t0, outputBytes: fs.statSync(job.output).size };
      } else {
        fs.rmSync(sidecarPath(job.output), { force: true });
        try {
          fs.mkdirSync(path.dirname(job.output), { recursive: true });
          // The child writes into a staging folder that only this (live) process publishes; see batch-stage.ts.
          const run = await runJobStaged(job, {
            cacheDir,
            useHits: !settings.force,
            signal,
            onEvent: (ev) => onProgress?.({ id: job.id, phase: 'job', done, total: jobs.length, job: ev as BatchJobProgress }),
          });
          const outcome = run.outcome;
          const gateFailed = !!outcome.quantizeGate || (outcome.gate && !outcome.gate.passed);
          result = {
            ...base,
            status: gateFailed ? 'failed' : 'ok',
            note: run.cache === 'hit' ? `${stale}; copied from the cache` : run.cacheProblem ? `${stale}; not cached: ${run.cacheProblem}` : stale,
            error: outcome.quantizeGate
              ? { code: outcome.quantizeGate.code, exitCode: EXIT_CODES.gate, message: outcome.quantizeGate.message }
              : gateFailed
                ? { code: evalGateCode(outcome.gate!), exitCode: EXIT_CODES.gate, message: outcome.gate!.reason ?? 'gate failed' }
                : undefined,
            durationMs: Date.now() - t0,
            outputBytes: outcome.outputBytes,
            sizeRatio: outcome.sizeRatio,
            gate: outcome.gate,
            cache: run.cache,
          };
          if (!gateFailed) {
            const record: BatchJobRecord = { kind: 'qtool.batch-job-record', version: 1, id: job.id, recipeHash: job.recipeHash, inputs, outputSha256: hashPath(job.output) };
            writeDocument(sidecarPath(job.output), record);
          }
        } catch (err) {
          const e = toQtoolError(err);
          const interrupted = e.code === interruptedError().code;
          result = { ...base, status: interrupted ? 'interrupted' : 'failed', note: stale, error: interrupted ? undefined : { code: e.code, exitCode: e.exitCode, message: e.message }, durationMs: Date.now() - t0 };
        }
      }
    }
    const { recipeHash, ...rest } = result;
    results[index] = { ...rest, recipeHash };
    done++;
    onProgress?.({ id: job.id, phase: 'done', status: result.status, done, total: jobs.length });
  };

  const worker = async (): Promise<void> => {
    while (next < jobs.length) await runOne(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
  const count = (s: BatchJobResult['status']) => results.filter((r) => r.status === s).length;
  const summary: BatchSummary = {
    kind: 'qtool.batch-summary',
    version: 1,
    jobsFile,
    concurrency,
    shard,
    counts: { ok: count('ok'), skipped: count('skipped'), failed: count('failed'), interrupted: count('interrupted') },
    jobs: results,
  };
  if (summaryFile && !signal?.aborted) writeDocument(summaryFile, summary);
  return summary;
}

/**
 * The output guard over the whole batch, before any job runs: no job output (model, `.data`
 * companion, job record) nor the summary may be the jobs file or any job's input (model, data,
 * table, plan, gate data), and no two jobs may write the same file. Existing outputs are expected
 * (re-runs skip or redo them), so existence alone is not refused.
 */
export function checkBatchOutputs(jobsFile: string, jobs: readonly ResolvedJob[], summaryFile?: string): void {
  const inputs = [jobsFile];
  const outputs: string[] = [];
  for (const j of jobs) {
    inputs.push(...Object.keys(jobInputHashes(j)));
    outputs.push(j.output, sidecarPath(j.output));
    if (j.recipe.externalData) outputs.push(`${j.output}.data`);
  }
  if (summaryFile) outputs.push(summaryFile);
  // A job output's folder may not exist yet (runOne creates it): check those paths by name only.
  const ready = outputs.filter((o) => fs.existsSync(path.dirname(path.resolve(o))));
  checkOutputPaths(ready, { force: true, inputs });
}

/** Refuse a summary path that would overwrite a job's input or output. */
export function checkSummaryPath(file: string, jobs: readonly ResolvedJob[]): void {
  const abs = path.resolve(file);
  for (const j of jobs) if (abs === j.output || abs === j.model) throw new UsageError('E_FLAG', `--summary ${file}: expected a new file, got job "${j.id}"'s ${abs === j.output ? 'output' : 'model'}`);
  try {
    if (fs.statSync(abs).isDirectory()) throw new UsageError('E_FLAG', `--summary ${file}: is a directory, expected a file`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new InputError('E_WRITE', describeFsError(err, 'cannot write'), { file });
  }
}
