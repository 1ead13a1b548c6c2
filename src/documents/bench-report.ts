import { z } from 'zod';
import { DataOptionsSchema, DataSourceSchema } from './data-options.js';

/** Options of bench() (library) and `qtool bench` (CLI). Defined once, here. */
export const BenchOptionsSchema = z.object({
  runs: z.number().int().positive().default(100).describe('timed runs per model and batch size'),
  warmup: z.number().int().nonnegative().default(10).describe('untimed warm-up runs before the timed ones'),
  batchSizes: z.array(z.number().int().positive()).min(1).default([1]).describe('batch sizes to measure, e.g. 1,8,32'),
  threads: z.number().int().positive().default(1).describe('onnxruntime intra-op threads'),
  data: DataSourceSchema.optional().describe('input data (.npy/.npz/.jsonl, a folder of arrays, images or WAV files, or feeds in memory); inputs are generated from the model shapes when absent'),
  seed: z.number().int().default(0).describe('seed for generated inputs'),
  ...DataOptionsSchema.shape,
});
export type BenchOptions = z.input<typeof BenchOptionsSchema>;
export type BenchSettings = z.output<typeof BenchOptionsSchema>;

export const LatencyStatsSchema = z.object({
  runs: z.number().int().positive(),
  meanMs: z.number(),
  p50Ms: z.number(),
  p90Ms: z.number(),
  p99Ms: z.number(),
  minMs: z.number(),
  maxMs: z.number(),
});
export type LatencyStats = z.infer<typeof LatencyStatsSchema>;

export const BenchBatchResultSchema = z.object({
  batchSize: z.number().int().positive(),
  latency: LatencyStatsSchema,
  /** batchSize × 1000 / mean latency. */
  throughputSamplesPerSec: z.number(),
});
export type BenchBatchResult = z.infer<typeof BenchBatchResultSchema>;

export const ModelSizeSchema = z.object({
  /** The .onnx file itself. */
  modelBytes: z.number().int().nonnegative(),
  /** External data files the model references (each counted once). */
  externalDataBytes: z.number().int().nonnegative(),
  totalBytes: z.number().int().nonnegative(),
});
export type ModelSize = z.infer<typeof ModelSizeSchema>;

/** Ratios of one model against the first (the float model); > 1 means larger/slower for sizes and times. */
export const BenchRatiosSchema = z.object({
  size: z.number(),
  sessionCreate: z.number(),
  peakRss: z.number(),
  batches: z.array(
    z.object({
      batchSize: z.number().int().positive(),
      /** This model's p50 / the first model's p50. */
      latencyP50: z.number(),
      /** The first model's mean latency / this model's (> 1 = faster). */
      speedup: z.number(),
      throughput: z.number(),
    }),
  ),
});
export type BenchRatios = z.infer<typeof BenchRatiosSchema>;

export const BenchModelResultSchema = z.object({
  file: z.string(),
  size: ModelSizeSchema,
  /** Time to create the onnxruntime session (parse, optimize, allocate), ms. */
  sessionCreateMs: z.number(),
  /** Resident memory of the measuring process before the session was created. */
  baselineRssBytes: z.number().int().nonnegative(),
  /** Peak resident memory of the measuring process (its own child process) while the session ran. */
  peakRssBytes: z.number().int().nonnegative(),
  results: z.array(BenchBatchResultSchema),
  /** Against the first model; absent for the first. */
  ratios: BenchRatiosSchema.optional(),
});
export type BenchModelResult = z.infer<typeof BenchModelResultSchema>;

/** qtool.bench/1: what `qtool bench` measured. */
export const BenchReportSchema = z.object({
  kind: z.literal('qtool.bench'),
  version: z.literal(1),
  settings: z.object({
    runs: z.number().int().positive(),
    warmup: z.number().int().nonnegative(),
    batchSizes: z.array(z.number().int().positive()),
    threads: z.number().int().positive(),
    /** Where inputs came from: a data file, or generated from the model's input shapes. */
    inputs: z.enum(['data', 'generated']),
    data: z.string().optional(),
    /** Each model was measured in its own child process. */
    isolation: z.enum(['process', 'none']),
  }),
  environment: z.object({
    node: z.string(),
    platform: z.string(),
    arch: z.string(),
    cpus: z.number().int(),
    cpuModel: z.string(),
  }),
  models: z.array(BenchModelResultSchema).min(1),
  /** Notes about the inputs (generated data, a fixed batch size that overrode --batch, tiled samples). */
  warnings: z.array(z.string()),
});
export type BenchReport = z.infer<typeof BenchReportSchema>;
