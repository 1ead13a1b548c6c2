import type { NodeProto } from '../../onnx/index.js';
import type { Edit, OpRule, RuleContext } from '../edits.js';

/**
 * GlobalAveragePool / AveragePool / Concat on quantized inputs: the output gets its own Q/DQ so
 * onnxruntime builds QLinearGlobalAveragePool / QLinearAveragePool / QLinearConcat.
 */
export const poolRule: OpRule = {
  opTypes: ['GlobalAveragePool', 'AveragePool', 'Concat'],
  edits(node: NodeProto, ctx: RuleContext): Edit[] {
    if (ctx.mode !== 'static' || ctx.plan.bits === 'float') return [];
    const inputs = node.input.filter((i) => i);
    if (inputs.length === 0 || !inputs.every((i) => ctx.isQuantized(i))) return [];
    const y = node.output[0];
    if (node.output.length !== 1 || ctx.isGraphOutput(y) || !ctx.range(y).ok) return [];
    return [{ kind: 'qdq-activation', scope: ctx.scope, tensor: y }];
  },
};
