import { walkGraphs, type Model } from '../onnx/index.js';

/** What onnxruntime's optimized graph of a quantized model still does in float or per run. */
export interface RuntimeGraphFindings {
  /** DequantizeLinear nodes on constant weights: they run every inference (weight-only, not fused). */
  weightDequantize: number;
  /** Float ops fed by a DequantizeLinear of an activation: float islands between Q/DQ, by op type. */
  floatIslands: Record<string, number>;
  /** QuantizeLinear / DequantizeLinear nodes left at run time (activations). */
  activationQuantize: number;
  activationDequantize: number;
  /** MatMulNBits nodes (INT4/8-bit block weights dequantized or int8-multiplied each run). */
  matmulNBits: number;
  /** Fused float kernels of the float model's optimized graph that the quantized one has fewer of. */
  lostFusions: Record<string, { float: number; quantized: number }>;
  /** Layout reorders (NCHWc ReorderInput/ReorderOutput, Transpose) added relative to the float graph. */
  addedReorders: number;
}

const Q_OPS = new Set(['QuantizeLinear', 'DynamicQuantizeLinear']);
const DQ_OPS = new Set(['DequantizeLinear']);
const REORDER_OPS = new Set(['ReorderInput', 'ReorderOutput', 'Transpose']);
/** Fused float kernels onnxruntime's CPU optimizer produces (their absence after quantization is a lost fusion). */
const FUSED_FLOAT = /^(Fused|BiasGelu|FastGelu|SkipLayerNormalization|SkipSimplifiedLayerNormalization|LayerNormalization|Attention|MultiHeadAttention|BiasAdd|QuickGelu|Gelu|BiasSoftmax|NhwcFusedConv)/;

/** Op counts of a model's graphs (main and subgraphs). */
export function opCounts(model: Model): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const g of walkGraphs(model.proto.graph!)) for (const n of g.node) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
  return counts;
}

/**
 * Read an onnxruntime-optimized quantized graph (SessionOptions.optimizedModelFilePath) for the usual
 * reasons a quantized model runs slower than float; `floatOps` are the op counts of the float model's
 * optimized graph, for the lost fusions and reorders.
 */
export function runtimeGraphFindings(optimized: Model, floatOps: Readonly<Record<string, number>> = {}): RuntimeGraphFindings {
  const constants = new Set<string>();
  for (const g of walkGraphs(optimized.proto.graph!)) {
    for (const t of g.initializer) constants.add(t.name);
    for (const n of g.node) if (n.opType === 'Constant') for (const o of n.output) constants.add(o);
  }
  const f: RuntimeGraphFindings = { weightDequantize: 0, floatIslands: {}, activationQuantize: 0, activationDequantize: 0, matmulNBits: 0, lostFusions: {}, addedReorders: 0 };
  for (const g of walkGraphs(optimized.proto.graph!)) {
    const activationDq = new Set<string>();
    for (const n of g.node) {
      if (DQ_OPS.has(n.opType)) {
        if (constants.has(n.input[0])) f.weightDequantize++;
        else {
          f.activationDequantize++;
          activationDq.add(n.output[0]);
        }
      } else if (Q_OPS.has(n.opType)) f.activationQuantize++;
      else if (n.opType === 'MatMulNBits') f.matmulNBits++;
    }
    for (const n of g.node) {
      if (DQ_OPS.has(n.opType) || Q_OPS.has(n.opType)) continue;
      if (n.input.some((i) => activationDq.has(i))) f.floatIslands[n.opType] = (f.floatIslands[n.opType] ?? 0) + 1;
    }
  }
  const q = opCounts(optimized);
  for (const [op, n] of Object.entries(floatOps)) {
    if (FUSED_FLOAT.test(op) && (q[op] ?? 0) < n) f.lostFusions[op] = { float: n, quantized: q[op] ?? 0 };
  }
  let reordersQ = 0;
  let reordersF = 0;
  for (const op of REORDER_OPS) {
    reordersQ += q[op] ?? 0;
    reordersF += floatOps[op] ?? 0;
  }
  f.addedReorders = Math.max(0, reordersQ - reordersF);
  return f;
}

/** The findings as short causes, most common first; empty when the graph shows none of them. */
export function slowdownCauses(f: RuntimeGraphFindings): string[] {
  const causes: string[] = [];
  const islands = Object.entries(f.floatIslands).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const islandCount = islands.reduce((s, [, n]) => s + n, 0);
  if (islandCount > 0) {
    causes.push(`float islands between Q/DQ: ${islandCount} op(s) run float on dequantized activations (${islands.slice(0, 5).map(([op, n]) => `${op}×${n}`).join(', ')}${islands.length > 5 ? ', …' : ''}), each paying a DequantizeLinear/QuantizeLinear pass`);
  }
  if (f.weightDequantize > 0) causes.push(`weight-only DQ every run: ${f.weightDequantize} DequantizeLinear on constant weights are recomputed at each inference (no integer kernel took them)`);
  if (f.matmulNBits > 0) causes.push(`${f.matmulNBits} MatMulNBits: block weights are unpacked per run; on weights that fit in cache a float MatMul is often faster`);
  const lost = Object.entries(f.lostFusions);
  if (lost.length > 0) causes.push(`unfused ops: the float graph's fused kernels are lost (${lost.map(([op, c]) => `${op} ${c.float}→${c.quantized}`).join(', ')})`);
  if (f.addedReorders > 0) causes.push(`${f.addedReorders} more layout reorders/transposes than the float graph`);
  return causes;
}
