/**
 * The part of a weights-as-inputs model downstream of one weight: the nodes whose value depends on it,
 * fed with the tensors they read from upstream (the cut). A Hessian probe perturbs one weight, so the
 * upstream part of every probe run is the same as the float reference pass: computed once per layer
 * (the cut tensors are fetched from the full model), only the tail runs per probe.
 */
import { create } from '@bufbuild/protobuf';
import { ValueInfoProtoSchema, makeValueInfo, tensorToProto, type GraphProto, type Model, type NodeProto } from '../onnx/index.js';
import type { DType, Tensor } from '../tensor/index.js';

export interface TailSlice {
  /** The tail's nodes, in the graph's (topological) order: upstream Constant nodes it reads, then the dependent nodes. */
  readonly nodes: readonly NodeProto[];
  /** Tensors computed upstream that the tail reads (fetched from the full model once per layer). */
  readonly cut: readonly string[];
  /** Graph inputs the tail reads (data inputs and other layers' weights), fed as in the full model. */
  readonly graphInputs: readonly string[];
  /** Nodes of the main graph in the tail (dependent nodes only), and in the whole main graph. */
  readonly tailNodes: number;
  readonly allNodes: number;
}

/** Every name a node reads: its inputs and, for nodes with subgraphs, every name read inside them (outer-scope references included). */
function readsOf(node: NodeProto): string[] {
  const out = node.input.filter((i) => i);
  const visit = (g: GraphProto) => {
    for (const n of g.node) readsOf(n).forEach((i) => out.push(i));
  };
  for (const a of node.attribute) {
    if (a.g) visit(a.g);
    for (const g of a.graphs) visit(g);
  }
  return out;
}

/**
 * The tail of `weight` in the main graph of `model` for `output`, or undefined when `output` does not
 * depend on it. Names read inside subgraphs count as reads of their node, so a node whose subgraph
 * uses a dependent value is in the tail too.
 */
export function tailSlice(model: Model, weight: string, output: string): TailSlice | undefined {
  const graph = model.proto.graph!;
  const dependent = new Set<string>([weight]);
  const inTail: boolean[] = graph.node.map((n) => {
    const hit = readsOf(n).some((i) => dependent.has(i));
    if (hit) for (const o of n.output) if (o) dependent.add(o);
    return hit;
  });
  if (!dependent.has(output)) return undefined;
  const producer = new Map<string, number>();
  graph.node.forEach((n, i) => n.output.forEach((o) => o && producer.set(o, i)));
  const inputs = new Set(graph.input.map((v) => v.name));
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const cut = new Set<string>();
  const graphInputs = new Set<string>();
  const constants = new Set<number>();
  graph.node.forEach((n, i) => {
    if (!inTail[i]) return;
    for (const name of readsOf(n)) {
      if (dependent.has(name) || initializers.has(name)) continue;
      const p = producer.get(name);
      if (p !== undefined) {
        if (graph.node[p].opType === 'Constant' && (graph.node[p].domain === '' || graph.node[p].domain === 'ai.onnx')) constants.add(p);
        else cut.add(name);
      } else if (inputs.has(name)) graphInputs.add(name);
    }
  });
  graphInputs.add(weight);
  return {
    nodes: graph.node.filter((_, i) => inTail[i] || constants.has(i)),
    cut: [...cut],
    graphInputs: [...graphInputs],
    tailNodes: inTail.filter(Boolean).length,
    allNodes: graph.node.length,
  };
}

/**
 * The tail as a model: graph inputs = the cut tensors (with the dtypes they were fetched with) and the
 * graph inputs it reads, except those in `fixed` (the other layers' float weights), which become
 * initializers again so onnxruntime can prepack them and pick its blocked (NCHWc) convolutions; one output.
 */
export function tailModel(model: Model, slice: TailSlice, output: string, cutTypes: ReadonlyMap<string, DType>, fixed: ReadonlyMap<string, Tensor> = new Map()): Model {
  const graph = model.proto.graph!;
  const cut = new Set(slice.cut);
  const keepInputs = new Set(slice.graphInputs.filter((g) => !fixed.has(g)));
  const reads = new Set(slice.nodes.flatMap(readsOf));
  const tail: GraphProto = {
    ...graph,
    node: [...slice.nodes],
    input: [...graph.input.filter((v) => keepInputs.has(v.name)), ...slice.cut.map((name) => makeValueInfo(name, cutTypes.get(name) ?? 'float32'))],
    output: graph.output.filter((v) => v.name === output),
    initializer: [...graph.initializer.filter((t) => reads.has(t.name)), ...[...fixed].filter(([name]) => reads.has(name)).map(([name, t]) => tensorToProto(name, t))],
    valueInfo: graph.valueInfo.filter((v) => !cut.has(v.name)),
  };
  return { ...model, proto: { ...model.proto, graph: tail } };
}

/** A copy of `model` that also outputs `tensors` (those not already graph outputs), to fetch the cuts from. */
export function withCutOutputs(model: Model, tensors: readonly string[]): Model {
  const graph = model.proto.graph!;
  const present = new Set(graph.output.map((o) => o.name));
  const extra = [...new Set(tensors)].filter((t) => !present.has(t)).map((name) => create(ValueInfoProtoSchema, { name }));
  return { ...model, proto: { ...model.proto, graph: { ...graph, output: [...graph.output, ...extra] } } };
}
