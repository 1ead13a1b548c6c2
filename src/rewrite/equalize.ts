/**
 * Cross-layer equalisation (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and
 * Bias Correction", with measured activation ranges in place of the first layer's weight ranges):
 * for a Conv A → [ops f with f(s·x) = s·f(x) per channel for s > 0] → Conv B chain, output channel i
 * of A is divided by s_i (its weight row and bias) and input channel i of B is multiplied by s_i (its
 * weight column), which computes the same function in float. With one 8-bit scale per tensor for the
 * activation between them, channels whose ranges differ by 40× (a BatchNorm output feeding a
 * depthwise conv) get a step that is coarse for the small ones; choosing s_i from the measured
 * per-channel ranges makes the channels share the grid evenly.
 *
 * Positively homogeneous per channel (allowed between A and B): Relu, LeakyRelu, PRelu, MaxPool,
 * AveragePool, Identity, Dropout (inference). Not allowed: Clip/Relu6, HardSwish, HardSigmoid,
 * Sigmoid, Add of a constant, anything mixing channels. Every intermediate tensor must have exactly
 * one consumer and not be a graph output.
 *
 * s is chosen, and a pair equalised, by the expected rounding noise at B's output (8-bit per-tensor
 * asymmetric activation, 8-bit symmetric per-output-channel weights), predicted from the per-channel
 * statistics of B's input: a pair is equalised only when that noise drops.
 */
import { clone } from '@bufbuild/protobuf';
import { floatTensorProto, getIntAttr, GraphIndex, NameAllocator, NodeProtoSchema, tensorFromProto, type Model, type NodeProto, type TensorProto } from '../onnx/index.js';
import { toFloat32 } from '../tensor/index.js';

/** Per-channel statistics along axis 1 (structurally calibrate/channel-stats ChannelStats). */
export interface ChannelRanges {
  count: number;
  min: ArrayLike<number>;
  max: ArrayLike<number>;
  sumSquares: ArrayLike<number>;
}

export interface EqualizationPair {
  first: NodeProto;
  second: NodeProto;
  /** The ops between them (op types, in order). */
  between: string[];
  /** B's input (the tensor whose per-channel statistics choose the scales). */
  tensor: string;
  /** Rank of that tensor (B's weight rank). */
  rank: number;
  channels: number;
}

export interface EqualizationRecord {
  first: string;
  second: string;
  between: string[];
  tensor: string;
  /** Largest / smallest channel abs-max of B's input, before and after (1 = equal ranges). */
  spreadBefore: number;
  spreadAfter: number;
  /** Predicted rounding noise power at B's output, after / before (< 1: better). */
  noiseRatio: number;
  applied: boolean;
}

const HOMOGENEOUS = new Set(['Relu', 'LeakyRelu', 'PRelu', 'MaxPool', 'AveragePool', 'Identity', 'Dropout']);

function isDefault(n: NodeProto): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}

/** Conv → (homogeneous ops) → Conv chains of the main graph whose weights are float constants, in topological order. */
export function equalizationPairs(model: Model, index: GraphIndex = GraphIndex.of(model)): EqualizationPair[] {
  const scope = index.main;
  const pairs: EqualizationPair[] = [];
  const weight = (n: NodeProto) => {
    const t = n.input[1] ? index.constant(n.input[1], scope) : undefined;
    return t && t.dataType === 1 && t.dims.length >= 3 ? t : undefined;
  };
  const bias = (n: NodeProto, m: number) => {
    if (!n.input[2]) return true;
    const t = index.constant(n.input[2], scope);
    return !!t && t.dataType === 1 && t.dims.length === 1 && Number(t.dims[0]) === m;
  };
  for (const ref of scope.topoOrder) {
    const a = ref.node;
    if (a.opType !== 'Conv' || !isDefault(a)) continue;
    const wa = weight(a);
    if (!wa) continue;
    const cout = Number(wa.dims[0]);
    if (!bias(a, cout)) continue;
    let out = a.output[0];
    const between: string[] = [];
    for (let depth = 0; depth < 8; depth++) {
      if (scope.outputs.has(out)) break;
      const cons = scope.consumers.get(out) ?? [];
      if (cons.length !== 1) break;
      const n = cons[0].node;
      if (!isDefault(n) || n.input[0] !== out || n.input.slice(1).includes(out)) break;
      if (n.opType === 'Conv') {
        const wb = weight(n);
        if (!wb || wb.dims.length !== wa.dims.length) break;
        const group = getIntAttr(n, 'group', 1);
        if (Number(wb.dims[1]) * group !== cout || Number(wb.dims[0]) % group !== 0) break;
        pairs.push({ first: a, second: n, between, tensor: out, rank: wb.dims.length, channels: cout });
        break;
      }
      if (!HOMOGENEOUS.has(n.opType) || n.output.filter(Boolean).length !== 1) break;
      // PRelu's slope must be a constant (it is per channel or scalar; both commute with s > 0).
      if (n.opType === 'PRelu' && !index.isConstant(n.input[1], scope)) break;
      between.push(n.opType);
      out = n.output[0];
    }
  }
  return pairs;
}

interface Weights {
  dims: number[];
  data: Float32Array;
}

/**
 * Expected rounding noise power summed over B's output channels, for input-channel scales s (input
 * x_i/s_i, weight column i times s_i): 8-bit asymmetric per-tensor activation step over the scaled
 * range, 8-bit symmetric per-output-channel weight steps.
 */
function predictedNoise(wb: Weights, group: number, st: ChannelRanges, s: Float64Array): number {
  const m = wb.dims[0];
  const cg = wb.dims[1];
  const k = wb.data.length / (m * cg);
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < s.length; i++) {
    lo = Math.min(lo, st.min[i] / s[i]);
    hi = Math.max(hi, st.max[i] / s[i]);
  }
  const actStep = (hi - lo) / 255;
  let actNoise = 0;
  let weightNoise = 0;
  const perGroup = m / group;
  for (let o = 0; o < m; o++) {
    const g = Math.floor(o / perGroup);
    let rowMax = 0;
    let energy = 0;
    for (let j = 0; j < cg; j++) {
      const i = g * cg + j;
      let col = 0;
      for (let q = 0; q < k; q++) {
        const w = wb.data[(o * cg + j) * k + q] * s[i];
        col += w * w;
        rowMax = Math.max(rowMax, Math.abs(w));
      }
      actNoise += col;
      energy += (k * st.sumSquares[i]) / Math.max(1, st.count) / (s[i] * s[i]);
    }
    const wStep = rowMax / 127;
    weightNoise += (energy * wStep * wStep) / 12;
  }
  return (actNoise * actStep * actStep) / 12 + weightNoise;
}

/** Scales that balance B's input channel ranges against B's weight columns (depthwise: equal input ranges). */
function chooseScales(wb: Weights, group: number, st: ChannelRanges): Float64Array {
  const m = wb.dims[0];
  const cg = wb.dims[1];
  const c = cg * group;
  const k = wb.data.length / (m * cg);
  const perGroup = m / group;
  // Each output channel reads one input channel (depthwise): per-output-channel weight steps do not
  // change with s, so only the activation ranges count. Otherwise balance range_i / s_i against the
  // weight column's range · s_i (Nagel et al.'s √(r1/r2), with the measured activation range as r1).
  const depthwise = cg === 1;
  const colMax = new Float64Array(c);
  for (let o = 0; o < m; o++) {
    const g = Math.floor(o / perGroup);
    for (let j = 0; j < cg; j++) for (let q = 0; q < k; q++) colMax[g * cg + j] = Math.max(colMax[g * cg + j], Math.abs(wb.data[(o * cg + j) * k + q]));
  }
  const s = new Float64Array(c).fill(1);
  const live = new Uint8Array(c);
  let logSum = 0;
  let n = 0;
  for (let i = 0; i < c; i++) {
    const r = Math.max(Math.abs(st.min[i]), Math.abs(st.max[i]));
    const v = depthwise ? r : Math.sqrt(r / colMax[i]);
    if (!(v > 0 && Number.isFinite(v))) continue; // a dead channel (or zero weights) keeps s = 1
    s[i] = v;
    live[i] = 1;
    logSum += Math.log(v);
    n++;
  }
  if (n === 0) return s;
  // Normalise to a geometric mean of 1 over the live channels (the magnitudes stay where they were).
  const gm = Math.exp(logSum / n);
  for (let i = 0; i < c; i++) if (live[i]) s[i] /= gm;
  return s;
}

function spread(st: ChannelRanges, s: Float64Array): number {
  let lo = Infinity;
  let hi = 0;
  for (let i = 0; i < s.length; i++) {
    const r = Math.max(Math.abs(st.min[i]), Math.abs(st.max[i])) / s[i];
    if (!(r > 0)) continue;
    lo = Math.min(lo, r);
    hi = Math.max(hi, r);
  }
  return hi > 0 ? hi / lo : 1;
}

/**
 * Equalise every pair whose predicted output noise drops (see the file comment). `stats` gives the
 * per-channel statistics of each pair's `tensor` measured on the model as given; a pair without them
 * is left alone. Pairs may chain (A → B → C): scales compose, and the statistics of a later pair's
 * tensor are those of the unscaled model divided by that pair's own scales only. The input model is
 * not changed; untouched weights are shared.
 */
export function equalizeConvPairs(
  model: Model,
  stats: (tensor: string) => ChannelRanges | undefined,
  opts: { pairs?: EqualizationPair[]; force?: boolean } = {},
): { model: Model; records: EqualizationRecord[]; scales: Map<string, Float64Array> } {
  const index = GraphIndex.of(model);
  const pairs = opts.pairs ?? equalizationPairs(model, index);
  const records: EqualizationRecord[] = [];
  // B's input tensor → the s it was divided by (applied pairs only).
  const scales = new Map<string, Float64Array>();
  if (pairs.length === 0) return { model, records, scales };
  // Current weights and biases of every node touched so far (a node can be B of one pair and A of the next).
  const weights = new Map<NodeProto, Weights>();
  const biases = new Map<NodeProto, Float32Array>();
  const weightOf = (n: NodeProto): Weights => {
    let w = weights.get(n);
    if (!w) {
      const t = index.constant(n.input[1])!;
      weights.set(n, (w = { dims: t.dims.map(Number), data: Float32Array.from(toFloat32(tensorFromProto(t, model))) }));
    }
    return w;
  };
  for (const p of pairs) {
    const st = stats(p.tensor);
    if (!st || st.min.length !== p.channels) continue;
    const group = getIntAttr(p.second, 'group', 1);
    const wb = weightOf(p.second);
    const s = chooseScales(wb, group, st);
    const before = predictedNoise(wb, group, st, new Float64Array(p.channels).fill(1));
    const after = predictedNoise(wb, group, st, s);
    const ratio = before > 0 ? after / before : 1;
    const applied = opts.force === true || ratio < 1;
    records.push({ first: p.first.name || p.first.output[0], second: p.second.name || p.second.output[0], between: p.between, tensor: p.tensor, spreadBefore: spread(st, new Float64Array(p.channels).fill(1)), spreadAfter: applied ? spread(st, s) : spread(st, new Float64Array(p.channels).fill(1)), noiseRatio: ratio, applied });
    if (!applied) continue;
    scales.set(p.tensor, s);
    const wa = weightOf(p.first);
    const per = wa.data.length / wa.dims[0];
    for (let c = 0; c < p.channels; c++) for (let q = 0; q < per; q++) wa.data[c * per + q] /= s[c];
    if (p.first.input[2]) {
      let b = biases.get(p.first);
      if (!b) biases.set(p.first, (b = Float32Array.from(toFloat32(tensorFromProto(index.constant(p.first.input[2])!, model)))));
      for (let c = 0; c < p.channels; c++) b[c] /= s[c];
    }
    const m = wb.dims[0];
    const cg = wb.dims[1];
    const k = wb.data.length / (m * cg);
    const perGroup = m / group;
    for (let o = 0; o < m; o++) {
      const g = Math.floor(o / perGroup);
      for (let j = 0; j < cg; j++) for (let q = 0; q < k; q++) wb.data[(o * cg + j) * k + q] *= s[g * cg + j];
    }
  }
  const changed = new Set<NodeProto>();
  for (const p of pairs) {
    const r = records.find((x) => x.tensor === p.tensor);
    if (r?.applied) changed.add(p.first).add(p.second);
  }
  if (changed.size === 0) return { model, records, scales };
  const graph = model.proto.graph!;
  const names = new NameAllocator(graph);
  const inits: TensorProto[] = [];
  const replaced = new Map<NodeProto, NodeProto>();
  for (const n of changed) {
    const w = weights.get(n)!;
    const r = clone(NodeProtoSchema, n);
    const wName = names.allocate(`${n.input[1]}_cle`);
    inits.push(floatTensorProto(wName, w.dims, w.data));
    r.input[1] = wName;
    const b = biases.get(n);
    if (b) {
      const bName = names.allocate(`${n.input[2]}_cle`);
      inits.push(floatTensorProto(bName, [b.length], b));
      r.input[2] = bName;
    }
    replaced.set(n, r);
  }
  const nodes = graph.node.map((n) => replaced.get(n) ?? n);
  // Weights nothing reads any more go (initializers; Constant nodes too).
  const read = new Set<string>(graph.output.map((o) => o.name));
  for (const n of nodes) {
    for (const i of n.input) read.add(i);
    for (const a of n.attribute) for (const g of [...(a.g ? [a.g] : []), ...a.graphs]) for (const m of g.node) for (const i of m.input) read.add(i);
  }
  const old = new Set<string>();
  for (const n of changed) for (const i of n.input.slice(1)) if (i && !read.has(i)) old.add(i);
  const newGraph = {
    ...graph,
    node: nodes.filter((n) => !(n.opType === 'Constant' && n.output.length === 1 && old.has(n.output[0]))),
    initializer: [...graph.initializer.filter((t) => !old.has(t.name)), ...inits],
  };
  return { model: { ...model, proto: { ...model.proto, graph: newGraph } }, records, scales };
}

/** The statistics of x/s, per channel, from those of x (s > 0). */
export function scaledChannelStats(st: ChannelRanges, s: ArrayLike<number>): ChannelRanges {
  const c = st.min.length;
  const min = new Float64Array(c);
  const max = new Float64Array(c);
  const sumSquares = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    min[i] = st.min[i] / s[i];
    max[i] = st.max[i] / s[i];
    sumSquares[i] = st.sumSquares[i] / (s[i] * s[i]);
  }
  return { count: st.count, min, max, sumSquares };
}

/** Inputs of the main graph's depthwise Convs (each output channel reads one input channel; group > 1) with float constant weights. */
export function depthwiseInputs(model: Model, index: GraphIndex = GraphIndex.of(model)): { node: NodeProto; tensor: string; rank: number }[] {
  const out: { node: NodeProto; tensor: string; rank: number }[] = [];
  for (const ref of index.main.topoOrder) {
    const n = ref.node;
    if (n.opType !== 'Conv' || !isDefault(n) || !n.input[0] || index.isConstant(n.input[0])) continue;
    const w = n.input[1] ? index.constant(n.input[1]) : undefined;
    const group = getIntAttr(n, 'group', 1);
    if (!w || w.dims.length < 3 || group <= 1 || Number(w.dims[1]) !== 1) continue;
    out.push({ node: n, tensor: n.input[0], rank: w.dims.length });
  }
  return out;
}
