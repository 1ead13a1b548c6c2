import { z } from 'zod';
import { FormatDecisionSchema } from './latency.js';

/** Precision a layer runs at: 4/8/16-bit integer weights, or kept float. */
export const LayerBitsSchema = z.union([z.literal(4), z.literal(8), z.literal(16), z.literal('float')]);
export type LayerBits = z.infer<typeof LayerBitsSchema>;

export const LayerPlanSchema = z.object({
  bits: LayerBitsSchema,
  granularity: z.enum(['tensor', 'channel', 'block', 'group']).optional(),
  blockSize: z.number().int().positive().optional(),
  symmetric: z.boolean().optional(),
  /** Weight rounding: round-to-nearest, or a per-channel/per-block clip search minimising weight MSE. */
  rounding: z.enum(['nearest', 'mse-clip']).optional(),
  /**
   * How integer weights are chosen: round-to-nearest (default) or GPTQ (error-compensating rounding
   * from the layer-input Hessian of the calibration data; needs data).
   */
  algorithm: z.enum(['rtn', 'gptq']).optional(),
});
export type LayerPlan = z.infer<typeof LayerPlanSchema>;

/**
 * The rewriter's input and the search's output (qtool.plan/1): per-layer precision keyed by layer id
 * (see QuantizableLayer.id), with defaults for layers not listed.
 */
export const PlanSchema = z.object({
  kind: z.literal('qtool.plan'),
  version: z.literal(1),
  model: z.object({ file: z.string(), sha256: z.string() }).optional(),
  mode: z.enum(['static', 'dynamic', 'weight-only']).describe('static QDQ W8A8, dynamic W8 (runtime activation quantization) or weight-only (INT4)'),
  defaults: LayerPlanSchema,
  layers: z.record(z.string(), LayerPlanSchema),
  /** The measured format decision of the quantize run that wrote this plan (replayed without measuring). */
  tuning: FormatDecisionSchema.optional(),
});
export type Plan = z.infer<typeof PlanSchema>;
