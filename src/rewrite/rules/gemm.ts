import type { NodeProto } from '../../onnx/index.js';
import type { Edit, OpRule, RuleContext } from '../edits.js';
import { blockEdit, floatRecord, gemmScalars, isFloat32Constant, isVectorBias, outputEdits, planFloatReason, record, weight8, lowPrecisionWeight } from './common.js';

/**
 * Gemm with a constant B. Static: DQ(A) DQ(B int8 per output channel) DQ(C int32) → Gemm [→ Q]
 * (QGemm; alpha and beta are folded into B and C so both are 1). Dynamic: DynamicQuantizeMatMul.
 * 4 bits or 8-bit groups: MatMulNBits (transB, alpha, beta and the bias handled).
 */
export const gemmRule: OpRule = {
  opTypes: ['Gemm'],
  edits(node: NodeProto, ctx: RuleContext): Edit[] {
    const w = node.input[1];
    const wt = ctx.constant(w);
    if (!wt) return [];
    if (ctx.plan.bits === 'float' || ctx.plan.bits === 16) return floatRecord(node, ctx, planFloatReason(ctx));
    if (!isFloat32Constant(w, ctx) || wt.dims.length !== 2) return floatRecord(node, ctx, 'weight is not a 2-D float32 tensor');
    const { alpha, beta, transA, transB } = gemmScalars(node);
    if (transA) return floatRecord(node, ctx, 'Gemm with transA=1 is left float');
    const n = Number(transB ? wt.dims[0] : wt.dims[1]);
    const c = node.input[2];
    const hasBias = Boolean(c);
    if (hasBias && !isVectorBias(c, n, ctx)) return floatRecord(node, ctx, 'bias is not a constant [N] vector');
    if (ctx.plan.bits === 4 || ctx.plan.granularity === 'group' || ctx.plan.granularity === 'block' || ctx.mode === 'weight-only') {
      return blockEdit(node, ctx, ctx.plan.bits === 4 ? 4 : 8);
    }
    if (ctx.mode === 'dynamic') return [{ kind: 'dynamic-matmul', scope: ctx.scope, node, clip: ctx.plan.clip }, record(node, ctx, 8, 'dynamic')];
    const spec = weight8(ctx, transB ? 0 : 1, false, alpha);
    const weak = lowPrecisionWeight(node, ctx, 1, spec);
    if (weak) return weak;
    const a = node.input[0];
    const ar = ctx.range(a);
    const edits: Edit[] = [];
    if (!ar.ok) {
      // Weight-only: alpha is folded into the weight; beta keeps scaling the float bias.
      if (alpha !== 1) edits.push({ kind: 'gemm-unit-scalars', scope: ctx.scope, node, alpha: true, beta: false });
      edits.push({ kind: 'qdq-weight', scope: ctx.scope, node, input: 1, spec });
      edits.push(record(node, ctx, 8, 'weight-only', `activations stay float (input "${a}": ${ar.reason})`));
      return edits;
    }
    if (alpha !== 1 || (hasBias && beta !== 1)) edits.push({ kind: 'gemm-unit-scalars', scope: ctx.scope, node, alpha: alpha !== 1, beta: hasBias && beta !== 1 });
    edits.push({ kind: 'qdq-activation', scope: ctx.scope, tensor: a });
    edits.push({ kind: 'qdq-weight', scope: ctx.scope, node, input: 1, spec });
    if (hasBias) edits.push({ kind: 'int32-bias', scope: ctx.scope, node, input: 2, activation: a, weightInput: 1, ...(beta !== 1 ? { multiplier: beta } : {}) });
    // QGemm can return float, so the output is quantized only when it is worth it (not a graph output, has a range).
    edits.push(...outputEdits(node, ctx, true));
    edits.push(record(node, ctx, 8, 'static-qdq'));
    return edits;
  },
};
