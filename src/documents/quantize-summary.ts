import { z } from 'zod';
import { QuantizeLatencySchema } from './latency.js';

/** What the rewriter did to one quantizable layer (Conv/ConvTranspose/MatMul/Gemm with a constant weight). */
export const LayerRecordSchema = z.object({
  /** QuantizableLayer.id: node name, or `<opType>#<position>[@<graph path>]`. */
  id: z.string(),
  opType: z.string(),
  /** Graph path ("main" or a subgraph path). */
  graph: z.string(),
  bits: z.union([z.literal(4), z.literal(8), z.literal('float')]),
  /**
   * static-qdq: int8 weights + quantized activations (integer kernels); dynamic: DynamicQuantizeMatMul;
   * matmul-nbits: com.microsoft MatMulNBits; qdq-blocked: DequantizeLinear(block_size) → MatMul;
   * weight-only: integer weight behind DequantizeLinear, float compute; float: unchanged.
   */
  scheme: z.enum(['static-qdq', 'dynamic', 'matmul-nbits', 'qdq-blocked', 'weight-only', 'float']),
  /** Why the layer is float or not fully quantized. */
  reason: z.string().optional(),
  weightBytes: z.object({ before: z.number(), after: z.number() }).optional(),
  /** How the weight was rounded: round-to-nearest (default, omitted) or GPTQ. */
  algorithm: z.enum(['rtn', 'gptq']).optional(),
  /** Σ Δwᵀ H Δw on the calibration Hessian: round-to-nearest and what was written. */
  reconstructionError: z.object({ rtn: z.number(), after: z.number() }).optional(),
});
export type LayerRecord = z.infer<typeof LayerRecordSchema>;

export const OutputFidelitySchema = z.object({
  name: z.string(),
  cosine: z.number(),
  sqnrDb: z.number(),
  maxAbsError: z.number(),
  /** Fraction of rows where float and quantized argmax agree (classifier-shaped outputs only). */
  top1Agreement: z.number().optional(),
  /** Sequence outputs [N, T, C]: fraction of positions where float and quantized argmax over C agree. */
  positionAgreement: z.number().optional(),
  /**
   * Sequence outputs [N, T, C]: fraction of sequences whose greedy decode (argmax path, repeats merged,
   * the float output's most frequent class taken as the blank and dropped) is identical.
   */
  sequenceAgreement: z.number().optional(),
});

/** A tensor kept at higher precision because its measured expected SQNR was below the floor. */
export const LowPrecisionTensorSchema = z.object({
  tensor: z.string(),
  kind: z.enum(['activation', 'weight']),
  sqnrDb: z.number(),
  floorDb: z.number(),
  domain: z.enum(['linear', 'log']),
  action: z.string(),
});

/** One measurement of the budget metric on the evaluation data. */
export const BudgetResultSchema = z.object({
  /** The metric value (accuracy and agreement as fractions). */
  value: z.number(),
  /** Drop vs the reference in the --max-drop units, positive = worse. */
  drop: z.number(),
  passes: z.boolean(),
});

/** `--max-drop`: the accuracy guarantee, what the uniform model measured and what was written. */
export const QuantizeBudgetSchema = z.object({
  metric: z.enum(['accuracy', 'agreement', 'cosine', 'sqnr']),
  maxDrop: z.number(),
  /** 'points' (accuracy, agreement) or 'percent' (relative: cosine, sqnr). */
  dropUnit: z.enum(['points', 'percent']),
  /** Where the evaluation samples came from (--eval, or the held-out tail of --data). */
  eval: z.object({ source: z.string(), samples: z.number(), isHeldOut: z.boolean() }),
  /** What drops are measured against: float (accuracy; 1 for agreement/cosine by definition) or, for sqnr, the all-8-bit model. */
  reference: z.object({ label: z.string(), value: z.number() }),
  /** Precision levels the search chose from, highest first (float, 8 for --bits 8; 8, 4 for --bits 4). */
  levels: z.array(z.union([z.literal(4), z.literal(8), z.literal('float')])),
  /** Every layer quantized as asked. */
  uniform: BudgetResultSchema,
  /** The written model. */
  final: BudgetResultSchema,
  /** Layers kept at higher precision than --bits, most sensitive first, and why. */
  kept: z.array(z.object({ id: z.string(), opType: z.string(), bits: z.union([z.literal(8), z.literal('float')]), reason: z.string() })),
  /** Candidate models run on the evaluation data (the uniform one, then the search's; the float reference run of accuracy not counted). */
  evaluations: z.number().int(),
  isSearched: z.boolean(),
  budgetMet: z.boolean(),
  notes: z.array(z.string()),
});
export type QuantizeBudget = z.infer<typeof QuantizeBudgetSchema>;

/** qtool.quantize-summary/1: what `qtool quantize` wrote and how it checked it. */
export const QuantizeSummarySchema = z.object({
  kind: z.literal('qtool.quantize-summary'),
  version: z.literal(1),
  input: z.object({ file: z.string(), sizeBytes: z.number() }),
  output: z.object({ file: z.string(), sizeBytes: z.number(), externalFiles: z.array(z.string()) }),
  mode: z.enum(['static', 'dynamic', 'weight-only']),
  bits: z.union([z.literal(4), z.literal(8)]),
  sizeRatio: z.number(),
  /** Counts by op type: how many layers at each precision. */
  byOpType: z.record(z.string(), z.object({ int8: z.number(), int4: z.number(), float: z.number() })),
  layers: z.array(LayerRecordSchema),
  /** Other graph changes worth knowing (opset raised, domains added, nodes folded). */
  notes: z.array(z.string()),
  calibration: z.object({ source: z.string(), method: z.string(), samples: z.number() }).optional(),
  /** onnxruntime loaded the output; op counts of its optimized graph (fused integer kernels). */
  runtime: z.object({ loaded: z.literal(true), optimizedOps: z.record(z.string(), z.number()) }),
  fidelity: z
    .object({
      samples: z.number(),
      /** The samples were not used for calibration (false: --data had no samples beyond the calibration ones). */
      isHeldOut: z.boolean(),
      outputs: z.array(OutputFidelitySchema),
      /** Below the fidelity floor: layers measured one at a time (real rewrite, that layer alone), worst first. */
      worstLayers: z.array(z.object({ id: z.string(), sqnrDb: z.number(), agreement: z.number().optional() })).optional(),
    })
    .optional(),
  /** Tensors kept at higher precision by measurement (expected SQNR below the floor), with the figures. */
  lowPrecision: z.array(LowPrecisionTensorSchema),
  /** Top-level warnings: nothing (or little) quantized, random data, calibration coverage, fidelity below the floor. */
  warnings: z.array(z.string()),
  /** With --max-drop: the measured accuracy guarantee. */
  budget: QuantizeBudgetSchema.optional(),
  /** Float vs quantized latency, measured briefly (absent with --no-bench). */
  latency: QuantizeLatencySchema.optional(),
});
export type QuantizeSummary = z.infer<typeof QuantizeSummarySchema>;
