import { getIntAttr, type NodeProto } from '../../onnx/index.js';
import { int4ConvGranularity, weightAxes } from '../../quant/index.js';
import type { Edit, OpRule, RuleContext, WeightSpec } from '../edits.js';
import { floatRecord, isFloat32Constant, outputEdits, outputToQuantize, planFloatReason, record, weight8, lowPrecisionWeight } from './common.js';

const UNLISTED_CONV =
  'weight-only mode: plan defaults apply to MatMul/Gemm; a convolution gets weight-only int4/int8 weights (DequantizeLinear → float Conv: smaller, not faster) only when the plan lists it, as qtool search plans do';

/**
 * Conv / ConvTranspose. Static 8-bit: DQ(x) DQ(w int8 per output channel) DQ(b int32) → Conv → Q,
 * which onnxruntime fuses into QLinearConv. Weight-only (the integer weight behind a DequantizeLinear
 * feeding a float Conv; activations around it stay float, a quantized neighbour's Q/DQ ends or starts
 * at its input/output): 4 bits in static mode, or in any mode when the plan lists the layer; 8 bits in
 * weight-only mode when listed. Plan defaults alone leave weight-only convolutions float, so that
 * `--bits 4` stays the MatMul/Gemm tool of issue 4. onnxruntime has no
 * int4 conv kernel and does not constant-fold the DequantizeLinear, so this buys size, not speed.
 * Dynamic 8-bit keeps convolutions float: onnxruntime's CPU ConvInteger only takes uint8 weights.
 */
export const convRule: OpRule = {
  opTypes: ['Conv', 'ConvTranspose'],
  edits(node: NodeProto, ctx: RuleContext): Edit[] {
    const w = node.input[1];
    if (!ctx.constant(w)) return [];
    if (ctx.plan.bits === 'float' || ctx.plan.bits === 16) return floatRecord(node, ctx, planFloatReason(ctx));
    if (!isFloat32Constant(w, ctx)) return floatRecord(node, ctx, 'weight is not float32');
    if (ctx.plan.bits === 4 && (ctx.plan.isListed || ctx.mode === 'static')) return int4ConvEdits(node, ctx);
    if (ctx.mode === 'dynamic') {
      return floatRecord(node, ctx, 'dynamic mode keeps convolutions float (onnxruntime CPU ConvInteger is uint8×uint8 only); use static mode with --data for CNNs');
    }
    if (ctx.mode === 'weight-only' && !ctx.plan.isListed) return floatRecord(node, ctx, UNLISTED_CONV);
    const rank = ctx.constant(w)!.dims.length;
    const group = getIntAttr(node, 'group', 1);
    // ConvTranspose weights are [C_in, C_out/group, ...]: per-channel along axis 1 is only right for group 1.
    const axes = weightAxes(node.opType, rank);
    const perTensor = node.opType === 'ConvTranspose' && group !== 1;
    const spec = weight8(ctx, axes.channelAxis, perTensor);
    const weak = lowPrecisionWeight(node, ctx, 1, spec);
    if (weak) return weak;
    if (ctx.mode === 'weight-only') {
      // Listed in the plan (qtool search lists every layer): the plan's size accounting counts it.
      return [{ kind: 'qdq-weight', scope: ctx.scope, node, input: 1, spec }, record(node, ctx, 8, 'weight-only', 'weight-only mode: int8 weights behind DequantizeLinear, float Conv')];
    }
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
    edits.push(record(node, ctx, 8, 'static-qdq'));
    return edits;
  },
};

/**
 * 4-bit weight-only convolution: int4 (symmetric, signed scales) or uint4 (with zero points) weights
 * → DequantizeLinear → the float Conv. Layout (int4ConvGranularity): blocks of `blockSize` input
 * channels at each (output channel, kernel position) when the channel count allows, else one scale
 * per output channel; the plan's granularity 'channel' or 'tensor' forces that. Blocks need opset-21
 * DequantizeLinear; a model that cannot be raised to 21 gets per-channel scales in com.microsoft
 * DequantizeLinear, which takes int4 at any opset. ConvTranspose with groups: the scale axis then
 * spans several groups' output channels, which is still an exact dequantization (float compute).
 */
function int4ConvEdits(node: NodeProto, ctx: RuleContext): Edit[] {
  const wt = ctx.constant(node.input[1])!;
  const dims = wt.dims.map(Number);
  const axes = weightAxes(node.opType, dims.length);
  const blockSize = ctx.plan.blockSize;
  let granularity: 'block' | 'channel' | 'tensor' =
    ctx.plan.granularity === 'channel' || ctx.plan.granularity === 'tensor' ? ctx.plan.granularity : int4ConvGranularity(dims, axes, blockSize);
  const notes: string[] = [];
  if (granularity === 'block' && !ctx.hasInt4Qdq) {
    granularity = 'channel';
    notes.push(`int4 blocks need opset-21 DequantizeLinear, which this opset-${ctx.opset} model cannot be raised to: per-output-channel scales`);
  }
  const symmetric = ctx.plan.symmetric ?? false;
  const spec: WeightSpec = {
    bits: 4,
    symmetric,
    granularity,
    axis: granularity === 'block' ? axes.reductionAxis : axes.channelAxis,
    ...(granularity === 'block' ? { blockSize } : {}),
    clip: ctx.plan.clip,
    ...(ctx.hasInt4Qdq ? {} : { dqDomain: 'com.microsoft' as const }),
  };
  const layout = granularity === 'block' ? `blocks of ${blockSize} input channels` : granularity === 'channel' ? 'per-output-channel scales' : 'one scale';
  const dq = ctx.hasInt4Qdq ? 'DequantizeLinear' : 'com.microsoft DequantizeLinear';
  const reason = [`4-bit weight-only conv: ${symmetric ? 'int4' : 'uint4'} weights, ${layout}, ${dq} → float ${node.opType}`, ...notes].join('; ');
  return [{ kind: 'qdq-weight', scope: ctx.scope, node, input: 1, spec }, record(node, ctx, 4, 'weight-only', reason)];
}
