import type { NodeProto } from '../../onnx/index.js';
import type { Edit, OpRule, RuleContext } from '../edits.js';
import { blockEdit, floatRecord, isFloat32Constant, outputEdits, planFloatReason, record, weight8, lowPrecisionWeight } from './common.js';

/**
 * MatMul with a constant 2-D weight [K, N]. Static: DQ(A) DQ(B int8 per column) → MatMul [→ Q]
 * (QLinearMatMul, or MatMulIntegerToFloat without the output Q). Dynamic: DynamicQuantizeMatMul.
 * 4 bits / 8-bit groups: MatMulNBits or DequantizeLinear(int4, block_size) → MatMul.
 * MatMul of two runtime tensors (attention scores) is not a layer and stays float.
 */
export const matmulRule: OpRule = {
  opTypes: ['MatMul'],
  edits(node: NodeProto, ctx: RuleContext): Edit[] {
    const w = node.input[1];
    const wt = ctx.constant(w);
    if (!wt) return [];
    if (ctx.plan.bits === 'float' || ctx.plan.bits === 16) return floatRecord(node, ctx, planFloatReason(ctx));
    if (!isFloat32Constant(w, ctx) || wt.dims.length !== 2) return floatRecord(node, ctx, 'weight is not a 2-D float32 tensor');
    if (ctx.plan.bits === 4 || ctx.plan.granularity === 'group' || ctx.plan.granularity === 'block' || ctx.mode === 'weight-only') {
      return blockEdit(node, ctx, ctx.plan.bits === 4 ? 4 : 8);
    }
    if (ctx.mode === 'dynamic') return [{ kind: 'dynamic-matmul', scope: ctx.scope, node, clip: ctx.plan.clip }, record(node, ctx, 8, 'dynamic')];
    // Static mode: a MatMul fed by a float op (LayerNorm, GELU, attention) would start a new Q/DQ
    // island; DynamicQuantizeMatMul quantizes its input at run time instead (faster and more accurate).
    // Unless measurement says the input must stay float (a mask fill, or an expected SQNR below the
    // floor): dynamic quantization would round it just the same, and so would a weight-only
    // DequantizeLinear → MatMul, which onnxruntime fuses into MatMulNBits with int8 compute
    // (accuracy_level 4). The layer stays float.
    const spec = weight8(ctx, 1);
    const weak = lowPrecisionWeight(node, ctx, 1, spec);
    if (weak) return weak;
    const a = node.input[0];
    const ar = ctx.range(a);
    if (!ar.ok && ar.keepFloat) return floatRecord(node, ctx, `input "${a}" stays float: ${ar.reason}`);
    if (!ctx.isQuantized(a)) {
      return [{ kind: 'dynamic-matmul', scope: ctx.scope, node, clip: ctx.plan.clip }, record(node, ctx, 8, 'dynamic', 'input comes from a float op: dynamic activation quantization')];
    }
    if (!ar.ok) return [{ kind: 'qdq-weight', scope: ctx.scope, node, input: 1, spec }, record(node, ctx, 8, 'weight-only', `activations stay float (input "${a}": ${ar.reason})`)];
    const edits: Edit[] = [
      { kind: 'qdq-activation', scope: ctx.scope, tensor: a },
      { kind: 'qdq-weight', scope: ctx.scope, node, input: 1, spec },
    ];
    edits.push(...outputEdits(node, ctx, true));
    edits.push(record(node, ctx, 8, 'static-qdq'));
    return edits;
  },
};
