import { UsageError } from '../errors.js';
import { GraphIndex, getIntAttr, makeNode, NameAllocator, quantizableLayers, tensorFromProto, tensorToProto, type Model, type NodeProto, type TensorProto } from '../onnx/index.js';
import { makeTensor, toFloat32 } from '../tensor/index.js';

/**
 * Per-input-channel scaling for AWQ and SmoothQuant: every listed layer reading `activation` computes
 * (W·diag(s)) (diag(s)⁻¹ x) instead of W x. diag(s)⁻¹ is folded into what produces x when that is
 * exact and only these layers read x: a LayerNormalization over the last axis (γ/s, β/s), the γ Mul /
 * β Add of a decomposed LayerNorm (constant [K] operands), or the output channels of a MatMul/Gemm
 * with a constant 2-D weight (columns and bias / 1/s) — and otherwise applied by an explicit Mul before
 * the layers. The float model computes the same function (up to float rounding); only the weights the
 * quantizer sees change.
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
  /** Where diag(s)⁻¹ went: the producing LayerNormalization's γ/β (or a decomposed LayerNorm's γ Mul / β Add), a producing MatMul/Gemm's output channels, or a new Mul node. */
  into: 'layernorm' | 'decomposed-layernorm' | 'matmul' | 'mul';
  node: string;
  layers: readonly string[];
}

export interface ScaleInputChannelsOptions {
  /** Never fold into these layers' weights (e.g. layers whose quantized result is already fixed): a Mul instead. */
  keepWeights?: ReadonlySet<string>;
}

/** Where diag(s)⁻¹ of `activation` would go if `layers` (all its readers) were scaled (see scaleInputChannels). */
export function channelScaleFoldTarget(model: Model, activation: string, layers: readonly string[], opts: ScaleInputChannelsOptions = {}): ChannelScalingFold['into'] {
  const index = new GraphIndex(model.proto.graph!, model.file);
  const ids = new Map(quantizableLayers(index).filter((l) => l.scope.path === 'main').map((l) => [l.id, l]));
  const readers = layers.map((id) => ids.get(id)?.node).filter((n): n is NodeProto => n !== undefined);
  return foldPlan(index, activation, readers, [...ids.values()], opts, (name) => floatConst(index, name))?.into ?? 'mul';
}

const floatConst = (index: GraphIndex, name: string) => {
  const t = index.constant(name);
  if (!t || t.dataType !== 1) return undefined;
  return { data: toFloat32(tensorFromProto(t)), dims: t.dims.map(Number) };
};

type FloatConst = { data: Float32Array; dims: number[] };
/** The constant operands to divide by s along their last axis (node input index → tensor), per node. */
interface FoldPlan {
  into: Exclude<ChannelScalingFold['into'], 'mul'>;
  node: NodeProto;
  edits: { node: NodeProto; input: number; t: FloatConst; columns?: { rows: number; cols: number; transposed: boolean } }[];
}

/** The exact fold of diag(s)⁻¹ into the producer of `activation`, or undefined (then a Mul). */
function foldPlan(
  index: GraphIndex,
  activation: string,
  readers: readonly NodeProto[],
  layers: readonly { id: string; node: NodeProto }[],
  opts: ScaleInputChannelsOptions,
  floatByName: (name: string) => FloatConst | undefined,
  inputOf: (node: NodeProto, i: number) => string = (n, i) => n.input[i],
): FoldPlan | undefined {
  // Constant operand i of a node, as this call has it so far.
  const at = (node: NodeProto, i: number) => (node.input[i] ? floatByName(inputOf(node, i)) : undefined);
  const onlyReaders = (value: string, allowed: readonly NodeProto[]) => (index.main.consumers.get(value) ?? []).every((c) => allowed.includes(c.node)) && !index.main.outputs.has(value);
  if (!onlyReaders(activation, readers)) return undefined;
  const prod = index.producer(activation)?.node;
  if (!prod) return undefined;
  const isVec = (t: FloatConst | undefined, n: number): t is FloatConst => t !== undefined && t.data.length === n && t.dims.filter((d) => d !== 1).length <= 1 && (t.dims.length === 0 || t.dims[t.dims.length - 1] === n);
  if (prod.opType === 'LayerNormalization' && getIntAttr(prod, 'axis', -1) === -1) {
    const gamma = at(prod, 1);
    const beta = prod.input[2] ? at(prod, 2) : undefined;
    if (!gamma || (prod.input[2] && !beta)) return undefined;
    return { into: 'layernorm', node: prod, edits: [{ node: prod, input: 1, t: gamma }, ...(beta ? [{ node: prod, input: 2, t: beta }] : [])] };
  }
  // Decomposed LayerNorm tail: Add(Mul(x̂, γ), β), γ and β constant vectors over the last axis.
  if (prod.opType === 'Add') {
    const bi = at(prod, 1) ? 1 : at(prod, 0) ? 0 : -1;
    if (bi < 0) return undefined;
    const beta = at(prod, bi)!;
    const mul = index.producer(prod.input[1 - bi])?.node;
    if (mul?.opType === 'Mul' && onlyReaders(prod.input[1 - bi], [prod])) {
      const gi = at(mul, 1) ? 1 : at(mul, 0) ? 0 : -1;
      if (gi >= 0 && isVec(at(mul, gi), beta.data.length) && isVec(beta, beta.data.length)) {
        return { into: 'decomposed-layernorm', node: prod, edits: [{ node: mul, input: gi, t: at(mul, gi)! }, { node: prod, input: bi, t: beta }] };
      }
    }
    // MatMul + bias Add: the MatMul's output channels and the bias.
    const mm = index.producer(prod.input[1 - bi])?.node;
    if (mm && onlyReaders(prod.input[1 - bi], [prod])) {
      const inner = matmulColumns(mm, layers, opts, at);
      if (inner && isVec(beta, inner.cols)) return { into: 'matmul', node: mm, edits: [inner.edit, { node: prod, input: bi, t: beta }] };
    }
    return undefined;
  }
  const direct = matmulColumns(prod, layers, opts, at);
  if (direct) {
    const c = direct.edit.node.opType === 'Gemm' && direct.edit.node.input[2] ? at(direct.edit.node, 2) : undefined;
    if (direct.edit.node.opType === 'Gemm' && direct.edit.node.input[2] && !(c && isVec(c, direct.cols))) return undefined;
    return { into: 'matmul', node: prod, edits: [direct.edit, ...(c ? [{ node: prod, input: 2, t: c }] : [])] };
  }
  return undefined;
}

/** A MatMul [.., K]·W[K, N] or Gemm (alpha/beta any, no transA) with a constant 2-D W: its N output channels. */
function matmulColumns(node: NodeProto, layers: readonly { id: string; node: NodeProto }[], opts: ScaleInputChannelsOptions, at: (node: NodeProto, i: number) => FloatConst | undefined): { cols: number; edit: FoldPlan['edits'][number] } | undefined {
  if (node.opType !== 'MatMul' && node.opType !== 'Gemm') return undefined;
  if (node.opType === 'Gemm' && getIntAttr(node, 'transA', 0) === 1) return undefined;
  const w = at(node, 1);
  if (!w || w.dims.length !== 2) return undefined;
  const layer = layers.find((l) => l.node === node);
  if (layer && opts.keepWeights?.has(layer.id)) return undefined;
  const transposed = node.opType === 'Gemm' && getIntAttr(node, 'transB', 0) === 1;
  const [rows, cols] = transposed ? [w.dims[1], w.dims[0]] : [w.dims[0], w.dims[1]];
  return { cols, edit: { node, input: 1, t: w, columns: { rows, cols, transposed } } };
}

/** Apply the scalings (main graph only); the input model is not modified. */
export function scaleInputChannels(model: Model, scalings: readonly ChannelScaling[], opts: ScaleInputChannelsOptions = {}): { model: Model; folds: ChannelScalingFold[] } {
  const graph = model.proto.graph!;
  const index = new GraphIndex(graph, model.file);
  const layers = new Map(quantizableLayers(index).filter((l) => l.scope.path === 'main').map((l) => [l.id, l]));
  const names = new NameAllocator(graph);
  const nodes = new Map<NodeProto, NodeProto>();
  const clone = (n: NodeProto): NodeProto => {
    let c = nodes.get(n);
    // Keep the message prototype: proto2 fields left at their default (domain "") live there.
    if (!c) nodes.set(n, (c = Object.assign(Object.create(Object.getPrototypeOf(n)) as NodeProto, n, { input: [...n.input] })));
    return c;
  };
  // Mul nodes go right after the producer of their input (or first, for a graph input).
  const after = new Map<NodeProto | undefined, NodeProto[]>();
  const inits: TensorProto[] = [];
  const folds: ChannelScalingFold[] = [];
  // Tensors replaced earlier in this call (a layer scaled by one scaling may be the producer another folds into).
  const replacedData = new Map<string, FloatConst>();
  const floatOf = (name: string) => replacedData.get(name) ?? floatConst(index, name);
  const inputOf = (node: NodeProto, i: number) => (nodes.get(node) ?? node).input[i];
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
      const w = floatOf(inputOf(l.node, l.kind.weightInput))!;
      const transB = l.opType === 'Gemm' && getIntAttr(l.node, 'transB', 0) === 1;
      const [K, N] = transB ? [w.dims[1], w.dims[0]] : [w.dims[0], w.dims[1]];
      if (w.dims.length !== 2 || K !== k || (l.opType === 'Gemm' && getIntAttr(l.node, 'transA', 0) === 1)) {
        throw new UsageError('E_OPTION_CONFLICT', `channel scaling: layer "${l.id}" weight ${w.dims.join('×')} does not have ${k} input rows`);
      }
      const out = new Float32Array(w.data.length);
      for (let r = 0; r < K; r++) for (let c = 0; c < N; c++) out[transB ? c * K + r : r * N + c] = w.data[transB ? c * K + r : r * N + c] * sc.scales[r];
      const name = names.allocate(`${l.weight}_scaled`);
      inits.push(tensorToProto(name, makeTensor('float32', w.dims, out)));
      replacedData.set(name, { data: out, dims: w.dims });
      clone(l.node).input[l.kind.weightInput] = name;
    }
    // diag(s)⁻¹: into what produces x when only these layers read it (exact), else a Mul.
    const prod = index.producer(sc.activation);
    const plan = foldPlan(index, sc.activation, readers.map((l) => l.node), [...layers.values()], opts, floatOf, inputOf);
    if (plan && plan.edits.every((e) => (e.columns ? e.columns.cols : e.t.data.length) === k)) {
      for (const e of plan.edits) {
        const c = clone(e.node);
        const d = e.t.data;
        if (d.length !== (e.columns ? e.columns.rows * e.columns.cols : d.length)) throw new Error('channel scaling: weight size mismatch');
        const out = new Float32Array(d.length);
        if (e.columns) {
          const { rows, cols, transposed } = e.columns;
          for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) out[transposed ? j * rows + r : r * cols + j] = d[transposed ? j * rows + r : r * cols + j] / sc.scales[j];
        } else {
          for (let i = 0; i < d.length; i++) out[i] = d[i] / sc.scales[i % k];
        }
        const name = names.allocate(`${e.node.input[e.input]}_scaled`);
        inits.push(tensorToProto(name, makeTensor('float32', e.t.dims, out)));
        replacedData.set(name, { data: out, dims: e.t.dims });
        c.input[e.input] = name;
      }
      folds.push({ activation: sc.activation, into: plan.into, node: plan.node.name || plan.node.output[0], layers: sc.layers });
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
