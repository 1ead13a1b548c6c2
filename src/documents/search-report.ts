import { z } from 'zod';
import { DataOptionsSchema, DataSourceSchema, LabelSourceSchema } from './data-options.js';
import { LatencyMachineSchema } from './latency.js';
import { LayerBitsSchema } from './plan.js';

/** Quality metric of a configuration. */
export const SearchMetricSchema = z
  .enum(['accuracy', 'agreement', 'sqnr', 'cosine', 'perplexity'])
  .describe('accuracy (needs labels), top-1 agreement with the float model, output SQNR (dB), cosine, or perplexity (language models)');
export type SearchMetric = z.infer<typeof SearchMetricSchema>;

/** What an evaluation of one plan returns (the pipeline's evaluator builds these). */
export interface EvalResult {
  /** The metric value (accuracy and agreement as fractions in [0, 1]). */
  value: number;
  /** Measured size of the quantized model, when the evaluator wrote one. */
  sizeBytes?: number;
}

/**
 * Per-layer kernel times from onnxruntime's profiler (µs per run at `batchSize`), float and at each
 * level, for the latency objective; the pipeline measures them (or reads them from the latency cache).
 */
export const LayerLatencySchema = z.object({
  id: z.string(),
  /** µs per run by level key ("float", "8", "4", …): the layer's kernel plus the nodes onnxruntime runs for it only in that variant (Q/DQ, reorders). */
  micros: z.record(z.string(), z.number()),
});
export type LayerLatency = z.infer<typeof LayerLatencySchema>;

/** The latency side of a search: the profiled per-layer costs (the guide) and the real measurement (the verdict). */
export const SearchLatencySchema = z.object({
  batchSize: z.number().int().positive(),
  /** Sum of every node's profiled time in the float model (µs per run). */
  floatProfileMicros: z.number(),
  /** Per-layer costs; layers onnxruntime's profile could not be matched to are left out (never chosen for speed). */
  layers: z.array(LayerLatencySchema),
  /** Float latency (ms) the predictions start from: a brief measurement before the search (prediction = this − the profiled savings). */
  predictionBaseMs: z.number(),
  /** Profile from this run or from the latency cache. */
  profileSource: z.enum(['measured', 'cache']),
  /** Median float latency (ms) of the interleaved verification run, null when nothing was measured. */
  floatMs: z.number().nullable(),
  machine: LatencyMachineSchema,
  /** Interleaved verification run over float and every evaluated configuration. */
  rounds: z.number().int().nonnegative(),
  seconds: z.number().nonnegative(),
  loadAverage: z.number(),
});
export type SearchLatency = z.infer<typeof SearchLatencySchema>;

/** Options of searchPlan (library) and `qtool search` (CLI). Defined once, here. */
export const SearchOptionsSchema = z.object({
  bits: z
    .array(LayerBitsSchema)
    .min(1)
    .default([4, 8])
    .describe('precision levels to choose from, e.g. 4,8 or 4,8,float (at least two distinct; with objective latency float is always one, so one more is enough)'),
  metric: SearchMetricSchema.default('accuracy'),
  maxDrop: z
    .number()
    .nonnegative()
    .default(1)
    .describe('allowed drop: absolute percentage points for accuracy/agreement, percent relative to the reference for sqnr/cosine/perplexity'),
  maxSizeBytes: z.number().positive().optional().describe('budget form: minimise the summed Omega under this size (knapsack), then verify once'),
  maxEvaluations: z.number().int().positive().optional().describe('cap on full evaluations (default 2*ceil(log2 L) + 4)'),
  checkMonotonicity: z.boolean().default(true).describe('after bisection, evaluate k*-2 when the budget allows and refine linearly if it passes'),
  mode: z.enum(['static', 'dynamic', 'weight-only']).default('weight-only').describe('plan mode written for the rewriter'),
  blockSize: z.number().int().min(16).default(32).describe('INT4 block size (plan default)'),
  objective: z
    .enum(['size', 'latency'])
    .default('size')
    .describe('what the search minimises within --max-drop: size (bisection over the sensitivity order) or latency (layers ordered by profiled latency saving per measured loss; float is always a level); the result is verified by a real interleaved measurement'),
  maxLatencyMs: z
    .number()
    .positive()
    .optional()
    .describe('latency budget form (implies objective latency): minimise the summed measured single-layer loss under this latency (knapsack over profiled per-layer costs), then verify accuracy and latency by real measurements'),
  ...DataOptionsSchema.shape,
});
export type SearchOptions = z.input<typeof SearchOptionsSchema>;
export type SearchSettings = z.output<typeof SearchOptionsSchema>;

/**
 * Options of the `search()` door and `qtool search`: the search options plus the data, how to measure
 * and the files written. The CLI's flag table (cli/commands/search.ts) takes help text and defaults
 * from here; the stage (searchPlan) only sees SearchOptionsSchema.
 */
export const SearchRunOptionsSchema = SearchOptionsSchema.extend({
  data: DataSourceSchema.describe('calibration inputs (sensitivity probes; with --mode static also the one calibration pass)'),
  labels: LabelSourceSchema.optional().describe('calibration labels .npy/.csv (sensitivity loss ce; default: the data\'s own, e.g. image class folders)'),
  eval: DataSourceSchema.describe('evaluation inputs'),
  evalLabels: LabelSourceSchema.optional().describe('evaluation labels .npy/.csv (needed for metric accuracy/perplexity unless the data carries labels, e.g. image class folders)'),
  evalSamples: z.number().int().positive().optional().describe('use only the first N evaluation samples'),
  calib: z.string().optional().describe('mode static: reuse a calibration table (qtool calibrate) instead of calibrating on the data'),
  evaluator: z
    .enum(['auto', 'rewrite', 'weights'])
    .default('auto')
    .describe('how a plan is measured; auto: rewrite unless the model is large; rewrite: applyPlan + onnxruntime per evaluation (the written model is the one measured); weights: fake-quantized weights, one session'),
  sensitivityReport: z.string().optional().describe('reuse a sensitivity report instead of measuring'),
  probes: z.number().int().positive().optional().describe('Hessian probes per layer when measuring sensitivity (default 8; 2 with mode static, where measured static losses order the layers)'),
  planOutput: z.string().optional().describe('write the plan (qtool.plan/1)'),
  modelOutput: z.string().optional().describe('write the quantized model'),
  reportOutput: z.string().optional().describe('write the search report (qtool.search-report/1)'),
  markdownOutput: z.string().optional().describe('write the Markdown report'),
  htmlOutput: z.string().optional().describe('write a self-contained HTML page with the size-vs-metric chart and Pareto front'),
  force: z.boolean().default(false).describe('overwrite existing output files'),
  measureLatency: z.boolean().optional().describe('time float and every evaluated configuration (interleaved) and draw the latency Pareto front; default: on with objective latency'),
  tuneSeconds: z.number().positive().default(3).describe('seconds of interleaved timing of the evaluated configurations (latency objective or measurement)'),
  latencyBatch: z.number().int().positive().default(1).describe('batch size the latency is profiled and measured at (samples from --eval)'),
  latencyCache: z.boolean().default(true).describe('reuse per-layer profiles cached by model hash, plans, CPU and onnxruntime version ($QTOOL_CACHE_DIR, else $XDG_CACHE_HOME/qtool or ~/.cache/qtool)'),
});

export const SearchEvaluationSchema = z.object({
  index: z.number().int(),
  label: z.string(),
  /** Which step asked for it: baseline, endpoint, bisection, monotonicity, refine, knapsack. */
  purpose: z.string(),
  /** Demotion step (e.g. "8→4") and k = layers kept at the higher level, when applicable. */
  step: z.string().nullable(),
  k: z.number().int().nullable(),
  value: z.number(),
  /** Drop in the --max-drop units (points or percent), positive = worse. */
  drop: z.number(),
  passes: z.boolean(),
  /** Size by the accounting of design.md (weights only + the rest of the model). */
  sizeBytes: z.number(),
  measuredSizeBytes: z.number().nullable(),
  /** Layers per precision level. */
  counts: z.record(z.string(), z.number().int()),
  assignment: z.record(z.string(), LayerBitsSchema),
  /** Latency predicted from the profiled per-layer costs (ms; a guide), null without a latency profile. */
  predictedLatencyMs: z.number().nullable().default(null),
  /** Median latency measured in the interleaved verification run (ms), null when not measured. */
  latencyMs: z.number().nullable().default(null),
  /** Median per-round ratio to float in that run. */
  latencyRatio: z.number().nullable().default(null),
});
export type SearchEvaluation = z.infer<typeof SearchEvaluationSchema>;

export const SearchStepSchema = z.object({
  from: LayerBitsSchema,
  to: LayerBitsSchema,
  /** Layers at `from` when the step started (the candidates to demote, most sensitive first). */
  candidates: z.array(z.string()),
  /** Smallest k found (number of most sensitive candidates kept at `from`). */
  k: z.number().int(),
  evaluations: z.array(z.number().int()),
  /** null: not checked; false: a non-monotone pair was seen (then refined linearly). */
  isMonotone: z.boolean().nullable(),
});

export const SearchReportSchema = z.object({
  kind: z.literal('qtool.search-report'),
  version: z.literal(1),
  model: z.object({ file: z.string(), sha256: z.string() }),
  strategy: z.enum(['bisection', 'knapsack', 'latency-greedy', 'latency-knapsack']),
  objective: z.enum(['size', 'latency']).default('size'),
  maxLatencyMs: z.number().nullable().default(null),
  metric: SearchMetricSchema,
  /** 'points' (accuracy, agreement) or 'percent' (relative: sqnr, cosine, perplexity). */
  dropUnit: z.enum(['points', 'percent']),
  maxDrop: z.number(),
  maxSizeBytes: z.number().nullable(),
  bits: z.array(LayerBitsSchema),
  /** Reference the drop is measured against (float model; for sqnr the highest uniform integer level). */
  reference: z.object({ label: z.string(), value: z.number() }),
  /** Layers in search order with their score (objective size: sensitivity share; objective latency: profiled saving in ms at their fastest level, ordered by saving per unit of loss). */
  order: z.array(z.object({ id: z.string(), score: z.number() })),
  steps: z.array(SearchStepSchema),
  evaluations: z.array(SearchEvaluationSchema),
  /** Index into evaluations of the configuration written out. */
  chosen: z.number().int(),
  budgetMet: z.boolean(),
  /** Indices of evaluations on the size/quality Pareto front. */
  pareto: z.array(z.number().int()),
  /** Indices of evaluations on the latency/quality Pareto front (measured latency; empty when not measured). */
  paretoLatency: z.array(z.number().int()).default([]),
  /** Profiled per-layer costs and the verification run, null when latency was not measured. */
  latency: SearchLatencySchema.nullable().default(null),
  uniformSizes: z.record(z.string(), z.number()),
  evaluationCount: z.number().int(),
  maxEvaluations: z.number().int(),
  notes: z.array(z.string()),
});
export type SearchReport = z.infer<typeof SearchReportSchema>;
