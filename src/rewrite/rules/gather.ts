import { getIntAttr, type NodeProto } from '../../onnx/index.js';
import type { Edit, OpRule, RuleContext } from '../edits.js';

/** Tables smaller than this many elements (64 KiB of float32) stay float: scales and a contrib op do not pay. */
const MIN_TABLE_ELEMENTS = 16384;

/**
 * Embedding tables: a Gather (axis 0) from a large constant float32 [rows, dim] table becomes
 * com.microsoft GatherBlockQuantized (uint8 data, 8 or 4 bits per the node's plan, blocks along dim):
 * the table is 4 or 8 times smaller and the output is float, so every mode can do it.
 */
export const gatherRule: OpRule = {
  opTypes: ['Gather'],
  edits(node: NodeProto, ctx: RuleContext): Edit[] {
    const bits = ctx.plan.bits;
    if (bits !== 4 && bits !== 8) return [];
    const table = node.input[0];
    const t = table ? ctx.constant(table) : undefined;
    if (!t || t.dataType !== 1 || t.dims.length !== 2 || getIntAttr(node, 'axis', 0) !== 0) return [];
    if (!node.input[1] || ctx.constant(node.input[1])) return [];
    const [rows, dim] = t.dims.map(Number);
    if (rows * dim < MIN_TABLE_ELEMENTS || dim % 2 !== 0) return [];
    // block_size: a power of 2 ≥ 16 (the kernel's rule); 4 bits use the plan's block, 8 bits 128.
    const want = bits === 4 ? ctx.plan.blockSize : 128;
    let blockSize = 16;
    while (blockSize * 2 <= Math.min(want, dim)) blockSize *= 2;
    return [{ kind: 'gather-quantized', scope: ctx.scope, node, bits, blockSize }];
  },
};
