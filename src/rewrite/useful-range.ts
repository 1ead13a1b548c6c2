import { getAttr, getFloatAttr, tensorFromProto, walkGraphs, type GraphIndex, type GraphScope, type NodeProto } from '../onnx/index.js';
import { toFloat32 } from '../tensor/index.js';

/** An interval of a tensor's values; ±Infinity where unbounded. */
export type Interval = readonly [number, number];

const ALL: Interval = [-Infinity, Infinity];

/** Value-moving ops: y takes x's values, rearranged or selected (and MaxPool, which is monotone). */
const MOVES = new Set(['Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Slice', 'MaxPool']);

/**
 * The interval outside which a tensor's values cannot change the model's result: every consumer
 * saturates there. Relu ignores everything below 0, Clip(a, b) everything outside [a, b],
 * HardSigmoid outside [-β/α, (1-β)/α], and hard-swish x·Clip(x+3, 0, 6)/6 (or x·HardSigmoid(x),
 * or HardSwish) everything below -3; scalar Mul/Add/Sub/Div by constants and value-moving ops
 * (Reshape, Transpose, MaxPool, …) map the interval back to their input. A tensor with any other
 * consumer, or that is a graph output, is unbounded.
 *
 * Quantizing a tensor over its calibrated range ∩ this interval is exact for every consumer and
 * spends no levels on values the network throws away (a convolution whose output goes through a
 * scalar affine into hard-swish keeps its large negative tail only to be zeroed) — the same reason
 * onnxruntime lets a uint8 QuantizeLinear absorb a single following Relu or Clip.
 */
export function usefulInterval(index: GraphIndex, scope: GraphScope, tensor: string, depth = 0): Interval {
  if (depth > 8 || scope.outputs.has(tensor) || usedInSubgraphs(scope).has(tensor)) return ALL;
  const consumers = scope.consumers.get(tensor) ?? [];
  if (consumers.length === 0) return ALL;
  let lo = Infinity;
  let hi = -Infinity;
  const seen = new Set<NodeProto>();
  for (const { node } of consumers) {
    if (seen.has(node)) continue;
    seen.add(node);
    const r = throughConsumer(index, scope, tensor, node, depth);
    lo = Math.min(lo, r[0]);
    hi = Math.max(hi, r[1]);
    if (lo === -Infinity && hi === Infinity) return ALL;
  }
  return [lo, hi];
}

const subgraphUses = new WeakMap<GraphScope, Set<string>>();

/** Names read inside this scope's subgraphs (If/Loop bodies see outer values without listing them). */
function usedInSubgraphs(scope: GraphScope): Set<string> {
  let s = subgraphUses.get(scope);
  if (s) return s;
  s = new Set<string>();
  for (const n of scope.graph.node) {
    for (const a of n.attribute) for (const g of [...(a.g ? [a.g] : []), ...a.graphs]) for (const sg of walkGraphs(g)) for (const m of sg.node) for (const i of m.input) s.add(i);
  }
  subgraphUses.set(scope, s);
  return s;
}

/** The interval of `tensor` outside which `node` (one of its consumers) gives a constant result. */
function throughConsumer(index: GraphIndex, scope: GraphScope, tensor: string, node: NodeProto, depth: number): Interval {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return ALL;
  const scalar = (name: string | undefined) => scalarConstant(index, scope, name);
  const only = (i: number) => node.input.filter((x) => x === tensor).length === 1 && node.input[i] === tensor;
  const y = node.output[0];
  switch (node.opType) {
    case 'Relu':
      return [0, Infinity];
    case 'Clip':
      return clipBounds(node, scalar);
    case 'HardSigmoid': {
      const alpha = getFloatAttr(node, 'alpha', 0.2);
      const beta = getFloatAttr(node, 'beta', 0.5);
      // In x·HardSigmoid(x) the Mul consumer of x widens this to [-β/α, ∞).
      return alpha > 0 ? [-beta / alpha, (1 - beta) / alpha] : ALL;
    }
    case 'HardSwish':
      return [-3, Infinity];
    case 'Mul':
    case 'Add':
    case 'Sub':
    case 'Div': {
      if (node.input.length !== 2 || !y) return ALL;
      const other = node.input[0] === tensor ? node.input[1] : node.input[0];
      const k = scalar(other);
      if (k === undefined || !(only(0) || only(1))) return node.opType === 'Mul' ? hardSwishProduct(index, scope, tensor, node) : ALL;
      // y = a·x + b
      let a = 1;
      let b = 0;
      if (node.opType === 'Mul') a = k;
      else if (node.opType === 'Add') b = k;
      else if (node.opType === 'Sub') [a, b] = only(0) ? [1, -k] : [-1, k];
      else if (only(0)) a = 1 / k;
      else return ALL;
      if (!(a !== 0 && Number.isFinite(a))) return ALL;
      const r = usefulInterval(index, scope, y, depth + 1);
      const p = (r[0] - b) / a;
      const q = (r[1] - b) / a;
      return a > 0 ? [p, q] : [q, p];
    }
    default:
      if (MOVES.has(node.opType) && node.input[0] === tensor && node.output.length === 1) return usefulInterval(index, scope, y, depth + 1);
      return ALL;
  }
}

/** A finite float32 constant with one element, or undefined. */
function scalarConstant(index: GraphIndex, scope: GraphScope, name: string | undefined): number | undefined {
  if (!name) return undefined;
  const t = index.constant(name, scope);
  if (!t || t.dataType !== 1) return undefined;
  const v = toFloat32(tensorFromProto(t));
  return v.length === 1 && Number.isFinite(v[0]) ? v[0] : undefined;
}

function clipBounds(node: NodeProto, scalar: (name: string | undefined) => number | undefined): Interval {
  if (getAttr(node, 'min') || getAttr(node, 'max')) return [getFloatAttr(node, 'min', -Infinity), getFloatAttr(node, 'max', Infinity)];
  const lo = node.input[1] ? scalar(node.input[1]) : -Infinity;
  const hi = node.input[2] ? scalar(node.input[2]) : Infinity;
  return lo === undefined || hi === undefined ? ALL : [lo, hi];
}

/**
 * `node` is x·s where s = Clip(x + k, 0, m) (m > 0) or s = HardSigmoid(x) computed from the same x:
 * below the point where s is 0 the product is 0 whatever x is, so x's floor is that point.
 */
function hardSwishProduct(index: GraphIndex, scope: GraphScope, x: string, mul: NodeProto): Interval {
  const other = mul.input[0] === x ? mul.input[1] : mul.input[0];
  if (other === x) return ALL;
  const floor = gateFloor(index, scope, x, other);
  return floor === undefined ? ALL : [floor, Infinity];
}

/** Where s (computed from x) reaches exactly 0 and stays there below: s = Clip(x + k, 0, m) or HardSigmoid(x). */
function gateFloor(index: GraphIndex, scope: GraphScope, x: string, s: string): number | undefined {
  const p = scope.producers.get(s)?.node;
  if (!p || (p.domain !== '' && p.domain !== 'ai.onnx')) return undefined;
  if (p.opType === 'HardSigmoid' && p.input[0] === x) {
    const alpha = getFloatAttr(p, 'alpha', 0.2);
    const beta = getFloatAttr(p, 'beta', 0.5);
    return alpha > 0 ? -beta / alpha : undefined;
  }
  if (p.opType !== 'Clip') return undefined;
  const scalar = (name: string | undefined) => scalarConstant(index, scope, name);
  const [lo, hi] = clipBounds(p, scalar);
  if (lo !== 0 || !(hi > 0)) return undefined;
  const a = scope.producers.get(p.input[0])?.node;
  if (!a || a.opType !== 'Add' || (a.domain !== '' && a.domain !== 'ai.onnx')) return undefined;
  const k = a.input[0] === x ? scalar(a.input[1]) : a.input[1] === x ? scalar(a.input[0]) : undefined;
  return k === undefined ? undefined : -k;
}
