import { z } from 'zod';
import { CalibrationMethodSchema } from './calibration.js';
import { DataOptionsSchema, DataSourceSchema, LabelSourceSchema } from './data-options.js';

/**
 * Every option of `quantize()` / `qtool quantize`, defined once: the CLI reads flag help and
 * defaults from here.
 */
export const QuantizeOptionsSchema = z.object({
  bits: z.union([z.literal(4), z.literal(8)]).default(8).describe('weight bits: 8 (INT8) or 4 (INT4 weight-only)'),
  mode: z
    .enum(['auto', 'static', 'dynamic', 'weight-only'])
    .default('auto')
    .describe('auto: static QDQ W8A8 with calibration data, dynamic W8 without, weight-only for 4 bits'),
  data: DataSourceSchema.optional().describe('calibration data (.npy/.npz/.jsonl, a folder of arrays, images or WAV files, or feeds in memory) for static quantization and the fidelity check'),
  calib: z.string().optional().describe('a calibration table (qtool.calibration/1) instead of --data'),
  method: CalibrationMethodSchema.default('minmax').describe('calibration method when --data is given'),
  samples: z.number().int().positive().default(256).describe('at most this many calibration samples'),
  batchSize: z.number().int().positive().default(32).describe('calibration batch size'),
  plan: z.string().optional().describe('a mixed-precision plan (qtool.plan/1) overriding bits per layer'),
  activationType: z.enum(['uint8', 'int8']).default('uint8').describe('static activations: asymmetric uint8 or symmetric int8'),
  symmetric: z.boolean().optional().describe('symmetric weights (default: yes for 8 bits, no (uint4 + zero points) for 4 bits)'),
  blockSize: z.union([z.literal(16), z.literal(32), z.literal(64), z.literal(128)]).default(32).describe('INT4 block size along the reduction axis'),
  groupSize: z.union([z.literal(16), z.literal(32), z.literal(64), z.literal(128)]).optional().describe('8-bit MatMul/Gemm weights in groups of this size (ZeroQuant-style, emitted as 8-bit MatMulNBits)'),
  int4Format: z.enum(['nbits', 'qdq']).default('nbits').describe('INT4 form: com.microsoft MatMulNBits or opset-21 DequantizeLinear with block_size'),
  accuracyLevel: z
    .union([z.literal(0), z.literal(1), z.literal(2), z.literal(3), z.literal(4)])
    .optional()
    .describe('MatMulNBits accuracy_level (4: int8 activations; default: 0 or 4, whichever measures faster here, or the level a --plan records)'),
  weightClip: z.enum(['none', 'mse']).default('none').describe('per-channel/per-block weight clipping search minimising quantization MSE'),
  algorithm: z
    .enum(['rtn', 'gptq', 'awq', 'awq+gptq'])
    .default('rtn')
    .describe('weight rounding: rtn (round to nearest), gptq (error-compensating, from the layer-input Hessian), awq (activation-aware input-channel scaling folded into the graph), awq+gptq; all but rtn need --data'),
  actOrder: z.boolean().default(true).describe('GPTQ: quantize columns in decreasing Hessian-diagonal order (same storage, no g_idx, no speed cost)'),
  dampening: z.number().positive().max(1).default(0.01).describe('GPTQ: dampening added to the Hessian diagonal, relative to its mean'),
  biasCorrection: z
    .enum(['auto', 'on', 'off'])
    .default('auto')
    .describe('static INT8 bias correction b − (Ŵ − W)·E[x] from the calibration data; auto keeps it when it lowers the output MSE on that data'),
  outlierThreshold: z
    .number()
    .positive()
    .optional()
    .describe('dynamic INT8: input channels whose calibrated max |x| exceeds this run in a float side MatMul (LLM.int8() split; off by default)'),
  smooth: z
    .union([z.number().min(0).max(1), z.enum(['auto', 'off'])])
    .optional()
    .describe("dynamic INT8: SmoothQuant α (0–1, e.g. 0.5), 'auto' or 'off': input-channel scales max|x|^α / max|w|^(1−α) from --data, folded into the preceding LayerNorm γ/β, decomposed LayerNorm or MatMul/Gemm output channels, else a Mul; auto (α 0.5) keeps it when the INT8 output MSE on the calibration data is lower (off by default)"),
  excludeOps: z.array(z.string()).default([]).describe('op types to keep float'),
  excludeNodes: z.array(z.string()).default([]).describe('node names (or layer ids) to keep float'),
  includeNodes: z.array(z.string()).default([]).describe('quantize only these nodes (names or layer ids)'),
  integerElementwise: z.boolean().default(false).describe('static INT8: also run hard-swish and squeeze-excitation gates as integer ops (QLinearAdd/QLinearMul on scalar adds/muls and products of quantized tensors); faster on MobileNet-style models, one more requantization per op'),
  foldActivations: z.boolean().default(true).describe('let Relu/Clip be absorbed by the quantized output range'),
  foldBatchNorm: z.boolean().default(true).describe('fold BatchNormalization, and Mul/Add by per-channel constants, into the Conv before them (as onnxruntime does to the float model), so no float op runs between quantized convs'),
  equalize: z
    .enum(['auto', 'on', 'off'])
    .default('auto')
    .describe('static INT8 with --data: cross-layer equalisation of Conv → (Relu/LeakyRelu/PRelu/pool) → Conv pairs from per-channel activation statistics (exact in float); auto rescales a pair when its predicted output rounding noise drops'),
  bench: z.boolean().default(true).describe('time float vs the quantized model briefly (interleaved), keep the faster format candidate, and warn when the result is slower than float'),
  keepSlowFloat: z.boolean().default(false).describe('when the static INT8 model measures slower than float, also try keeping float the layers onnxruntime\'s profiler times slower quantized than float, and write that if it measures faster (bigger file)'),
  compareDynamic: z
    .boolean()
    .default(false)
    .describe('INT8 with --data and no explicit --mode (static by default): also time dynamic INT8 against float and static, and write the faster (recorded in plan.tuning; --plan replays it)'),
  tuneSeconds: z.number().positive().default(2).describe('seconds of interleaved timing for the latency check and format choice'),
  latencyCache: z.boolean().default(true).describe('reuse latency measurements cached by model hash, CPU and onnxruntime version ($QTOOL_CACHE_DIR, else $XDG_CACHE_HOME/qtool or ~/.cache/qtool)'),
  savePlan: z.string().optional().describe('write the applied plan (with the measured format decision) here; --plan replays it without measuring again'),
  output: z.string().optional().describe('output file (default: <model>.int8.onnx / <model>.int4.onnx next to the input)'),
  force: z.boolean().default(false).describe('overwrite an existing output file'),
  maxTensorBytes: z.number().int().positive().optional().describe('cap on a sparse tensor densified for quantization, in bytes; unset: 256 MiB and at most 4096 dense elements per stored value (onnx DEFAULT_MAX_TENSOR_BYTES)'),
  externalData: z.boolean().default(false).describe('store tensors in an external data file next to the output'),
  fidelitySamples: z.number().int().nonnegative().default(64).describe('samples used for the float vs quantized check, after the calibration samples when --data has more (0: skip)'),
  minTensorSqnrDb: z
    .number()
    .default(20)
    .describe('tensors whose measured expected SQNR at 8 bits is below this (dB) stay float; also the output fidelity floor'),
  allowUnchanged: z.boolean().default(false).describe('accept a result that quantizes less than half of the weight bytes (otherwise exit 4)'),
  maxDrop: z
    .number()
    .nonnegative()
    .optional()
    .describe('accuracy guarantee: allowed drop vs float (points for accuracy/agreement, percent relative for cosine/sqnr); layers are kept at higher precision until it holds'),
  metric: z
    .enum(['accuracy', 'agreement', 'cosine', 'sqnr'])
    .optional()
    .describe('metric of --max-drop (default: accuracy with --eval-labels, else cosine)'),
  eval: DataSourceSchema.optional().describe('evaluation data for --max-drop (default: the last 25% of --data, at least 4 samples, held out of calibration)'),
  evalLabels: LabelSourceSchema.optional().describe('labels of the evaluation data (metric accuracy): .npy or .csv (default: the class folders of an image --eval)'),
  ...DataOptionsSchema.shape,
});
export type QuantizeSettings = z.infer<typeof QuantizeOptionsSchema>;
/** The written form: every field optional. */
export type QuantizeOptions = z.input<typeof QuantizeOptionsSchema>;
