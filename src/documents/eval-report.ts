import { z } from 'zod';
import { DataOptionsSchema, DataSourceSchema, LabelSourceSchema } from './data-options.js';

export const EvalMetricSchema = z
  .enum(['accuracy', 'top5', 'perplexity', 'fidelity'])
  .describe('accuracy/top5 (needs labels), perplexity (language models; labels = next-token ids), fidelity (cosine against --reference)');
export type EvalMetric = z.infer<typeof EvalMetricSchema>;

/** Options of evaluate() (library) and `qtool eval` (CLI). Defined once, here. */
export const EvalOptionsSchema = z.object({
  data: DataSourceSchema.describe('evaluation inputs (.npy/.npz/.jsonl, a folder of arrays, images or WAV files, or feeds in memory)'),
  labels: LabelSourceSchema.optional().describe('labels .npy or .csv: class ids (accuracy) or next-token ids (perplexity); default: the class folders of an image folder, or the "label" of text records'),
  reference: z.string().optional().describe('reference (float) model: fidelity of all outputs, and the baseline for --max-drop'),
  metric: EvalMetricSchema.optional().describe('gated metric (default: accuracy with labels, perplexity for 3-D logits, fidelity with only a reference)'),
  batchSize: z.number().int().positive().default(32).describe('samples per onnxruntime run'),
  maxSamples: z.number().int().positive().optional().describe('evaluate only the first N samples'),
  threads: z.number().int().positive().default(1).describe('onnxruntime intra-op threads'),
  outputName: z.string().optional().describe('model output holding the logits (default: the first output)'),
  failUnder: z.number().optional().describe('gate: fail (exit 4) when the metric is worse than this (below it; above it for perplexity)'),
  maxDrop: z
    .number()
    .nonnegative()
    .optional()
    .describe('gate: fail (exit 4) when the metric drops more than this against --reference: absolute percentage points for accuracy/top5, percent relative for perplexity/fidelity'),
  ...DataOptionsSchema.shape,
});
export type EvalOptions = z.input<typeof EvalOptionsSchema>;
export type EvalSettings = z.output<typeof EvalOptionsSchema>;

/** Fidelity of outputs against the reference. sqnrDb is null when the outputs are identical (infinite SQNR). */
export const FidelitySummarySchema = z.object({
  cosine: z.number(),
  sqnrDb: z.number().nullable(),
  maxAbsError: z.number(),
  mse: z.number(),
  top1Agreement: z.number().optional(),
  elements: z.number().int(),
});
export type FidelitySummary = z.infer<typeof FidelitySummarySchema>;

export const AccuracySchema = z.object({ top1: z.number(), top5: z.number(), samples: z.number().int() });
export const PerplexitySchema = z.object({ perplexity: z.number(), nll: z.number(), tokens: z.number().int() });

export const EvalGateSchema = z.object({
  metric: EvalMetricSchema,
  value: z.number(),
  failUnder: z.number().optional(),
  maxDrop: z.number().optional(),
  referenceValue: z.number().optional(),
  /** In the --max-drop units; positive = worse than the reference. */
  drop: z.number().optional(),
  passed: z.boolean(),
  /** Why it failed, one line. */
  reason: z.string().optional(),
});
export type EvalGate = z.infer<typeof EvalGateSchema>;

/** qtool.eval/1: what `qtool eval` measured. */
export const EvalReportSchema = z.object({
  kind: z.literal('qtool.eval'),
  version: z.literal(1),
  model: z.string(),
  data: z.string(),
  labels: z.string().optional(),
  samples: z.number().int(),
  metric: EvalMetricSchema,
  /** The gated metric's value (accuracy as a fraction in [0, 1]). */
  value: z.number(),
  accuracy: AccuracySchema.optional(),
  perplexity: PerplexitySchema.optional(),
  reference: z
    .object({
      model: z.string(),
      accuracy: AccuracySchema.optional(),
      perplexity: PerplexitySchema.optional(),
      fidelity: FidelitySummarySchema,
      /** Per output, by name. */
      outputs: z.array(FidelitySummarySchema.extend({ name: z.string() })),
    })
    .optional(),
  gate: EvalGateSchema.optional(),
});
export type EvalReport = z.infer<typeof EvalReportSchema>;
