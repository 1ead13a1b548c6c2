import type { NodeProto } from '../../onnx/index.js';
import type { Edit, OpRule, RuleContext } from '../edits.js';

/**
 * Ops that move or select values without changing them. When their input is quantized the output
 * reuses the input's scale and zero point, so onnxruntime drops the DQ → op → Q around them and runs
 * the op on uint8 directly (QDQ propagation / IsQDQPairSupported need identical constants).
 */
export const passThroughRule: OpRule = {
  opTypes: ['Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze', 'MaxPool', 'Slice'],
  edits(node: NodeProto, ctx: RuleContext): Edit[] {
    if (ctx.mode !== 'static' || ctx.plan.bits === 'float') return [];
    const x = node.input[0];
    const y = node.output[0];
    if (!x || !ctx.isQuantized(x)) return [];
    // MaxPool on uint8 needs opset 12 and a single output (no indices).
    if (node.opType === 'MaxPool' && (node.output.length > 1 || ctx.opset < 12)) return [];
    if (ctx.isGraphOutput(y)) return [];
    return [{ kind: 'qdq-activation', scope: ctx.scope, tensor: y, shareWith: x }];
  },
};
