import { getIntAttr, type NodeProto } from '../../onnx/index.js';
import { weightAxes } from '../../quant/index.js';
import type { Edit, OpRule, RuleContext } from '../edits.js';
import { floatRecord, isFloat32Constant, outputEdits, outputToQuantize, planFloatReason, record, weight8 } from './common.js';

/**
 * Conv / ConvTranspose. Static: DQ(x) DQ(w int8 per output channel) DQ(b int32) → Conv → Q, which
 * onnxruntime fuses into QLinearConv. Dynamic and weight-only modes keep convolutions float:
 * onnxruntime's CPU ConvInteger only takes uint8 weights, and DequantizeLinear in front of a float
 * Conv makes it slower, not faster.
 */
export const convRule: OpRule = {
  opTypes: ['Conv', 'ConvTranspose'],
  edits(node: NodeProto, ctx: RuleContext): Edit[] {
    const w = node.input[1];
    if (!ctx.constant(w)) return [];
    if (ctx.plan.bits === 'float' || ctx.plan.bits === 16) return floatRecord(node, ctx, planFloatReason(ctx));
    if (!isFloat32Constant(w, ctx)) return floatRecord(node, ctx, 'weight is not float32');
    if (ctx.mode === 'dynamic') {
      return floatRecord(node, ctx, 'dynamic mode keeps convolutions float (onnxruntime CPU ConvInteger is uint8×uint8 only); use static mode with --data for CNNs');
    }
    if (ctx.mode === 'weight-only') return floatRecord(node, ctx, 'weight-only mode targets MatMul/Gemm; convolutions have no int4 kernel');
    const rank = ctx.constant(w)!.dims.length;
    const group = getIntAttr(node, 'group', 1);
    // ConvTranspose weights are [C_in, C_out/group, ...]: per-channel along axis 1 is only right for group 1.
    const axes = weightAxes(node.opType, rank);
    const perTensor = node.opType === 'ConvTranspose' && group !== 1;
    const spec = weight8(ctx, axes.channelAxis, perTensor);
    if (ctx.plan.bits === 4 && ctx.hasInt4Qdq) {
      return [
        { kind: 'qdq-weight', scope: ctx.scope, node, input: 1, spec: { bits: 4, symmetric: ctx.plan.symmetric ?? false, granularity: 'block', axis: axes.reductionAxis, blockSize: ctx.plan.blockSize, clip: ctx.plan.clip } },
        record(node, ctx, 4, 'weight-only', 'int4 convolution weights are dequantized in the graph (no int4 conv kernel)'),
      ];
    }
    const note = ctx.plan.bits === 4 ? 'int4 conv weights need opset 21; quantized at 8 bits' : undefined;
    const x = node.input[0];
    const xr = ctx.range(x);
    const y = outputToQuantize(node.output[0], ctx);
    const yr = ctx.range(y);
    if (!xr.ok || !yr.ok) {
      const why = !xr.ok ? `input "${x}": ${xr.reason}` : `output "${y}": ${(yr as { reason: string }).reason}`;
      return [{ kind: 'qdq-weight', scope: ctx.scope, node, input: 1, spec }, record(node, ctx, 8, 'weight-only', `activations stay float (${why})`)];
    }
    const edits: Edit[] = [
      { kind: 'qdq-activation', scope: ctx.scope, tensor: x },
      { kind: 'qdq-weight', scope: ctx.scope, node, input: 1, spec },
    ];
    const b = node.input[2];
    if (b && isFloat32Constant(b, ctx)) edits.push({ kind: 'int32-bias', scope: ctx.scope, node, input: 2, activation: x, weightInput: 1 });
    edits.push(...outputEdits(node, ctx, false));
    edits.push(record(node, ctx, 8, 'static-qdq', note));
    return edits;
  },
};
