import { InternalError } from '../errors.js';
import type { GraphScope, NodeProto } from '../onnx/index.js';
import { affineParams, canonicalView, groupLayout, quantRange, quantizeValue, quantizeWeight, roundHalfEven, searchWeightClip, type AffineParams, type QuantizedWeight } from '../quant/index.js';
import type { WeightSpec } from './edits.js';
import type { EmitState } from './emit-state.js';

export interface ActivationQuant {
  /** The params each tensor is quantized with (after resolving `shareWith`). */
  params(tensor: string): AffineParams;
  readonly zpType: 'uint8' | 'int8';
}

/** Activation params from calibrated ranges: asymmetric uint8, or symmetric int8 (zero point 0). */
export function activationParams(range: readonly [number, number], type: 'uint8' | 'int8'): AffineParams {
  return type === 'uint8' ? affineParams(range[0], range[1], quantRange('uint8'), false) : affineParams(range[0], range[1], quantRange('int8', true), true);
}

/**
 * QuantizeLinear after the producer of `tensor`, and one DequantizeLinear in front of every consumer
 * in the scope (dedicated DQs: onnxruntime's fusions want a DQ per quantized op). A graph output is
 * renamed at its producer so the final DQ can carry the output name.
 */
/**
 * Float readers: layers kept float, which must not read a DequantizeLinear directly (see FloatReaders).
 */
export interface FloatReaders {
  nodes: ReadonlySet<NodeProto>;
  /** The folded Relu/Clip whose output this tensor is: float readers get DQ → a copy of it. */
  refold?: NodeProto;
  /**
   * The producer is a quantized layer that onnxruntime fuses only while Q is its output's one reader:
   * float readers then keep their DQ (reading the float original would break that fusion).
   */
  producerFuses?: boolean;
}

export function emitActivation(st: EmitState, scope: GraphScope, tensor: string, aq: ActivationQuant, floatReaders?: FloatReaders): void {
  const p = aq.params(tensor);
  const producer = scope.producers.get(tensor);
  const firstConsumer = scope.consumers.get(tensor)?.[0];
  const origin = producer ? st.idOf(producer.node) : firstConsumer ? st.idOf(firstConsumer.node) : tensor;
  let source = tensor;
  if (scope.outputs.has(tensor) && producer) {
    source = st.allocate(`${tensor}_float`);
    const pc = st.cloneOf(producer.node);
    pc.output = pc.output.map((o) => (o === tensor ? source : o));
  }
  // Q and its DQs read the same scale/zero-point initializers (scalars), as onnxruntime's quantizer
  // writes them. Names are numbered (`a7_q`, `a7_dq`): st.tensorMap and qtool.origin carry the provenance.
  const base = `a${st.activationCount++}`;
  const [qs, qz] = st.addScaleZp(scope, base, Float32Array.of(p.scale), [p.zeroPoint], aq.zpType, []);
  const quantized = st.allocate(`${base}_q`);
  st.insertAfterProducer(scope, tensor, st.node({ name: `${tensor}_Q`, opType: 'QuantizeLinear', domain: st.qdqDomain, inputs: [source, qs, qz], outputs: [quantized] }, origin));
  st.tensorMap.set(tensor, quantized);
  const consumers = scope.consumers.get(tensor) ?? [];
  const seen = new Set<NodeProto>();
  for (const c of consumers) {
    if (seen.has(c.node)) continue;
    seen.add(c.node);
    const isFloatReader = floatReaders?.nodes.has(c.node) && source === tensor;
    if (isFloatReader && !floatReaders!.refold && !floatReaders!.producerFuses) continue; // reads the float original
    const deq = st.allocate(`${base}_dq`);
    st.insertBefore(scope, c.node, st.node({ name: `${tensor}_DQ`, opType: 'DequantizeLinear', domain: st.qdqDomain, inputs: [quantized, qs, qz], outputs: [deq] }, st.idOf(c.node)));
    let read = deq;
    if (isFloatReader && floatReaders!.refold) {
      // DQ → a copy of the folded Relu/Clip → the float layer (no "DQ → float Conv" for onnxruntime to quantize).
      const r = floatReaders!.refold;
      read = st.allocate(`${tensor}_float`);
      const copy = st.node({ name: `${r.name || r.opType}_float`, opType: r.opType, domain: r.domain, inputs: [deq, ...r.input.slice(1)], outputs: [read] }, st.idOf(r));
      copy.attribute = r.attribute;
      st.insertBefore(scope, c.node, copy);
    }
    const cc = st.cloneOf(c.node);
    cc.input = cc.input.map((i) => (i === tensor ? read : i));
  }
  if (source !== tensor) {
    // The graph output itself: one more DQ producing the original name.
    st.insertAfterProducer(scope, tensor, st.node({ name: `${tensor}_DQ`, opType: 'DequantizeLinear', domain: st.qdqDomain, inputs: [quantized, qs, qz], outputs: [tensor] }, origin));
  }
}

/** Quantize a float weight per spec (with the optional clip search), through the state's weight quantizer when it has one. */
export function quantizeForSpec(data: Float32Array, dims: readonly number[], spec: WeightSpec, via?: { st: EmitState; node: NodeProto; weight: string }) {
  let w = data;
  if (spec.multiplier !== undefined && spec.multiplier !== 1) {
    w = new Float32Array(data.length);
    for (let i = 0; i < w.length; i++) w[i] = data[i] * spec.multiplier;
  }
  const base = { bits: spec.bits, symmetric: spec.symmetric, granularity: spec.granularity, axis: spec.axis, blockSize: spec.blockSize };
  const clip = spec.clip === 'mse' ? searchWeightClip(w, dims, base) : undefined;
  const rtn = quantizeWeight(w, dims, clip ? { ...base, clip } : base);
  const custom = via?.st.weightQuantizer;
  if (!via || !custom) return rtn;
  const layer = via.st.idOf(via.node);
  const res = custom({ layer, name: via.node.name, opType: via.node.opType, weight: via.weight, w, dims, spec: base, rtn });
  if (!res) return rtn;
  via.st.weightAlgorithms.set(via.node, res.record);
  return res.quantized;
}

interface QuantizedInit {
  name: string;
  scales: Float32Array;
  zeroPoints: Int32Array;
  scaleDims: number[];
  type: 'int8' | 'uint8' | 'int4' | 'uint4';
  bytes: number;
}

/**
 * Weight behind a DequantizeLinear: one integer initializer per (weight, spec, graph), shared by
 * every node using the same weight the same way; each DQ gets its own scale/zero-point initializers.
 */
export function emitWeight(st: EmitState, scope: GraphScope, node: NodeProto, input: number, spec: WeightSpec, minScales?: Float32Array): void {
  const w = node.input[input];
  const cache = st.weightCache as Map<string, QuantizedInit>;
  const key = `${scope.path}\u0000${w}\u0000${JSON.stringify(spec)}${minScales ? `\u0000${st.idOf(node)}` : ''}`;
  let qi = cache.get(key);
  if (!qi) {
    const { data, dims } = st.constantFloat(w, scope);
    const qw = quantizeForSpec(data, dims, spec, { st, node, weight: w });
    if (minScales && spec.symmetric) raiseScales(qw, data, dims, spec, minScales);
    recordBiasCorrection(st, node, data, dims, spec, qw);
    const type = qw.type as QuantizedInit['type'];
    const ints = type === 'int8' || type === 'int4' ? Int8Array.from(qw.q) : Uint8Array.from(qw.q);
    const name = st.addInitializer(scope, `w${st.weightCount++}_q`, type, dims, ints as never);
    const bytes = (spec.bits === 4 ? Math.ceil(data.length / 2) : data.length) + 4 * qw.scales.length + (spec.symmetric ? 0 : qw.scales.length * (spec.bits / 8));
    qi = { name, scales: qw.scales, zeroPoints: qw.zeroPoints, scaleDims: qw.scaleDims, type, bytes };
    cache.set(key, qi);
    st.tensorMap.set(w, name);
    if (spec.bits === 4 && !spec.dqDomain) st.minOpset = Math.max(st.minOpset, 21);
  }
  const base = qi.name.slice(0, qi.name.lastIndexOf('_q'));
  // A symmetric Conv weight needs no zero-point input (0 of its type; QLinearConv still fuses; a
  // 4-bit weight-only conv is plain DequantizeLinear); other ops keep it because onnxruntime's QGemm
  // fusion requires one.
  const omitZp = spec.symmetric && (node.opType === 'Conv' || (spec.bits === 4 && node.opType === 'ConvTranspose'));
  const [s, z] = omitZp
    ? [st.addInitializer(scope, `${base}_s`, 'float32', qi.scaleDims, Float32Array.from(qi.scales)), '']
    : st.addScaleZp(scope, base, qi.scales, qi.zeroPoints, qi.type, qi.scaleDims);
  const out = st.allocate(`${base}_dq`);
  const attrs: Record<string, number> = {};
  if (spec.granularity === 'channel') attrs.axis = spec.axis;
  if (spec.granularity === 'block') {
    attrs.axis = spec.axis;
    attrs.block_size = spec.blockSize ?? 32;
  }
  const domain = spec.bits === 4 ? (spec.dqDomain ?? '') : st.qdqDomain;
  st.insertBefore(scope, node, st.node({ name: `${base}_DQ`, opType: 'DequantizeLinear', domain, inputs: z ? [qi.name, s, z] : [qi.name, s], outputs: [out], attrs }, st.idOf(node)));
  const cc = st.cloneOf(node);
  cc.input[input] = out;
  let m = st.weightScales.get(node);
  if (!m) st.weightScales.set(node, (m = new Map()));
  m.set(input, { scales: qi.scales, perChannel: spec.granularity === 'channel' });
  st.weightBytes.set(node, (st.weightBytes.get(node) ?? 0) + qi.bytes);
}

const INT32_MAX = 2147483647;

/**
 * Bias correction: c[o] = Σ_j (Ŵ − W)[o, j] · E[x_j] per output channel (the mean output shift the weight
 * rounding causes on the calibration data), kept for emitBias. Only for per-channel weights of a node with
 * a bias input and statistics for its layer.
 */
function recordBiasCorrection(st: EmitState, node: NodeProto, data: Float32Array, dims: readonly number[], spec: WeightSpec, qw: QuantizedWeight): void {
  const biasInput = node.opType === 'Conv' || node.opType === 'Gemm' ? 2 : -1;
  if (biasInput < 0 || !node.input[biasInput] || !st.layerInputMeans || spec.granularity !== 'channel') return;
  const means = st.layerInputMeans(st.idOf(node));
  const view = canonicalView(dims, spec);
  if (!means || !view || view.rows % means.length !== 0 || means.some((m) => m.length !== view.cols)) return;
  const { groupOf } = groupLayout(dims, spec);
  const m = spec.multiplier ?? 1;
  const perGroup = view.rows / means.length;
  const corr = new Float64Array(view.rows);
  for (let r = 0; r < view.rows; r++) {
    const mean = means[Math.floor(r / perGroup)];
    let c = 0;
    for (let j = 0; j < view.cols; j++) {
      const i = view.index(r, j);
      const g = groupOf(i);
      const deq = Math.fround((qw.q[i] - qw.zeroPoints[g]) * qw.scales[g]);
      c += (deq - Math.fround(data[i] * m)) * mean[j];
    }
    corr[r] = c;
  }
  st.biasCorrections.set(node, corr);
}

/**
 * onnxruntime's `_adjust_weight_scale_for_int32_bias`: where s_activation · s_weight[c] is so small
 * that the bias would overflow int32, the weight scale of that channel is raised (and the channel
 * requantized) so the bias fits.
 */
function raiseScales(qw: QuantizedWeight, data: Float32Array, dims: readonly number[], spec: WeightSpec, minScales: Float32Array): void {
  const raised = new Set<number>();
  for (let g = 0; g < qw.scales.length; g++) {
    const need = minScales[spec.granularity === 'channel' ? g : 0] ?? 0;
    if (qw.scales[g] < need) {
      qw.scales[g] = Math.fround(need);
      raised.add(g);
    }
  }
  if (raised.size === 0) return;
  const { groupOf } = groupLayout(dims, spec);
  const m = spec.multiplier ?? 1;
  for (let i = 0; i < data.length; i++) {
    const g = groupOf(i);
    if (raised.has(g)) qw.q[i] = quantizeValue(data[i] * m, qw.scales[g], qw.zeroPoints[g], qw.range);
  }
}

/** Smallest weight scale per channel that keeps bias / (s_activation · s_weight) inside int32 (with 2x margin). */
export function minWeightScalesForBias(st: EmitState, scope: GraphScope, node: NodeProto, input: number, activation: string, aq: ActivationQuant, multiplier = 1): Float32Array {
  const { data } = st.constantFloat(node.input[input], scope);
  const sx = aq.params(activation).scale;
  const out = new Float32Array(data.length);
  for (let c = 0; c < data.length; c++) out[c] = Math.abs(data[c] * multiplier) / (sx * (INT32_MAX / 2));
  return out;
}

/**
 * int32 bias: scale[c] = s_activation · s_weight[c] · multiplier, zero point 0, so the integer
 * kernel adds it straight into its accumulator. Returns false (bias left float) if it overflows.
 */
export function emitBias(st: EmitState, scope: GraphScope, node: NodeProto, input: number, activation: string, weightInput: number, aq: ActivationQuant, multiplier = 1): boolean {
  const ws = st.weightScales.get(node)?.get(weightInput);
  if (!ws) throw new InternalError(`bias of ${node.name} before its weight`);
  const b = node.input[input];
  const { data } = st.constantFloat(b, scope);
  const sx = aq.params(activation).scale;
  const n = data.length;
  const corr = st.biasCorrections.get(node);
  const scales = new Float32Array(n);
  const q = new Int32Array(n);
  for (let c = 0; c < n; c++) {
    const s = Math.fround(sx * (ws.perChannel ? ws.scales[c] : ws.scales[0]));
    scales[c] = s;
    const target = corr && corr.length === n ? data[c] * multiplier - corr[c] : data[c] * multiplier;
    const v = s > 0 ? roundHalfEven(Math.fround(target / s)) : 0;
    if (!Number.isFinite(v) || Math.abs(v) > INT32_MAX) {
      st.notes.push(`bias "${b}" of ${st.idOf(node)} overflows int32 at scale ${s}; left float`);
      return false;
    }
    q[c] = v;
  }
  const base = `b${st.weightCount++}`;
  const name = st.addInitializer(scope, `${base}_q`, 'int32', [n], q);
  const perChannel = ws.perChannel;
  // int32 DequantizeLinear has no zero point (it is 0).
  const s = st.addInitializer(scope, `${base}_s`, 'float32', perChannel ? [n] : [], perChannel ? scales : Float32Array.of(scales[0]));
  const out = st.allocate(`${base}_dq`);
  st.insertBefore(scope, node, st.node({ name: `${base}_DQ`, opType: 'DequantizeLinear', domain: st.qdqDomain, inputs: [name, s], outputs: [out], attrs: perChannel ? { axis: 0 } : {} }, st.idOf(node)));
  st.cloneOf(node).input[input] = out;
  st.tensorMap.set(b, name);
  st.weightBytes.set(node, (st.weightBytes.get(node) ?? 0) + 4 * n);
  return true;
}
