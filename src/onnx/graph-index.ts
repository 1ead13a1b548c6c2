import { ModelError } from '../errors.js';
import { AttributeType, type GraphProto, type NodeProto, type SparseTensorProto, type TensorProto, type ValueInfoProto } from './proto.js';
import { floatTensorProto, sparseToDense, type DensifyOptions, type ExternalSource } from './tensor-proto.js';
import type { Model } from './model.js';
import { create } from '@bufbuild/protobuf';
import { TensorProtoSchema } from './proto.js';

export interface GraphIndexOptions extends DensifyOptions {
  /** Where external sparse values are read from (the model). */
  source?: ExternalSource;
}

/** A node together with the graph that holds it. */
export interface NodeRef {
  readonly node: NodeProto;
  readonly graph: GraphScope;
  /** Position of the node in its graph's node list. */
  readonly position: number;
}

/** One graph (main or subgraph) with its own value tables; lookups fall back to the parent scope. */
export interface GraphScope {
  readonly graph: GraphProto;
  /** "main" for the top graph, "<node name or op#i>/<attribute name>" path for subgraphs. */
  readonly path: string;
  readonly parent?: GraphScope;
  /** The node that owns this subgraph (If/Loop/Scan), if any. */
  readonly owner?: NodeRef;
  readonly producers: ReadonlyMap<string, NodeRef>;
  readonly consumers: ReadonlyMap<string, readonly NodeRef[]>;
  readonly initializers: ReadonlyMap<string, TensorProto>;
  /** Sparse initializers by name (their dense form comes from GraphIndex.constant). */
  readonly sparseInitializers: ReadonlyMap<string, SparseTensorProto>;
  readonly inputs: ReadonlySet<string>;
  readonly outputs: ReadonlySet<string>;
  readonly valueInfo: ReadonlyMap<string, ValueInfoProto>;
  /** Nodes in a topological order (for well-formed graphs, the stored order is kept when valid). */
  readonly topoOrder: readonly NodeRef[];
}

/**
 * Read-only index over a model's graphs: producers and consumers of each value, topological order,
 * constant vs runtime values, and traversal into If/Loop/Scan bodies.
 */
export class GraphIndex {
  readonly main: GraphScope;
  readonly scopes: readonly GraphScope[];
  private readonly scopeOfNode = new Map<NodeProto, GraphScope>();

  constructor(
    graph: GraphProto,
    private readonly file?: string,
    private readonly opts: GraphIndexOptions = {},
  ) {
    const scopes: GraphScope[] = [];
    this.main = this.build(graph, 'main', undefined, undefined, scopes, file);
    this.scopes = scopes;
  }

  /** The index of a loaded model: external sparse values read from its folder, its tensor cap applied. */
  static of(model: Model): GraphIndex {
    return new GraphIndex(model.proto.graph!, model.file, { source: model, maxTensorBytes: model.maxTensorBytes });
  }

  private build(graph: GraphProto, path: string, parent: GraphScope | undefined, owner: NodeRef | undefined, scopes: GraphScope[], file?: string): GraphScope {
    const producers = new Map<string, NodeRef>();
    const consumers = new Map<string, NodeRef[]>();
    const initializers = new Map<string, TensorProto>();
    for (const t of graph.initializer) initializers.set(t.name, t);
    const sparseInitializers = new Map<string, SparseTensorProto>();
    for (const sp of graph.sparseInitializer) if (sp.values?.name) sparseInitializers.set(sp.values.name, sp);
    const valueInfo = new Map<string, ValueInfoProto>();
    for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) valueInfo.set(v.name, v);
    const scope: GraphScope = {
      graph,
      path,
      parent,
      owner,
      producers,
      consumers,
      initializers,
      sparseInitializers,
      inputs: new Set(graph.input.map((v) => v.name)),
      outputs: new Set(graph.output.map((v) => v.name)),
      valueInfo,
      topoOrder: [],
    };
    scopes.push(scope);
    const refs: NodeRef[] = graph.node.map((node, position) => ({ node, graph: scope, position }));
    graph.node.forEach((node, position) => {
      const ref = refs[position];
      this.scopeOfNode.set(node, scope);
      for (const out of node.output) if (out) producers.set(out, ref);
      for (const inp of node.input) {
        if (!inp) continue;
        let list = consumers.get(inp);
        if (!list) consumers.set(inp, (list = []));
        list.push(ref);
      }
    });
    (scope as unknown as { topoOrder: NodeRef[] }).topoOrder = topoSort(refs, path, file);
    graph.node.forEach((node, position) => {
      for (const attr of node.attribute) {
        const label = `${node.name || `${node.opType}#${position}`}/${attr.name}`;
        const ref = refs[position];
        if (attr.g) this.build(attr.g, `${path}/${label}`, scope, ref, scopes, file);
        attr.graphs.forEach((g, i) => this.build(g, `${path}/${label}[${i}]`, scope, ref, scopes, file));
      }
    });
    return scope;
  }

  /** Every node of every graph, each graph in topological order, main graph first. */
  *allNodes(): Generator<NodeRef> {
    for (const s of this.scopes) yield* s.topoOrder;
  }

  scopeOf(node: NodeProto): GraphScope | undefined {
    return this.scopeOfNode.get(node);
  }

  /** The node producing `value` as seen from `scope` (walking out to enclosing graphs). */
  producer(value: string, scope: GraphScope = this.main): NodeRef | undefined {
    for (let s: GraphScope | undefined = scope; s; s = s.parent) {
      if (s.inputs.has(value) && !s.initializers.has(value)) return undefined;
      const p = s.producers.get(value);
      if (p) return p;
      if (s.initializers.has(value)) return undefined;
    }
    return undefined;
  }

  /** Nodes consuming `value` in `scope` itself (not in nested subgraphs). */
  consumers(value: string, scope: GraphScope = this.main): readonly NodeRef[] {
    return scope.consumers.get(value) ?? [];
  }

  /**
   * The constant tensor behind `value` as seen from `scope`: an initializer or the output of a
   * Constant node (any of its value forms), or undefined for runtime values.
   */
  constant(value: string, scope: GraphScope = this.main): TensorProto | undefined {
    for (let s: GraphScope | undefined = scope; s; s = s.parent) {
      const init = s.initializers.get(value);
      if (init) return init;
      const sparse = s.sparseInitializers.get(value);
      if (sparse) return this.dense(sparse);
      const p = s.producers.get(value);
      if (p) return isConstantNode(p.node) ? this.constantOf(p.node) : undefined;
      if (s.inputs.has(value)) return undefined;
    }
    return undefined;
  }

  /** Is `value` a constant? (Does not decode it: cheap for sparse and scalar Constant forms.) */
  isConstant(value: string, scope: GraphScope = this.main): boolean {
    for (let s: GraphScope | undefined = scope; s; s = s.parent) {
      if (s.initializers.has(value) || s.sparseInitializers.has(value)) return true;
      const p = s.producers.get(value);
      if (p) return isConstantNode(p.node) && p.node.attribute.some((a) => CONSTANT_FORMS.has(a.name));
      if (s.inputs.has(value)) return false;
    }
    return false;
  }

  private readonly denseCache = new Map<object, TensorProto>();

  private dense(sp: SparseTensorProto): TensorProto {
    let t = this.denseCache.get(sp);
    if (!t) this.denseCache.set(sp, (t = sparseToDense(sp, this.opts.source ?? { file: this.file ?? '<model>', baseDir: '.' }, this.opts)));
    return t;
  }

  /**
   * Data type and dims of the constant behind `value`, without decoding it: a sparse initializer or
   * sparse Constant is not densified (inspect and layer listing need only its header).
   */
  constantHeader(value: string, scope: GraphScope = this.main): { dataType: number; dims: readonly bigint[] } | undefined {
    for (let s: GraphScope | undefined = scope; s; s = s.parent) {
      const init = s.initializers.get(value);
      if (init) return init;
      const sparse = s.sparseInitializers.get(value);
      if (sparse) return { dataType: sparse.values?.dataType ?? 0, dims: sparse.dims };
      const p = s.producers.get(value);
      if (p) {
        if (!isConstantNode(p.node)) return undefined;
        const sp = p.node.attribute.find((a) => a.name === 'sparse_value')?.sparseTensor;
        return sp ? { dataType: sp.values?.dataType ?? 0, dims: sp.dims } : this.constantOf(p.node);
      }
      if (s.inputs.has(value)) return undefined;
    }
    return undefined;
  }

  /** The same TensorProto object on every call for the same Constant node. */
  private constantOf(node: NodeProto): TensorProto | undefined {
    let t = this.denseCache.get(node);
    if (!t) {
      t = constantNodeTensor(node, this.opts);
      if (t) this.denseCache.set(node, t);
    }
    return t;
  }

  /** Declared value info (type and shape) of a value, searching enclosing graphs. */
  valueInfo(value: string, scope: GraphScope = this.main): ValueInfoProto | undefined {
    for (let s: GraphScope | undefined = scope; s; s = s.parent) {
      const v = s.valueInfo.get(value);
      if (v) return v;
    }
    return undefined;
  }
}

const CONSTANT_FORMS = new Set(['value', 'sparse_value', 'value_float', 'value_floats', 'value_int', 'value_ints', 'value_string', 'value_strings']);

function isConstantNode(node: NodeProto): boolean {
  return node.opType === 'Constant' && (node.domain === '' || node.domain === 'ai.onnx');
}

/** The tensor a Constant node produces, whichever attribute form it uses (sparse_value densified). */
export function constantNodeTensor(node: NodeProto, opts: DensifyOptions & { source?: ExternalSource } = {}): TensorProto | undefined {
  for (const a of node.attribute) {
    switch (a.name) {
      case 'value':
        return a.t;
      case 'sparse_value':
        return a.sparseTensor ? sparseToDense(a.sparseTensor, opts.source, opts) : undefined;
      case 'value_string':
        return create(TensorProtoSchema, { name: node.output[0], dataType: 8, dims: [], stringData: [a.s] });
      case 'value_strings':
        return create(TensorProtoSchema, { name: node.output[0], dataType: 8, dims: [BigInt(a.strings.length)], stringData: [...a.strings] });
      case 'value_float':
        return floatTensorProto(node.output[0], [], [a.f]);
      case 'value_floats':
        return floatTensorProto(node.output[0], [a.floats.length], a.floats);
      case 'value_int':
        return create(TensorProtoSchema, { name: node.output[0], dataType: 7, dims: [], int64Data: [a.i] });
      case 'value_ints':
        return create(TensorProtoSchema, { name: node.output[0], dataType: 7, dims: [BigInt(a.ints.length)], int64Data: [...a.ints] });
      default:
        break;
    }
  }
  return undefined;
}

/** Kahn's algorithm; keeps stored order among ready nodes. Values from outer scopes count as available. */
function topoSort(refs: readonly NodeRef[], path: string, file?: string): NodeRef[] {
  const nodes = refs.map((r) => r.node);
  const indegree = new Int32Array(nodes.length);
  const dependents: number[][] = nodes.map(() => []);
  const producerPos = new Map<string, number>();
  nodes.forEach((n, i) => n.output.forEach((o) => o && producerPos.set(o, i)));
  nodes.forEach((n, i) => {
    const deps = new Set<number>();
    for (const inp of [...n.input, ...implicitInputs(n)]) {
      const p = producerPos.get(inp);
      if (p !== undefined && p !== i) deps.add(p);
    }
    indegree[i] = deps.size;
    for (const d of deps) dependents[d].push(i);
  });
  // Min-heap by position keeps the stored order whenever it is already topological.
  const ready: number[] = [];
  const pushReady = (i: number) => {
    ready.push(i);
    let k = ready.length - 1;
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if (ready[parent] <= ready[k]) break;
      [ready[parent], ready[k]] = [ready[k], ready[parent]];
      k = parent;
    }
  };
  const popReady = (): number => {
    const top = ready[0];
    const last = ready.pop()!;
    if (ready.length > 0) {
      ready[0] = last;
      let k = 0;
      for (;;) {
        const l = 2 * k + 1;
        const r = l + 1;
        let m = k;
        if (l < ready.length && ready[l] < ready[m]) m = l;
        if (r < ready.length && ready[r] < ready[m]) m = r;
        if (m === k) break;
        [ready[m], ready[k]] = [ready[k], ready[m]];
        k = m;
      }
    }
    return top;
  };
  indegree.forEach((d, i) => d === 0 && pushReady(i));
  const order: NodeRef[] = [];
  while (ready.length > 0) {
    const i = popReady();
    order.push(refs[i]);
    for (const j of dependents[i]) if (--indegree[j] === 0) pushReady(j);
  }
  if (order.length !== nodes.length) {
    throw new ModelError('E_GRAPH_CYCLE', `graph "${path}" has a cycle (${nodes.length - order.length} nodes unreachable in topological order)`, { file });
  }
  return order;
}

/** Outer-scope values a node's subgraphs read (so the node runs after their producers). */
function implicitInputs(node: NodeProto): string[] {
  const out: string[] = [];
  for (const a of node.attribute) {
    if (a.type !== AttributeType.GRAPH && a.type !== AttributeType.GRAPHS && !a.g && a.graphs.length === 0) continue;
    for (const g of a.g ? [a.g, ...a.graphs] : a.graphs) collectFreeValues(g, out);
  }
  return out;
}

function collectFreeValues(g: GraphProto, out: string[]): void {
  const local = new Set<string>([...g.input.map((v) => v.name), ...g.initializer.map((t) => t.name)]);
  for (const n of g.node) for (const o of n.output) local.add(o);
  for (const n of g.node) {
    for (const i of n.input) if (i && !local.has(i)) out.push(i);
    for (const a of n.attribute) for (const sg of a.g ? [a.g, ...a.graphs] : a.graphs) collectFreeValues(sg, out);
  }
}
