import { InternalError } from '../errors.js';
import type { WeightQuantizer, WeightQuantizerResult } from './weight-quantizer.js';
import {
  makeNode,
  nodeId,
  tensorFromProto,
  tensorToProto,
  type GraphIndex,
  type GraphProto,
  type GraphScope,
  type Model,
  type NodeProto,
  type NodeRef,
  type NodeSpec,
  type TensorProto,
  NameAllocator,
} from '../onnx/index.js';
import { makeTensor, toFloat32, type DType, type DTypeMap } from '../tensor/index.js';
import type { AffineParams } from '../quant/index.js';

/** The structural copy the emitter edits: graphs and nodes are new objects, tensors are shared. */
export interface ClonedModel {
  proto: Model['proto'];
  nodes: Map<NodeProto, NodeProto>;
  graphs: Map<GraphProto, GraphProto>;
}

/**
 * Shallow copy that keeps the prototype: protobuf-es keeps proto2 defaults (unset fields such as
 * NodeProto.domain) on the prototype, so a plain spread would turn them into undefined.
 */
function copy<T extends object>(msg: T, changes: Partial<T>): T {
  return Object.assign(Object.create(Object.getPrototypeOf(msg) as object) as T, msg, changes);
}

export function cloneStructure(model: Model): ClonedModel {
  const nodes = new Map<NodeProto, NodeProto>();
  const graphs = new Map<GraphProto, GraphProto>();
  const cloneGraph = (g: GraphProto): GraphProto => {
    const c = copy(g, { node: g.node.map(cloneNode), initializer: [...g.initializer], input: [...g.input], output: [...g.output], valueInfo: [...g.valueInfo] });
    graphs.set(g, c);
    return c;
  };
  const cloneNode = (n: NodeProto): NodeProto => {
    const c = copy(n, {
      input: [...n.input],
      output: [...n.output],
      attribute: n.attribute.map((a) => (a.g || a.graphs.length ? copy(a, { g: a.g ? cloneGraph(a.g) : a.g, graphs: a.graphs.map(cloneGraph) }) : a)),
    });
    nodes.set(n, c);
    return c;
  };
  const graph = cloneGraph(model.proto.graph!);
  return { proto: copy(model.proto, { graph, opsetImport: [...model.proto.opsetImport], metadataProps: [...model.proto.metadataProps] }), nodes, graphs };
}

/** Pending changes to one graph, applied when the emitter rebuilds its node list. */
export interface GraphChanges {
  head: NodeProto[];
  before: Map<NodeProto, NodeProto[]>;
  after: Map<NodeProto, NodeProto[]>;
  replace: Map<NodeProto, NodeProto[]>;
  initializers: TensorProto[];
}

/** Mutable state shared by the emit-* functions during one applyPlan call. */
export class EmitState {
  readonly names: NameAllocator;
  readonly changes = new Map<GraphScope, GraphChanges>();
  readonly refs = new Map<NodeProto, NodeRef>();
  /** Original tensor → quantized (integer) tensor. */
  readonly tensorMap = new Map<string, string>();
  /** Quantized-weight scales per (node, input) for int32 bias. */
  readonly weightScales = new Map<NodeProto, Map<number, { scales: Float32Array; perChannel: boolean }>>();
  /** Bytes of stored quantized weights per original node. */
  readonly weightBytes = new Map<NodeProto, number>();
  /** Constant values whose float originals may now be unused. */
  readonly touchedConstants = new Set<string>();
  readonly notes: string[] = [];
  /** Quantized weights already written, keyed by graph, weight and spec (shared weights). */
  readonly weightCache = new Map<string, unknown>();
  /** Set by applyPlan: the replacement for round-to-nearest (GPTQ), and what it did per node. */
  weightQuantizer?: WeightQuantizer;
  readonly weightAlgorithms = new Map<NodeProto, WeightQuantizerResult['record']>();
  /** Set by applyPlan: E[x] per layer (bias correction), and the correction (Ŵ − W)·E[x] per node, output units. */
  layerInputMeans?: (layer: string) => readonly Float64Array[] | undefined;
  readonly biasCorrections = new Map<NodeProto, Float64Array>();
  /** Set by applyPlan: input channels of a dynamic INT8 MatMul to compute in float (LLM.int8() split). */
  outlierChannels?: (layer: string) => readonly number[] | undefined;
  private readonly scalarZps = new Map<string, string>();
  readonly domains = new Map<string, number>();
  minOpset = 0;
  activationCount = 0;
  weightCount = 0;
  /** A com.microsoft QuantizeLinear/DequantizeLinear was emitted. */
  usedMsQdq = false;

  constructor(
    readonly model: Model,
    readonly index: GraphIndex,
    readonly clone: ClonedModel,
    /** Domain of QuantizeLinear/DequantizeLinear: '' (opset ≥ 13) or 'com.microsoft' (older models). */
    readonly qdqDomain: string,
  ) {
    this.names = new NameAllocator(model.proto.graph!);
    for (const r of index.allNodes()) this.refs.set(r.node, r);
  }

  graphChanges(scope: GraphScope): GraphChanges {
    let c = this.changes.get(scope);
    if (!c) this.changes.set(scope, (c = { head: [], before: new Map(), after: new Map(), replace: new Map(), initializers: [] }));
    return c;
  }

  cloneOf(node: NodeProto): NodeProto {
    const c = this.clone.nodes.get(node);
    if (!c) throw new InternalError(`node ${node.name} has no clone`);
    return c;
  }

  idOf(node: NodeProto): string {
    const r = this.refs.get(node);
    return r ? nodeId(node, r.graph, r.position) : node.name || node.opType;
  }

  /**
   * A generated node with provenance (metadata qtool.origin = the original node it serves).
   * Q/DQ nodes stay unnamed (their output names identify them, and on small models dozens of
   * node names are a visible share of the file); replacement nodes get a unique name.
   */
  node(spec: Omit<NodeSpec, 'name'> & { name: string }, origin: string): NodeProto {
    if (spec.domain === 'com.microsoft') this.needDomain('com.microsoft', 1);
    const isQdq = spec.opType === 'QuantizeLinear' || spec.opType === 'DequantizeLinear';
    if (isQdq && spec.domain === 'com.microsoft') this.usedMsQdq = true;
    return makeNode({ ...spec, name: isQdq ? '' : this.allocate(spec.name), metadata: { 'qtool.origin': origin } });
  }

  /**
   * A unique name for a generated value or node, built from the last path segment of the original
   * name (`/layer1/conv/Conv_output_0` → `Conv_output_0_q`): generated names are many, and full
   * exporter paths would make them a visible share of a small model's file.
   */
  allocate(base: string): string {
    return this.names.allocate(shortName(base));
  }

  addInitializer<T extends DType>(scope: GraphScope, base: string, dtype: T, dims: readonly number[], data: DTypeMap[T]): string {
    const name = this.allocate(base);
    this.graphChanges(scope).initializers.push(tensorToProto(name, makeTensor(dtype, dims, data)));
    return name;
  }

  /** Scale and zero-point initializers (scalar or 1-D); scalar zero points are shared per graph by value. */
  addScaleZp(scope: GraphScope, base: string, scales: Float32Array, zps: ArrayLike<number>, zpType: 'int8' | 'uint8' | 'int32' | 'int4' | 'uint4', dims: readonly number[]): [string, string] {
    const s = this.addInitializer(scope, `${base}_s`, 'float32', dims, Float32Array.from(scales));
    if (dims.length === 0) {
      const key = `${scope.path}\u0000${zpType}\u0000${zps[0]}`;
      let z = this.scalarZps.get(key);
      if (!z) {
        const zdata = zpType === 'int8' || zpType === 'int4' ? Int8Array.of(zps[0]) : zpType === 'int32' ? Int32Array.of(zps[0]) : Uint8Array.of(zps[0]);
        z = this.addInitializer(scope, `zp_${zpType}_${zps[0]}`, zpType, [], zdata as never);
        this.scalarZps.set(key, z);
      }
      return [s, z];
    }
    const zdata = zpType === 'int8' || zpType === 'int4' ? Int8Array.from(zps) : zpType === 'int32' ? Int32Array.from(zps) : Uint8Array.from(zps);
    const z = this.addInitializer(scope, `${base}_zp`, zpType, dims, zdata as never);
    return [s, z];
  }

  insertBefore(scope: GraphScope, orig: NodeProto, n: NodeProto): void {
    const c = this.graphChanges(scope);
    const list = c.before.get(orig) ?? [];
    list.push(n);
    c.before.set(orig, list);
  }

  /** After the producer of `tensor` in `scope`, or at the head of the graph for inputs and outer values. */
  insertAfterProducer(scope: GraphScope, tensor: string, n: NodeProto): void {
    const p = scope.producers.get(tensor);
    const c = this.graphChanges(scope);
    if (!p) {
      c.head.push(n);
      return;
    }
    const list = c.after.get(p.node) ?? [];
    list.push(n);
    c.after.set(p.node, list);
  }

  replaceNode(scope: GraphScope, orig: NodeProto, nodes: NodeProto[]): void {
    this.graphChanges(scope).replace.set(orig, nodes);
  }

  /** A constant's values as float32 (initializer or Constant node). */
  constantFloat(name: string, scope: GraphScope): { data: Float32Array; dims: number[] } {
    const t = this.index.constant(name, scope);
    if (!t) throw new InternalError(`"${name}" is not constant`);
    this.touchedConstants.add(name);
    return { data: toFloat32(tensorFromProto(t, this.model)), dims: t.dims.map(Number) };
  }

  needDomain(domain: string, version: number): void {
    this.domains.set(domain, Math.max(version, this.domains.get(domain) ?? 0));
  }
}

export type { AffineParams };

export function shortName(name: string): string {
  const seg = name.slice(name.lastIndexOf('/') + 1).replace(/^onnx::/, '');
  return seg || name;
}
