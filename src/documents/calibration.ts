import { z } from 'zod';

export const CalibrationMethodSchema = z.enum(['minmax', 'percentile', 'entropy', 'mse']).describe('how a tensor range is chosen from its statistics');
export type CalibrationMethod = z.infer<typeof CalibrationMethodSchema>;

/** Histogram summary of a tensor: enough to recompute another method's range without rerunning the model. */
export const HistogramSummarySchema = z.object({
  /** Histogram of x over [lo, hi] (signed), `counts.length` bins. */
  lo: z.number(),
  hi: z.number(),
  counts: z.array(z.number()),
});
export type HistogramSummary = z.infer<typeof HistogramSummarySchema>;

export const TensorRangeSchema = z.object({
  /** The range to quantize with, chosen by `method`. Always includes 0 after widening by the rewriter. */
  range: z.tuple([z.number(), z.number()]),
  method: CalibrationMethodSchema,
  /** Observed extremes. */
  min: z.number(),
  max: z.number(),
  /** Elements observed. */
  count: z.number(),
  /** E[x²] over all elements (the layer-wise sensitivity proxy uses it). */
  meanSquare: z.number().optional(),
  histogram: HistogramSummarySchema.optional(),
  /**
   * True when NaN, ±Inf or |x| ≥ 2⁶⁴ (where x² overflows float32) values (e.g. masked_fill(-inf) attention masks) were seen. They are
   * excluded from every statistic above; the rewriter must keep such a tensor float.
   */
  nonFinite: z.boolean().optional(),
  /** How many values were excluded as non-finite or extreme. */
  nonFiniteCount: z.number().optional(),
});
export type TensorRange = z.infer<typeof TensorRangeSchema>;

export const CalibrationTableSchema = z.object({
  kind: z.literal('qtool.calibration'),
  version: z.literal(1),
  model: z.object({ file: z.string(), sha256: z.string() }),
  method: CalibrationMethodSchema,
  /**
   * How the table was made (method options, batch size, seed…). `tensors` says which tensors were observed:
   * 'all' (every float tensor of the main graph), 'plans' (what any static plan reads; `qtool calibrate`),
   * 'plan' (what one plan reads; `qtool quantize --data`) or 'listed' (an explicit list).
   */
  settings: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])).describe("calibration settings; settings.tensors is 'all' | 'plans' | 'plan' | 'listed'"),
  samples: z.number(),
  /** Tensor name → range and statistics. */
  tensors: z.record(z.string(), TensorRangeSchema),
});
export type CalibrationTable = z.infer<typeof CalibrationTableSchema>;

/** What `qtool calibrate --json` prints: where the table went and what it holds (no histograms). */
export const CalibrationSummarySchema = z.object({
  kind: z.literal('qtool.calibration-summary'),
  version: z.literal(1),
  model: z.string(),
  /** The table file written. */
  output: z.string(),
  data: z.string(),
  method: CalibrationMethodSchema,
  samples: z.number(),
  /** Samples skipped for NaN/Inf (--skip-nonfinite). */
  skipped: z.number(),
  tensorCount: z.number(),
  /** Tensors where NaN/Inf/|x| ≥ 2⁶⁴ (where x² overflows float32) values were seen (kept float by the rewriter). */
  nonFiniteTensors: z.array(z.string()),
  warnings: z.array(z.string()),
  ranges: z.record(z.string(), z.tuple([z.number(), z.number()])),
});
export type CalibrationSummary = z.infer<typeof CalibrationSummarySchema>;
