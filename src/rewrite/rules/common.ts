import { getAttr, getFloatAttr, getIntAttr, tensorFromProto, type NodeProto } from '../../onnx/index.js';
import { toFloat32 } from '../../tensor/index.js';
import type { LayerRecord } from '../../documents/index.js';
import type { Edit, RuleContext, WeightSpec } from '../edits.js';

/** A summary record for the node the rule is looking at. */
export function record(node: NodeProto, ctx: RuleContext, bits: LayerRecord['bits'], scheme: LayerRecord['scheme'], reason?: string): Edit {
  return { kind: 'layer', record: { id: ctx.nodeId, opType: node.opType, graph: ctx.scope.path, bits, scheme, ...(reason ? { reason } : {}) } };
}

export function floatRecord(node: NodeProto, ctx: RuleContext, reason: string): Edit[] {
  return [record(node, ctx, 'float', 'float', reason)];
}

/** Why a layer the plan leaves float is float. */
export function planFloatReason(ctx: RuleContext): string {
  if (ctx.plan.bits === 16) return 'plan asks for 16 bits, which qtool does not emit (4 or 8 only)';
  return ctx.plan.reason ?? 'plan: float';
}

/** An 8-bit weight spec from the layer plan. */
export function weight8(ctx: RuleContext, axis: number, perTensor = false, multiplier?: number): WeightSpec {
  const granularity = perTensor || ctx.plan.granularity === 'tensor' ? 'tensor' : 'channel';
  return { bits: 8, symmetric: ctx.plan.symmetric ?? true, granularity, axis, clip: ctx.plan.clip, ...(multiplier !== undefined && multiplier !== 1 ? { multiplier } : {}) };
}

/**
 * Where the quantized output of `tensor` should be taken: the tensor itself, or the output of a
 * single Relu / Clip(min 0) consumer, which onnxruntime then removes (ReluQuantFusion /
 * ClipQuantFusion) because the uint8 QuantizeLinear with zero point 0 clamps the same way.
 */
export function outputToQuantize(tensor: string, ctx: RuleContext): string {
  if (!ctx.foldActivations || ctx.activationType !== 'uint8' || ctx.isGraphOutput(tensor)) return tensor;
  const cons = ctx.consumers(tensor);
  if (cons.length !== 1) return tensor;
  const c = cons[0];
  if (c.domain !== '' || c.output.length !== 1) return tensor;
  if (c.opType === 'Relu') return c.output[0];
  if (c.opType === 'Clip' && clipMin(c, ctx) === 0) return c.output[0];
  return tensor;
}

function clipMin(node: NodeProto, ctx: RuleContext): number | undefined {
  if (getAttr(node, 'min')) return getFloatAttr(node, 'min', NaN);
  const minName = node.input[1];
  if (!minName) return undefined;
  const t = ctx.constant(minName);
  if (!t) return undefined;
  const v = toFloat32(tensorFromProto(t));
  return v.length === 1 ? v[0] : undefined;
}

/**
 * Edits that quantize the output of `node` (through a foldable Relu/Clip when there is one), or
 * nothing when the chosen tensor has no usable range or is a graph output and `optional` is set.
 */
export function outputEdits(node: NodeProto, ctx: RuleContext, optional: boolean): Edit[] {
  const y = outputToQuantize(node.output[0], ctx);
  if (optional && (ctx.isGraphOutput(y) || !ctx.range(y).ok)) return [];
  const edits: Edit[] = [{ kind: 'qdq-activation', scope: ctx.scope, tensor: y }];
  if (y !== node.output[0]) edits.push({ kind: 'fold-activation', scope: ctx.scope, node: ctx.consumers(node.output[0])[0], producer: node });
  return edits;
}

/** Is the constant a float32 tensor (the only weight type qtool quantizes)? */
export function isFloat32Constant(name: string | undefined, ctx: RuleContext): boolean {
  if (!name) return false;
  const t = ctx.constant(name);
  return t !== undefined && t.dataType === 1;
}

export function gemmScalars(node: NodeProto): { alpha: number; beta: number; transA: number; transB: number } {
  return {
    alpha: getFloatAttr(node, 'alpha', 1),
    beta: getFloatAttr(node, 'beta', 1),
    transA: getIntAttr(node, 'transA', 0),
    transB: getIntAttr(node, 'transB', 0),
  };
}

/** 1-D [N] or [1, N] bias of N elements. */
export function isVectorBias(name: string | undefined, n: number, ctx: RuleContext): boolean {
  if (!name) return false;
  const t = ctx.constant(name);
  if (!t || t.dataType !== 1) return false;
  const dims = t.dims.map(Number);
  return (dims.length === 1 && dims[0] === n) || (dims.length === 2 && dims[0] === 1 && dims[1] === n);
}

/** The weight-only block edit for a MatMul/Gemm at 4 bits (or 8-bit groups). */
export function blockEdit(node: NodeProto, ctx: RuleContext, bits: 4 | 8): Edit[] {
  const format = bits === 4 ? ctx.int4Format : 'nbits';
  const useQdq = format === 'qdq' && ctx.hasInt4Qdq;
  const symmetric = ctx.plan.symmetric ?? bits === 8;
  const reason = format === 'qdq' && !useQdq ? 'int4 DequantizeLinear needs opset 21, which this model cannot be raised to; emitted MatMulNBits instead' : undefined;
  return [
    { kind: 'matmul-nbits', scope: ctx.scope, node, bits, blockSize: ctx.plan.blockSize, symmetric, clip: ctx.plan.clip, accuracyLevel: ctx.accuracyLevel, format: useQdq ? 'qdq' : 'nbits' },
    record(node, ctx, bits, useQdq ? 'qdq-blocked' : 'matmul-nbits', reason),
  ];
}

/** The layer's float record when its weight's measured SQNR at `spec` is below the floor, else undefined. */
export function lowPrecisionWeight(node: NodeProto, ctx: RuleContext, input: number, spec: WeightSpec): Edit[] | undefined {
  const r = ctx.weightPrecision(input, spec);
  return r.ok ? undefined : floatRecord(node, ctx, `weight "${node.input[input]}": ${r.reason}`);
}
