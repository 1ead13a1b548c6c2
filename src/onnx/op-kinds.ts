import type { NodeProto } from './proto.js';
import type { GraphIndex, GraphScope } from './graph-index.js';

/** What qtool knows about each quantizable op type: which input is the weight, its output-channel axis. */
export interface OpKind {
  /** Input index of the weight. */
  readonly weightInput: number;
  /** Input index of the bias, if the op has one. */
  readonly biasInput?: number;
  /** Input index of the activation. */
  readonly activationInput: number;
  readonly family: 'conv' | 'matmul' | 'gemm';
}

export const OP_KINDS: ReadonlyMap<string, OpKind> = new Map<string, OpKind>([
  ['Conv', { weightInput: 1, biasInput: 2, activationInput: 0, family: 'conv' }],
  ['ConvTranspose', { weightInput: 1, biasInput: 2, activationInput: 0, family: 'conv' }],
  ['MatMul', { weightInput: 1, activationInput: 0, family: 'matmul' }],
  ['Gemm', { weightInput: 1, biasInput: 2, activationInput: 0, family: 'gemm' }],
]);

/** A layer qtool can quantize: a Conv/ConvTranspose/MatMul/Gemm node whose weight is constant. */
export interface QuantizableLayer {
  readonly node: NodeProto;
  readonly scope: GraphScope;
  /** Stable id: node name, or `<opType>#<position>@<graph path>` when unnamed. */
  readonly id: string;
  readonly opType: string;
  readonly weight: string;
  readonly weightDims: readonly number[];
  readonly kind: OpKind;
}

export function nodeId(node: NodeProto, scope: GraphScope, position: number): string {
  if (node.name) return node.name;
  return scope.path === 'main' ? `${node.opType}#${position}` : `${node.opType}#${position}@${scope.path}`;
}

export function quantizableLayers(index: GraphIndex): QuantizableLayer[] {
  const out: QuantizableLayer[] = [];
  for (const ref of index.allNodes()) {
    const n = ref.node;
    if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
    const kind = OP_KINDS.get(n.opType);
    if (!kind) continue;
    const weight = n.input[kind.weightInput];
    if (!weight) continue;
    const t = index.constantHeader(weight, ref.graph);
    if (!t) continue;
    out.push({ node: n, scope: ref.graph, id: nodeId(n, ref.graph, ref.position), opType: n.opType, weight, weightDims: t.dims.map(Number), kind });
  }
  return out;
}
