import { z } from 'zod';
import { CalibrationMethodSchema } from './calibration.js';
import { DataOptionsSchema } from './data-options.js';

/** Options of calibrate() and `qtool calibrate` (defaults and help text live here only). */
export const CalibrateOptionsSchema = z.object({
  method: CalibrationMethodSchema.default('minmax').describe('how a tensor range is chosen from its statistics'),
  percentile: z.number().gt(50).max(100).default(99.999).describe('percentile method: the percentile of the values (or of |x| when symmetric) taken as the range end'),
  symmetric: z.boolean().default(false).describe('percentile/entropy/mse: use [-t, t] instead of clipping the observed [min, max] to the threshold t'),
  bins: z.number().int().min(128).max(65536).default(2048).describe('histogram bins of |x| for entropy/mse (TensorRT uses 2048); the streaming histogram keeps twice as many signed bins'),
  batchSize: z.number().int().positive().default(16).describe('samples per onnxruntime run'),
  maxSamples: z.number().int().positive().default(2048).describe('use at most the first N samples (bounds time on huge or hostile data)'),
  seed: z.number().int().nonnegative().default(0).describe('seed for --data random'),
  movingAverage: z.number().min(0).max(1).default(0).describe('minmax: 0 keeps the true min/max; c in (0, 1] tracks min += c*(batchMin - min) across batches'),
  skipNonfinite: z.boolean().default(false).describe('skip data samples holding NaN/Inf instead of failing'),
  tensors: z.array(z.string()).optional().describe('calibrate only these tensors (default: every float activation of the main graph and the float graph inputs)'),
  ...DataOptionsSchema.shape,
});
export type CalibrateSettings = z.infer<typeof CalibrateOptionsSchema>;
/** What callers may pass: every field optional. */
export type CalibrateOptions = z.input<typeof CalibrateOptionsSchema>;
