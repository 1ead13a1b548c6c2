import { z } from 'zod';
import { EvalMetricSchema } from './eval-report.js';
import { QuantizeOptionsSchema } from './quantize-options.js';

/** A job's recipe: the quantize() options (output and force come from the job and the runner). */
export const BatchRecipeSchema = QuantizeOptionsSchema.omit({ output: true, force: true }).extend({
  // A jobs file holds paths only (in-memory feeds are for the library).
  data: z.string().optional().describe('calibration data (.npy/.npz/.jsonl, a folder of arrays, images or WAV files)'),
  eval: z.string().optional().describe('evaluation data for --max-drop (default: the last 25% of data, held out of calibration)'),
  evalLabels: z.string().optional().describe('labels of the evaluation data (.npy or .csv)'),
  preprocess: z.string().optional().describe('a preprocessing recipe: inline key=value text or a .json/.yaml file'),
});
export type BatchRecipe = z.output<typeof BatchRecipeSchema>;

/**
 * The written form of a recipe: every field optional and without defaults (so a job's recipe only
 * overrides what it names over the file's `defaults`), unknown keys refused.
 */
const StrictRecipeSchema = z.strictObject(
  Object.fromEntries(Object.entries(BatchRecipeSchema.shape).map(([k, v]) => [k, (v instanceof z.ZodDefault ? (v.unwrap() as z.ZodType) : (v as z.ZodType)).optional()])),
);
export const WrittenRecipeSchema = z.preprocess(renameDeprecatedRecipeKeys, StrictRecipeSchema) as unknown as z.ZodType<Partial<z.input<typeof BatchRecipeSchema>>>;

/** A written recipe that may be absent ({}); the default sits inside the preprocess so the published JSON Schema keeps it. */
const writtenRecipeOrEmpty = (description?: string) =>
  z.preprocess(renameDeprecatedRecipeKeys, description ? StrictRecipeSchema.default({}).describe(description) : StrictRecipeSchema.default({})) as unknown as z.ZodDefault<z.ZodType<Partial<z.input<typeof BatchRecipeSchema>>>>;

/**
 * Old recipe keys still read: "format" (before the option was named int4Format) is an alias of
 * "int4Format", so job files written for earlier versions keep working. When both are given the
 * strict recipe refuses "format" as an unknown key.
 */
const DEPRECATED_RECIPE_KEYS: Readonly<Record<string, string>> = { format: 'int4Format' };

function renameDeprecatedRecipeKeys(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [old, key] of Object.entries(DEPRECATED_RECIPE_KEYS)) {
    if (old in out && !(key in out)) {
      out[key] = out[old];
      delete out[old];
    }
  }
  return out;
}

/** Optional accuracy gate run on the job's output after it is written (like `qtool eval`). */
export const BatchGateSchema = z.object({
  data: z.string().describe('evaluation inputs'),
  labels: z.string().optional().describe('labels .npy for accuracy/top5/perplexity'),
  reference: z.string().optional().describe('reference model (default: the job input model)'),
  metric: EvalMetricSchema.optional(),
  failUnder: z.number().optional(),
  maxDrop: z.number().nonnegative().optional(),
  maxSamples: z.number().int().positive().optional(),
  batchSize: z.number().int().positive().optional(),
});
export type BatchGate = z.infer<typeof BatchGateSchema>;

export const BatchJobSchema = z.object({
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected letters, digits, ".", "_" or "-"')
    .describe('unique job name'),
  model: z.string().describe('input model; paths are relative to the jobs file'),
  output: z.string().describe('output model path'),
  recipe: writtenRecipeOrEmpty('quantize options (bits, mode, plan, data/calib, …); unset fields come from `defaults`'),
  gate: BatchGateSchema.optional(),
});
export type BatchJob = z.infer<typeof BatchJobSchema>;

/** qtool.batch-jobs/1: the jobs file `qtool batch` reads. `kind`/`version` may be omitted when writing one by hand. */
export const BatchJobsSchema = z
  .object({
    kind: z.literal('qtool.batch-jobs').optional(),
    version: z.literal(1).optional(),
    /** Recipe fields shared by every job (a job's own recipe wins). */
    defaults: writtenRecipeOrEmpty(),
    jobs: z.array(BatchJobSchema).min(1),
  })
  .superRefine((doc, ctx) => {
    const ids = new Set<string>();
    const outputs = new Set<string>();
    doc.jobs.forEach((j, i) => {
      if (ids.has(j.id)) ctx.addIssue({ code: 'custom', path: ['jobs', i, 'id'], message: `duplicate job id "${j.id}"` });
      if (outputs.has(j.output)) ctx.addIssue({ code: 'custom', path: ['jobs', i, 'output'], message: `output "${j.output}" is written by an earlier job too` });
      ids.add(j.id);
      outputs.add(j.output);
    });
  });
export type BatchJobs = z.infer<typeof BatchJobsSchema>;

/**
 * The options of `runBatch()` / `qtool batch` (the jobs file aside), defined once: the CLI's flag
 * table takes help text and defaults from here.
 */
export const BatchOptionsSchema = z.object({
  concurrency: z.number().int().positive().default(1).describe('jobs run at once, each in its own child process'),
  force: z.boolean().default(false).describe('redo jobs whose output and inputs are unchanged, and recompute instead of copying cache hits'),
  shard: z
    .string()
    .optional()
    .describe('run only shard i of n (1-based, e.g. 2/4 or ${{ matrix.shard }}/4); every shard computes the same assignment from the jobs file and model sizes'),
  shards: z.number().int().positive().optional().describe('run shard JOB_COMPLETION_INDEX+1 of n (Kubernetes Indexed Job; JOB_COMPLETION_INDEX is 0-based)'),
  cache: z.string().optional().describe('content-addressed result cache folder shared by shards and re-runs (a mounted volume, a CI cache folder)'),
  summaryFile: z.string().optional().describe('where to write the JSON summary (default: <jobs>.summary.json next to the jobs file, <jobs>.shard-<i>-of-<n>.summary.json for a shard)'),
});
export type BatchOptions = z.input<typeof BatchOptionsSchema>;
export type BatchSettings = z.output<typeof BatchOptionsSchema>;

/** The sidecar `<output>.qtool-job.json` a finished job leaves, so a re-run can skip it. */
export const BatchJobRecordSchema = z.object({
  kind: z.literal('qtool.batch-job-record'),
  version: z.literal(1),
  id: z.string(),
  /** sha256 of the normalized recipe + gate. */
  recipeHash: z.string(),
  /** sha256 of every input file (model, calibration data/table, plan, gate data/labels/reference) by path. */
  inputs: z.record(z.string(), z.string()),
  outputSha256: z.string(),
});
export type BatchJobRecord = z.infer<typeof BatchJobRecordSchema>;

export const BatchJobStatusSchema = z.enum(['ok', 'skipped', 'failed', 'interrupted']);
export type BatchJobStatus = z.infer<typeof BatchJobStatusSchema>;

export const BatchJobResultSchema = z.object({
  id: z.string(),
  model: z.string(),
  output: z.string(),
  status: BatchJobStatusSchema,
  /** Why a skipped job was skipped, or why a finished one was redone. */
  note: z.string().optional(),
  error: z.object({ code: z.string(), exitCode: z.number().int(), message: z.string() }).optional(),
  durationMs: z.number(),
  outputBytes: z.number().int().optional(),
  sizeRatio: z.number().optional(),
  gate: z.object({ metric: EvalMetricSchema, value: z.number(), passed: z.boolean(), drop: z.number().optional(), reason: z.string().optional() }).optional(),
  recipeHash: z.string(),
  cache: z.enum(['hit', 'stored']).optional().describe("with --cache: 'hit' = copied from the cache, 'stored' = computed, and in the cache now"),
});
export type BatchJobResult = z.infer<typeof BatchJobResultSchema>;

/**
 * Which shard a summary covers (`qtool batch --shard i/n`), with the whole assignment every shard
 * computed, so `qtool batch merge` can name missing jobs and check that the shards agreed.
 */
export const BatchShardSchema = z.object({
  index: z.number().int().positive().describe('this shard, 1..count (--shard i/n; JOB_COMPLETION_INDEX + 1)'),
  count: z.number().int().positive().describe('number of shards'),
  jobsFileSha256: z.string().describe("sha256 of the jobs file's bytes: every shard of one run read the same file"),
  assignment: z
    .array(z.object({ id: z.string(), shard: z.number().int().positive(), costEstimate: z.number().nonnegative().describe('model bytes × recipe weight') }))
    .describe('every job of the jobs file in file order with its shard; identical in every shard of one run'),
});
export type BatchShard = z.infer<typeof BatchShardSchema>;

/**
 * qtool.batch-summary/1: what `qtool batch` did, one entry per job in file order. A shard's summary
 * lists only its own jobs and carries `shard`; `qtool batch merge` joins the shards' summaries into
 * one without `shard`, the same document a one-machine run writes.
 */
export const BatchSummarySchema = z.object({
  kind: z.literal('qtool.batch-summary'),
  version: z.literal(1),
  jobsFile: z.string(),
  concurrency: z.number().int().positive(),
  shard: BatchShardSchema.optional().describe('set in the summary of one shard (qtool batch --shard); absent in a one-machine or merged summary'),
  counts: z.object({ ok: z.number().int(), skipped: z.number().int(), failed: z.number().int(), interrupted: z.number().int() }),
  jobs: z.array(BatchJobResultSchema),
});
export type BatchSummary = z.infer<typeof BatchSummarySchema>;
