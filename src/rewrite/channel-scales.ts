import { UsageError } from '../errors.js';
import { GraphIndex, getIntAttr, makeNode, NameAllocator, quantizableLayers, tensorFromProto, tensorToProto, type Model, type NodeProto, type TensorProto } from '../onnx/index.js';
import { makeTensor, toFloat32 } from '../tensor/index.js';

/**
 * Per-input-channel scaling for AWQ and SmoothQuant: every listed layer reading `activation` computes
 * (W·diag(s)) (diag(s)⁻¹ x) instead of W x. diag(s)⁻¹ is folded into what produces x when that is
 * exact — a LayerNormalization over the last axis whose output only these layers read (γ/s, β/s) — and
 * otherwise applied by an explicit Mul before the layers. The float model computes the same function
 * (up to float rounding); only the weights the quantizer sees change.
 */
export interface ChannelScaling {
  activation: string;
  /** s per channel of the activation's last axis (= the layers' input rows). */
  scales: Float64Array;
  /** Layer ids (QuantizableLayer.id) reading the activation: MatMul [K, N] or Gemm weights. */
  layers: readonly string[];
}

export interface ChannelScalingFold {
  activation: string;
  /** Where diag(s)⁻¹ went: the producing LayerNormalization's γ/β, or a new Mul node. */
  into: 'layernorm' | 'mul';
  node: string;
  layers: readonly string[];
}

/** Apply the scalings (main graph only); the input model is not modified. */
export function scaleInputChannels(model: Model, scalings: readonly ChannelScaling[]): { model: Model; folds: ChannelScalingFold[] } {
  const graph = model.proto.graph!;
  const index = new GraphIndex(graph, model.file);
  const layers = new Map(quantizableLayers(index).filter((l) => l.scope.path === 'main').map((l) => [l.id, l]));
  const names = new NameAllocator(graph);
  const nodes = new Map<NodeProto, NodeProto>();
  const clone = (n: NodeProto): NodeProto => {
    let c = nodes.get(n);
    if (!c) nodes.set(n, (c = { ...n, input: [...n.input] }));
    return c;
  };
  // Mul nodes go right after the producer of their input (or first, for a graph input).
  const after = new Map<NodeProto | undefined, NodeProto[]>();
  const inits: TensorProto[] = [];
  const folds: ChannelScalingFold[] = [];
  const floatOf = (name: string) => {
    const t = index.constant(name);
    if (!t || t.dataType !== 1) return undefined;
    return { data: toFloat32(tensorFromProto(t)), dims: t.dims.map(Number) };
  };
  for (const sc of scalings) {
    const k = sc.scales.length;
    const readers = sc.layers.map((id) => {
      const l = layers.get(id);
      if (!l || l.node.input[l.kind.activationInput] !== sc.activation || (l.opType !== 'MatMul' && l.opType !== 'Gemm')) {
        throw new UsageError('E_OPTION_CONFLICT', `channel scaling: layer "${id}" is not a MatMul/Gemm reading "${sc.activation}"`);
      }
      return l;
    });
    // Weights: input row j × s_j.
    for (const l of readers) {
      const w = floatOf(l.weight)!;
      const transB = l.opType === 'Gemm' && getIntAttr(l.node, 'transB', 0) === 1;
      const [K, N] = transB ? [w.dims[1], w.dims[0]] : [w.dims[0], w.dims[1]];
      if (w.dims.length !== 2 || K !== k || (l.opType === 'Gemm' && getIntAttr(l.node, 'transA', 0) === 1)) {
        throw new UsageError('E_OPTION_CONFLICT', `channel scaling: layer "${l.id}" weight ${w.dims.join('×')} does not have ${k} input rows`);
      }
      const out = new Float32Array(w.data.length);
      for (let r = 0; r < K; r++) for (let c = 0; c < N; c++) out[transB ? c * K + r : r * N + c] = w.data[transB ? c * K + r : r * N + c] * sc.scales[r];
      const name = names.allocate(`${l.weight}_scaled`);
      inits.push(tensorToProto(name, makeTensor('float32', w.dims, out)));
      clone(l.node).input[l.kind.weightInput] = name;
    }
    // diag(s)⁻¹: into a LayerNormalization that only these layers read, else a Mul.
    const prod = index.producer(sc.activation);
    const consumers = index.main.consumers.get(sc.activation) ?? [];
    const onlyReaders = consumers.every((c) => readers.some((l) => l.node === c.node)) && !index.main.outputs.has(sc.activation);
    const ln = prod?.node;
    const gamma = ln?.opType === 'LayerNormalization' ? floatOf(ln.input[1]) : undefined;
    const beta = ln?.opType === 'LayerNormalization' && ln.input[2] ? floatOf(ln.input[2]) : undefined;
    const lastAxis = ln ? getIntAttr(ln, 'axis', -1) === -1 : false;
    if (ln && onlyReaders && lastAxis && gamma && gamma.data.length === k && (!ln.input[2] || (beta && beta.data.length === k))) {
      const c = clone(ln);
      const g = Float32Array.from(gamma.data, (v, j) => v / sc.scales[j]);
      c.input[1] = names.allocate(`${ln.input[1]}_scaled`);
      inits.push(tensorToProto(c.input[1], makeTensor('float32', gamma.dims, g)));
      if (beta) {
        const b = Float32Array.from(beta.data, (v, j) => v / sc.scales[j]);
        c.input[2] = names.allocate(`${ln.input[2]}_scaled`);
        inits.push(tensorToProto(c.input[2], makeTensor('float32', beta.dims, b)));
      }
      folds.push({ activation: sc.activation, into: 'layernorm', node: ln.name || ln.output[0], layers: sc.layers });
      continue;
    }
    const inv = names.allocate(`${sc.activation}_inv_scale`);
    inits.push(tensorToProto(inv, makeTensor('float32', [k], Float32Array.from(sc.scales, (v) => 1 / v))));
    const scaled = names.allocate(`${sc.activation}_scaled`);
    const mulName = names.allocate(`${sc.activation}_channel_scale`);
    const mul = makeNode({ opType: 'Mul', name: mulName, inputs: [sc.activation, inv], outputs: [scaled] });
    after.set(prod?.node, [...(after.get(prod?.node) ?? []), mul]);
    for (const l of readers) clone(l.node).input[l.kind.activationInput] = scaled;
    folds.push({ activation: sc.activation, into: 'mul', node: mulName, layers: sc.layers });
  }
  const newNodes: NodeProto[] = [...(after.get(undefined) ?? [])];
  for (const n of graph.node) {
    newNodes.push(nodes.get(n) ?? n);
    newNodes.push(...(after.get(n) ?? []));
  }
  // Weights, γ and β replaced by scaled copies are dropped when nothing reads them any more.
  const used = new Set<string>();
  for (const n of newNodes) for (const i of n.input) used.add(i);
  for (const o of graph.output) used.add(o.name);
  const replaced = new Set<string>();
  for (const [orig, c] of nodes) orig.input.forEach((name, i) => c.input[i] !== name && replaced.add(name));
  const kept = graph.initializer.filter((t) => !replaced.has(t.name) || used.has(t.name));
  const newGraph = { ...graph, node: newNodes, initializer: [...kept, ...inits] };
  return { model: { ...model, proto: { ...model.proto, graph: newGraph } }, folds };
}
