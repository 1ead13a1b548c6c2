import { z } from 'zod';
import { DataOptionsSchema, DataSourceSchema, LabelSourceSchema } from './data-options.js';

/** Loss between the float model's outputs and the perturbed model's outputs. */
export const SensitivityLossSchema = z
  .enum(['kl', 'ce', 'mse'])
  .describe('loss L: KL divergence from the float softmax outputs (classifiers), cross-entropy with labels, or output MSE');
export type SensitivityLoss = z.infer<typeof SensitivityLossSchema>;

/** Candidate integer bit widths a layer can take. */
export const CandidateBitsSchema = z.union([z.literal(4), z.literal(8), z.literal(16)]);
export type CandidateBits = z.infer<typeof CandidateBitsSchema>;

/** Options of measureSensitivity (library) and `qtool sensitivity` (CLI). Defined once, here. */
export const SensitivityOptionsSchema = z.object({
  bits: z.array(CandidateBitsSchema).min(1).default([4, 8]).describe('candidate weight bit widths'),
  loss: SensitivityLossSchema.optional().describe('loss (default: ce with labels, kl for classifier outputs [N, C], else mse)'),
  probes: z.number().int().min(2).default(32).describe('maximum Rademacher probes per layer for the Hessian trace'),
  minProbes: z.number().int().min(2).default(4).describe('probes before the standard-error stopping rule applies'),
  relStderr: z.number().positive().default(0.05).describe('stop probing when stderr < relStderr * |mean|'),
  epsilonRel: z.number().positive().default(0.01).describe('finite-difference step relative to the layer RMS weight'),
  stabilityProbes: z.number().int().min(0).default(2).describe('probes re-run at epsilon/2 to check the step (0: skip)'),
  samples: z.number().int().positive().default(64).describe('calibration samples used for the probes and measured losses (a fixed seeded subset)'),
  covarianceRows: z.number().int().positive().default(4096).describe('activation rows (im2col patches) sampled per layer for E[x xT]'),
  maxCovarianceDim: z.number().int().positive().default(2048).describe('above this reduction size only the diagonal of E[x xT] is kept'),
  seed: z.number().int().default(1234).describe('seed of the subset, the probes and the patch sampling'),
  leaveOneOut: z.boolean().default(true).describe('measure the loss recovered by restoring each layer in the all-low model'),
  blockSize: z.number().int().min(16).default(32).describe('INT4 block size along the reduction axis'),
  ...DataOptionsSchema.shape,
});
export type SensitivityOptions = z.input<typeof SensitivityOptionsSchema>;
export type SensitivitySettings = z.output<typeof SensitivityOptionsSchema>;

/**
 * Options of the `sensitivity()` door and `qtool sensitivity`: the measurement options plus the data,
 * the files written and the gate. The CLI's flag table takes help text and defaults from here; the
 * stage (measureSensitivity) only sees SensitivityOptionsSchema.
 */
export const SensitivityRunOptionsSchema = SensitivityOptionsSchema.extend({
  data: DataSourceSchema.describe('calibration inputs (.npy/.npz/.jsonl, a folder of arrays, images or WAV files, or feeds in memory); a seeded subset is used'),
  labels: LabelSourceSchema.optional().describe('labels .npy/.csv (one class id per sample): loss ce (default: the data\'s own, e.g. image class folders)'),
  output: z.string().optional().describe('write the report (qtool.sensitivity/1) to this file'),
  markdownOutput: z.string().optional().describe('write the Markdown table to this file'),
  htmlOutput: z.string().optional().describe('write a self-contained HTML page with an SVG bar chart'),
  failOver: z.number().optional().describe("exit 4 (after writing) when any layer's measured loss exceeds this"),
  force: z.boolean().default(false).describe('overwrite existing output files'),
});

export const HessianEstimateSchema = z.object({
  /** Hutchinson estimate of tr(H) of the loss w.r.t. this layer's weights. */
  trace: z.number(),
  stderr: z.number(),
  probes: z.number().int(),
  /** Absolute step (epsilonRel · RMS weight). */
  epsilon: z.number(),
  epsilonRel: z.number(),
  /** Estimate with epsilon/2 on the first stabilityProbes probes, and the same probes at epsilon. */
  traceHalfEpsilon: z.number().nullable(),
  traceSameProbes: z.number().nullable(),
  /** |halfEps − sameProbes| / |sameProbes|. */
  stabilityRelDiff: z.number().nullable(),
  isStable: z.boolean().nullable(),
});
export type HessianEstimate = z.infer<typeof HessianEstimateSchema>;

export const LayerwiseProxySchema = z.object({
  /** tr(2·E[x xᵀ]) = 2·E‖x‖² over the reduction vector x (im2col patch for Conv). */
  traceH: z.number(),
  /** Activation rows averaged (exactly, for the trace). */
  rows: z.number().int(),
  /** Rows sampled for E[x xᵀ]. */
  covarianceRows: z.number().int(),
  /** 'full' E[x xᵀ], or 'diagonal' when the reduction size exceeds maxCovarianceDim. */
  covariance: z.enum(['full', 'diagonal']),
});

export const LayerBitsEntrySchema = z.object({
  bits: CandidateBitsSchema,
  /** ‖Q_b(W) − W‖² */
  quantErrorSq: z.number(),
  /** HAWQ-v2 Ω(b) = ½ · tr(H)/n · ‖Q_b(W) − W‖², tr(H) from the Hutchinson estimate. */
  omega: z.number(),
  /** Σ_rows Δwᵀ E[x xᵀ] Δw (layer-wise reconstruction error), null when the proxy is not available. */
  reconstructionError: z.number().nullable(),
  /** End-to-end loss with only this layer quantized at these bits. */
  measuredLoss: z.number(),
  /** Stored size of this layer's weight at these bits (design.md size accounting). */
  sizeBytes: z.number(),
});

export const LayerSensitivitySchema = z.object({
  id: z.string(),
  opType: z.string(),
  weight: z.string(),
  weightDims: z.array(z.number().int()),
  parameters: z.number().int(),
  floatBytes: z.number(),
  hessian: HessianEstimateSchema,
  layerwise: LayerwiseProxySchema.nullable(),
  bits: z.array(LayerBitsEntrySchema),
  /** Loss with all layers at the lowest bits except this one at the highest; recovered = allLow − this. */
  leaveOneOut: z.object({ loss: z.number(), recovered: z.number() }).nullable(),
  /** Combined score used to order layers for the search (higher = more sensitive). */
  score: z.number(),
});
export type LayerSensitivity = z.infer<typeof LayerSensitivitySchema>;

export const SensitivityReportSchema = z.object({
  kind: z.literal('qtool.sensitivity'),
  version: z.literal(1),
  model: z.object({ file: z.string(), sha256: z.string() }),
  loss: SensitivityLossSchema,
  output: z.string(),
  /** 'weights': fake-quantized weights fed through the weights-as-inputs session (weight quantization only);
   *  'rewrite': the real rewritten model (weights and activations) through the evaluator. */
  measuredPath: z.enum(['weights', 'rewrite']),
  settings: z.object({
    bits: z.array(CandidateBitsSchema),
    probes: z.number().int(),
    minProbes: z.number().int(),
    relStderr: z.number(),
    epsilonRel: z.number(),
    stabilityProbes: z.number().int(),
    samples: z.number().int(),
    covarianceRows: z.number().int(),
    seed: z.number().int(),
    blockSize: z.number().int(),
  }),
  /** L(W₀): 0 for kl/mse, the float model's cross-entropy for ce. */
  baseLoss: z.number(),
  /** Loss with every layer at the lowest candidate bits (null when leave-one-out is off). */
  allLowLoss: z.number().nullable(),
  /** Bytes of everything in the model that is not a quantizable layer weight. */
  otherBytes: z.number(),
  layers: z.array(LayerSensitivitySchema),
  /** onnxruntime runs made, by purpose. */
  runs: z.object({ reference: z.number().int(), hessian: z.number().int(), measured: z.number().int() }),
});
export type SensitivityReport = z.infer<typeof SensitivityReportSchema>;
