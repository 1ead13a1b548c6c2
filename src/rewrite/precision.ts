/**
 * Which tensors may be quantized, decided by structure and by measured error (issue 11), never by
 * a magnitude threshold on the range: large finite activations (int16-scale audio, 0–255 pixels)
 * quantize like any other.
 *
 * - Mask fills (structural): a tensor computed from a constant fill — a constant whose exp underflows
 *   to 0 in float32 (c < ln 2⁻¹⁴⁹ ≈ −103.28, so Softmax gives its positions exactly 0: −inf, the
 *   float32 minimum, −1e9, −1e4 …) or a non-finite constant — that enters through a Where branch
 *   (masked_fill), or through Add/Sub/Mul/Cast/Expand/… paths that reach a Softmax input (additive
 *   attention masks). Such a tensor stays float. Non-finite calibrated values are the other signal
 *   (calibration flags them).
 * - Measured error: the expected SQNR of the tensor on its 8-bit grid, from the calibration
 *   statistics (quant/expectedSqnrDb), in the domain its consumers see: linear, or log when the
 *   tensor is non-negative and reaches a Log through ops that keep relative errors (a power
 *   spectrum before a mel MatMul and Log). Below the floor (quant/DEFAULT_MIN_TENSOR_SQNR_DB) the
 *   tensor stays float, with the figure as the reason.
 */
import { getFloatAttr, tensorFromProto, type GraphIndex, type GraphScope, type NodeProto } from '../onnx/index.js';
import { toFloat32 } from '../tensor/index.js';

/** exp(c) is 0 in float32 below this (ln of the smallest subnormal, 2⁻¹⁴⁹). */
export const EXP_UNDERFLOW = Math.log(2 ** -149);

const MOVES = new Set(['Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Slice', 'Expand', 'Cast', 'Tile', 'Gather', 'Concat']);
const MASK_ARITH = new Set(['Add', 'Sub', 'Mul', 'Neg', 'Min', 'Max']);
const DEPTH = 8;

function isDefault(n: NodeProto): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}

/** Every value of a float constant, or undefined when `name` is not a float constant. */
function constantValues(index: GraphIndex, scope: GraphScope, name: string): Float32Array | undefined {
  const t = index.constant(name, scope);
  if (!t || (t.dataType !== 1 && t.dataType !== 10 && t.dataType !== 11)) return undefined;
  if (t.dims.reduce((a, b) => a * Number(b), 1) > 1 << 16) return undefined;
  try {
    return toFloat32(tensorFromProto(t));
  } catch {
    return undefined;
  }
}

/** A constant whose values include a fill (non-finite, or exp underflows to 0 in float32). */
function fillValue(index: GraphIndex, scope: GraphScope, name: string): number | undefined {
  const v = constantValues(index, scope, name);
  if (!v) return undefined;
  for (const x of v) if (!Number.isFinite(x) || x < EXP_UNDERFLOW) return x;
  return undefined;
}

/** Does `tensor` reach a Softmax input through mask arithmetic and value-moving ops? */
function reachesSoftmax(scope: GraphScope, tensor: string, depth: number, memo: Map<string, boolean>): boolean {
  const known = memo.get(tensor);
  if (known !== undefined) return known;
  memo.set(tensor, false);
  let r = false;
  if (depth <= DEPTH) {
    for (const { node } of scope.consumers.get(tensor) ?? []) {
      if (!isDefault(node)) continue;
      if (node.opType === 'Softmax' || node.opType === 'LogSoftmax') r = true;
      else if (MASK_ARITH.has(node.opType) || MOVES.has(node.opType) || node.opType === 'Where') r = node.output.some((o) => reachesSoftmax(scope, o, depth + 1, memo));
      if (r) break;
    }
  }
  memo.set(tensor, r);
  return r;
}

/**
 * The fill constant a tensor is computed from (and how), or undefined: a Where branch (masked_fill),
 * or mask arithmetic feeding a Softmax. Walks producers back at most 8 ops.
 */
export function maskFillOf(index: GraphIndex, scope: GraphScope, tensor: string): string | undefined {
  const memo = new Map<string, string | null>();
  const soft = new Map<string, boolean>();
  const back = (t: string, depth: number, viaWhere: boolean): string | undefined => {
    const key = `${t}\u0000${viaWhere}`;
    if (memo.has(key)) return memo.get(key) ?? undefined;
    memo.set(key, null);
    let found: string | undefined;
    const p = scope.producers.get(t)?.node;
    if (p && isDefault(p) && depth <= DEPTH) {
      if (p.opType === 'Where') {
        for (const b of [p.input[1], p.input[2]]) {
          const v = b ? fillValue(index, scope, b) : undefined;
          if (v !== undefined) found = `Where fills with ${v}`;
        }
        if (!found) for (const b of [p.input[1], p.input[2]]) if (!found && b) found = back(b, depth + 1, true);
      } else if (MASK_ARITH.has(p.opType) || MOVES.has(p.opType)) {
        for (const i of p.input) {
          if (!i || found) continue;
          const v = MASK_ARITH.has(p.opType) ? fillValue(index, scope, i) : undefined;
          if (v !== undefined && (viaWhere || reachesSoftmax(scope, t, 0, soft))) found = `${p.opType} with ${v} on a path to Softmax`;
          else found = back(i, depth + 1, viaWhere);
        }
      }
    }
    memo.set(key, found ?? null);
    return found;
  };
  return back(tensor, 0, false);
}

/** Ops through which a non-negative tensor's relative error is kept (or shrunk) on the way to a Log. */
function relativeStep(index: GraphIndex, scope: GraphScope, tensor: string, node: NodeProto): { next: string; add: number } | 'log' | undefined {
  if (!isDefault(node) || !node.output[0]) return undefined;
  const y = node.output[0];
  const other = node.input[0] === tensor ? node.input[1] : node.input[0];
  const nonNegConst = (name: string | undefined) => {
    const v = name ? constantValues(index, scope, name) : undefined;
    return v && v.every((x) => x >= 0) ? v : undefined;
  };
  switch (node.opType) {
    case 'Log':
      return 'log';
    case 'Add': {
      const v = nonNegConst(other);
      return v ? { next: y, add: v.length === 1 ? v[0] : Math.min(...v) } : undefined;
    }
    case 'Mul': {
      const v = nonNegConst(other);
      return v && v.every((x) => x > 0) ? { next: y, add: 0 } : undefined;
    }
    case 'Div': {
      if (node.input[0] !== tensor) return undefined;
      const v = nonNegConst(node.input[1]);
      return v && v.every((x) => x > 0) ? { next: y, add: 0 } : undefined;
    }
    case 'Clip': {
      const lo = node.input[1] ? constantValues(index, scope, node.input[1])?.[0] : getFloatAttr(node, 'min', -Infinity);
      return lo !== undefined && lo >= 0 ? { next: y, add: lo } : undefined;
    }
    case 'Max': {
      const v = nonNegConst(other);
      return v ? { next: y, add: Math.min(...v) } : undefined;
    }
    case 'MatMul':
    case 'Gemm':
    case 'Conv': {
      // A weighted sum with non-negative constant weights (mel filters): relative errors are averaged.
      if (node.input[0] !== tensor) return undefined;
      return nonNegConst(node.input[1]) ? { next: y, add: 0 } : undefined;
    }
    case 'ReduceSum':
    case 'ReduceMean':
    case 'GlobalAveragePool':
    case 'AveragePool':
    case 'Sqrt':
      return { next: y, add: 0 };
    default:
      return node.input[0] === tensor && MOVES.has(node.opType) ? { next: y, add: 0 } : undefined;
  }
}

/**
 * When the (non-negative) tensor reaches a Log through ops that keep relative errors, the additive
 * floor ε the Log sees (summed constants added on the way; 0 when none): its error must then be
 * judged in the log domain. Undefined when no such path exists.
 */
export function logSinkOf(index: GraphIndex, scope: GraphScope, tensor: string): { epsilon: number } | undefined {
  let best: { epsilon: number } | undefined;
  const walk = (t: string, eps: number, depth: number) => {
    if (depth > DEPTH || scope.outputs.has(t)) return;
    for (const { node } of scope.consumers.get(t) ?? []) {
      const s = relativeStep(index, scope, t, node);
      if (!s) continue;
      if (s === 'log') {
        if (!best || eps < best.epsilon) best = { epsilon: eps };
      } else walk(s.next, eps + s.add, depth + 1);
    }
  };
  walk(tensor, 0, 0);
  return best;
}
