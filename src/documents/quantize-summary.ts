import { z } from 'zod';

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
});
export type LayerRecord = z.infer<typeof LayerRecordSchema>;

export const OutputFidelitySchema = z.object({
  name: z.string(),
  cosine: z.number(),
  sqnrDb: z.number(),
  maxAbsError: z.number(),
  /** Fraction of rows where float and quantized argmax agree (classifier-shaped outputs only). */
  top1Agreement: z.number().optional(),
});

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
  fidelity: z.object({ samples: z.number(), outputs: z.array(OutputFidelitySchema) }).optional(),
});
export type QuantizeSummary = z.infer<typeof QuantizeSummarySchema>;
