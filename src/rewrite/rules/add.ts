import type { NodeProto } from '../../onnx/index.js';
import type { Edit, OpRule, RuleContext } from '../edits.js';
import { outputEdits } from './common.js';

/**
 * Add of two quantized tensors (CNN residuals) → QLinearAdd. Any other Add (bias adds, residual adds
 * next to float LayerNorm, attention-mask adds, adds feeding Softmax) stays float, except a quantized
 * tensor plus a scalar constant (hard-swish's x + 3): the scalar goes behind its own
 * DequantizeLinear and onnxruntime fuses QLinearAdd (scalar broadcast), with a following Clip(0, 6)
 * folded into the uint8 QuantizeLinear — no float island between the conv and the rest of hard-swish.
 */
export const addRule: OpRule = {
  opTypes: ['Add'],
  edits(node: NodeProto, ctx: RuleContext): Edit[] {
    if (ctx.mode !== 'static' || ctx.plan.bits === 'float') return [];
    const [a, b] = node.input;
    if (!a || !b) return [];
    const y = node.output[0];
    if (ctx.consumers(y).some((c) => c.opType === 'Softmax')) return [];
    const scalar = ctx.integerElementwise ? scalarConstantInput(node, ctx) : undefined;
    if (scalar !== undefined) {
      const x = node.input[1 - scalar];
      if (!ctx.isQuantized(x)) return [];
      const out = outputEdits(node, ctx, true);
      return out.length === 0 ? [] : [...out, scalarEdit(node, ctx, scalar)];
    }
    if (ctx.constant(a) || ctx.constant(b)) return [];
    if (!ctx.isQuantized(a) || !ctx.isQuantized(b)) return [];
    return outputEdits(node, ctx, true);
  },
};

/**
 * Mul of two quantized tensors (hard-swish's x · Clip(x + 3, 0, 6)) or of a quantized tensor and a
 * scalar constant → QLinearMul, when the product has a usable range. Other Muls stay float.
 */
export const mulRule: OpRule = {
  opTypes: ['Mul'],
  edits(node: NodeProto, ctx: RuleContext): Edit[] {
    if (ctx.mode !== 'static' || ctx.plan.bits === 'float') return [];
    const [a, b] = node.input;
    if (!a || !b || node.input.length !== 2) return [];
    if (!ctx.integerElementwise) return [];
    const scalar = scalarConstantInput(node, ctx);
    if (scalar !== undefined) {
      if (!ctx.isQuantized(node.input[1 - scalar])) return [];
      const out = outputEdits(node, ctx, true);
      return out.length === 0 ? [] : [...out, scalarEdit(node, ctx, scalar)];
    }
    if (ctx.constant(a) || ctx.constant(b) || !ctx.isQuantized(a) || !ctx.isQuantized(b)) return [];
    return outputEdits(node, ctx, true);
  },
};

/** Index (0 or 1) of the input that is a finite float32 scalar constant while the other is not constant. */
function scalarConstantInput(node: NodeProto, ctx: RuleContext): number | undefined {
  if (node.input.length !== 2) return undefined;
  const isScalar = (name: string) => {
    const t = ctx.constant(name);
    return t !== undefined && t.dataType === 1 && t.dims.reduce((p, d) => p * Number(d), 1) === 1;
  };
  const [a, b] = node.input;
  if (isScalar(b) && !ctx.constant(a)) return 1;
  if (isScalar(a) && !ctx.constant(b)) return 0;
  return undefined;
}

/** The scalar behind a DequantizeLinear of the activations' type (uint8 with zero point, or int8 symmetric). */
function scalarEdit(node: NodeProto, ctx: RuleContext, input: number): Edit {
  return { kind: 'qdq-weight', scope: ctx.scope, node, input, spec: { bits: 8, symmetric: ctx.activationType === 'int8', granularity: 'tensor', axis: 0, clip: 'none' } };
}
