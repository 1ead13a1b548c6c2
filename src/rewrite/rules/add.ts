import type { NodeProto } from '../../onnx/index.js';
import type { Edit, OpRule, RuleContext } from '../edits.js';
import { outputEdits } from './common.js';

/**
 * Add of two quantized tensors (CNN residuals) → QLinearAdd. Any other Add (bias adds, residual adds
 * next to float LayerNorm, attention-mask adds, adds feeding Softmax) stays float.
 */
export const addRule: OpRule = {
  opTypes: ['Add'],
  edits(node: NodeProto, ctx: RuleContext): Edit[] {
    if (ctx.mode !== 'static' || ctx.plan.bits === 'float') return [];
    const [a, b] = node.input;
    if (!a || !b || ctx.constant(a) || ctx.constant(b)) return [];
    if (!ctx.isQuantized(a) || !ctx.isQuantized(b)) return [];
    const y = node.output[0];
    if (ctx.consumers(y).some((c) => c.opType === 'Softmax')) return [];
    return outputEdits(node, ctx, true);
  },
};
