import { z } from 'zod';

/** One candidate format of a quantize run, timed against float in one interleaved run. */
export const MeasuredCandidateSchema = z.object({
  /** e.g. "float", "matmul-nbits acc 4", "static-qdq", "dynamic". */
  label: z.string(),
  /** Median of per-round (candidate / float) time ratios, per measured batch size (same order as batchSizes). */
  ratios: z.array(z.number()),
  /** Median latency in ms per measured batch size. */
  medianMs: z.array(z.number()),
  /** Lower quartile of the per-round ratios per batch size (above 1: slower than float in ≥ 3 of 4 rounds). */
  ratioQ1: z.array(z.number()),
  /** Whether it meets the accuracy constraint (float and the default candidate always do). */
  isEligible: z.boolean(),
  /** Why not eligible, or a note. */
  note: z.string().optional(),
});
export type MeasuredCandidate = z.infer<typeof MeasuredCandidateSchema>;

/** The machine the measurement is valid for (also the cache key's hardware part). */
export const LatencyMachineSchema = z.object({
  cpu: z.string(),
  onnxruntime: z.string(),
  threads: z.number().int().positive(),
});
export type LatencyMachine = z.infer<typeof LatencyMachineSchema>;

/**
 * A format decision (recorded in the plan as `tuning`): which candidate the rewrite keeps and the
 * measurement it was based on. A `--plan` replay applies `chosen` without measuring again.
 */
export const FormatDecisionSchema = z.object({
  /** Label of the kept candidate. */
  chosen: z.string(),
  /** MatMulNBits accuracy_level of the kept candidate (INT4/8-bit block weights). */
  accuracyLevel: z.number().int().min(0).max(4).optional(),
  batchSizes: z.array(z.number().int().positive()),
  /** Candidates in measurement order; the first is float, the reference of every ratio. */
  candidates: z.array(MeasuredCandidateSchema),
  machine: LatencyMachineSchema,
  /** Rounds and seconds of timed runs (0 when read from the cache). */
  rounds: z.number().int().nonnegative(),
  seconds: z.number().nonnegative(),
  /** 1-minute load average when measured. */
  loadAverage: z.number(),
  /** Read from the latency cache instead of measured in this run. */
  isCached: z.boolean(),
});
export type FormatDecision = z.infer<typeof FormatDecisionSchema>;

/** `qtool quantize`'s latency check: float vs the written model (and the other candidates measured). */
export const QuantizeLatencySchema = z.object({
  batchSizes: z.array(z.number().int().positive()),
  /** Float first; ratios per batch size. */
  candidates: z.array(MeasuredCandidateSchema),
  /** The label of the written model's format. */
  chosen: z.string(),
  /** Batch sizes at which the written model's median ratio to float was above 1 (the warning says which were beyond the noise). */
  slowerThanFloatAt: z.array(z.number().int().positive()),
  /** What onnxruntime's optimized graph shows that costs time (when slower than float). */
  causes: z.array(z.string()),
  /** Where the decision came from: measured now, the latency cache, or a --plan's recorded decision (not re-measured). */
  source: z.enum(['measured', 'cache', 'plan']),
  machine: LatencyMachineSchema,
  rounds: z.number().int().nonnegative(),
  seconds: z.number().nonnegative(),
  loadAverage: z.number(),
});
export type QuantizeLatency = z.infer<typeof QuantizeLatencySchema>;
