import { create } from '@bufbuild/protobuf';
import type { CalibrationTable, LayerRecord, Plan } from '../documents/index.js';
import { InternalError, ModelError, UsageError } from '../errors.js';
import { GraphIndex, getAttr, getIntsAttr, nodeId, OperatorSetIdProtoSchema, quantizableLayers, tensorFromProto, walkGraphs, type GraphScope, type Model, type NodeProto } from '../onnx/index.js';
import type { Edit, RangeLookup } from './edits.js';
import { activationParams, emitActivation, emitBias, emitWeight, minWeightScalesForBias, quantizeForSpec, type ActivationQuant } from './emit-qdq.js';
import { emitBlockedQdq, emitDynamicMatMul, emitGatherQuantized, emitMatMulNBits } from './emit-matmul-nbits.js';
import { cloneStructure, EmitState } from './emit-state.js';
import { emissionRanges, markEdits, markSettings, scaleSource, sharesOf, type RangeAccessor, type WeightCheck } from './mark.js';
import { opsetRaiseBlockers } from './opset.js';
import { resolveLayerPlan, type Selection } from './plan.js';
import type { WeightQuantizer } from './weight-quantizer.js';
import { foldConvAffine, type FoldResult } from './fold-conv.js';
import type { ChannelRanges } from './equalize.js';
import { logSinkOf, maskFillOf } from './precision.js';
import { usefulInterval } from './useful-range.js';
import { DEFAULT_MIN_TENSOR_SQNR_DB, dequantizeWeight, expectedSqnrDb, weightSqnrDb, type SqnrStats } from '../quant/index.js';
import { toFloat32 } from '../tensor/index.js';

export interface ApplyPlanOptions extends Selection {
  /** Static activations: asymmetric uint8 (default) or symmetric int8. */
  activationType?: 'uint8' | 'int8';
  /** INT4 form: MatMulNBits (default) or DequantizeLinear(int4, block_size). */
  int4Format?: 'nbits' | 'qdq';
  /** MatMulNBits accuracy_level (default 4). */
  accuracyLevel?: number;
  /** Let Relu/Clip be absorbed by the quantized output range (default true). */
  foldActivations?: boolean;
  /**
   * Run hard-swish and squeeze-excitation gates as integer ops: a quantized tensor plus/times a scalar
   * constant and the product of two quantized tensors become QLinearAdd/QLinearMul (default false:
   * each adds a requantization; on PaddleOCR rec it cost 4 dB output SQNR and 5 points of argmax agreement).
   */
  integerElementwise?: boolean;
  /**
   * Cut each activation's calibrated range to the interval where its consumers do not saturate
   * (Relu, Clip, HardSigmoid, hard-swish, through scalar affine ops; default true).
   */
  narrowRanges?: boolean;
  /**
   * The model's GraphIndex when the caller already has it (ModelContext.index), so repeated calls on
   * one model (an evaluator's applyPlan per plan) do not rebuild it. Must index this model's graph.
   */
  index?: GraphIndex;
  /** Replaces round-to-nearest for the weights it accepts (GPTQ); recorded per layer in the summary. */
  weightQuantizer?: WeightQuantizer;
  /**
   * Bias correction for static INT8 layers with an int32 bias: E[x] of the layer's reduction vectors
   * (per conv group, in the im2col order) on the calibration data, by layer id. The stored bias becomes
   * b − (Ŵ − W)·E[x], so the weight rounding no longer shifts the mean output.
   */
  layerInputMeans?: (layer: string) => readonly Float64Array[] | undefined;
  /**
   * LLM.int8()-style outlier split for dynamic INT8 MatMul/Gemm: input channels (indices along the
   * reduction axis) computed by a small float MatMul beside the int8 one, by layer id.
   */
  outlierChannels?: (layer: string) => readonly number[] | undefined;
  /**
   * Static mode: fold BatchNormalization / Mul(const) / Add(const) that follow a Conv into its weight and
   * bias first (exact in float; one rounding fewer per folded op; fold-conv.ts). Default true.
   */
  foldConvAffine?: boolean;
  /**
   * Activations whose expected SQNR on their 8-bit grid (from the calibration statistics, in the
   * domain their consumers see) is below this stay float (default quant/DEFAULT_MIN_TENSOR_SQNR_DB,
   * 20 dB); 8-bit weights below it keep their layer float (the floor is 6.02 dB lower per bit below 8
   * for 4-bit weights). −Infinity disables the check.
   */
  minTensorSqnrDb?: number;
  /**
   * Per-channel statistics (axis 1) of the inputs of depthwise convolutions (each output channel reads
   * one input channel, so a channel's error is not averaged with the others'): an input whose median
   * per-channel SQNR on its one per-tensor 8-bit grid is below the floor stays float, like a tensor
   * below the floor in `minTensorSqnrDb`. Measured by the pipeline (calibrate/channelStatistics).
   */
  channelStats?: (tensor: string) => ChannelRanges | undefined;
}

/** The caller's GraphIndex of `model` (checked to be of this graph), or a new one. */
export function indexFor(model: Model, opts: { index?: GraphIndex }): GraphIndex {
  if (!opts.index) return GraphIndex.of(model);
  if (opts.index.main.graph !== model.proto.graph) throw new InternalError('applyPlan: the given GraphIndex is not of this model');
  return opts.index;
}

/** A tensor kept at higher precision by measurement, named in the summary. */
export interface PrecisionRecord {
  tensor: string;
  kind: 'activation' | 'weight';
  /** Expected SQNR at the chosen precision (dB). */
  sqnrDb: number;
  floorDb: number;
  /** 'linear', or 'log' when the tensor reaches a Log through relative-error-keeping ops. */
  domain: 'linear' | 'log';
  /** What the rewrite did instead. */
  action: string;
}

export interface RewriteSummary {
  mode: Plan['mode'];
  layers: LayerRecord[];
  notes: string[];
  /** Tensors kept at higher precision because their measured expected SQNR was below the floor. */
  lowPrecision: PrecisionRecord[];
}

export interface ApplyPlanResult {
  /** The quantized model; it shares every untouched tensor with the input model. */
  model: Model;
  summary: RewriteSummary;
  /** Original tensor name → its quantized (integer) tensor. */
  tensorMap: Record<string, string>;
}

/**
 * Rewrite a model by a plan: mark (every op rule returns plain edits), then emit (each edit applied
 * once, deduplicated). Static mode needs a calibration table. The input model is not modified.
 */
export function applyPlan(input: Model, plan: Plan, table: CalibrationTable | undefined, opts: ApplyPlanOptions = {}): ApplyPlanResult {
  if (plan.mode === 'static' && !table) throw new UsageError('E_OPTION_CONFLICT', 'static quantization needs a calibration table: give --data or --calib, or use --mode dynamic');
  const { model, folded, index } = staticFold(input, plan, opts);
  const settings = markSettings(model, opts);
  const { activationType, opset } = settings;

  // Mask fills are recognised by structure or non-finite values, never by magnitude (precision.ts).
  const range = (scope: GraphScope, tensor: string): RangeLookup => {
    const e = table?.tensors[tensor];
    if (!e) return { ok: false, reason: 'no calibration range' };
    const [lo, hi] = e.range;
    if (e.nonFinite || !Number.isFinite(lo) || !Number.isFinite(hi)) return { ok: false, reason: 'non-finite values seen in calibration (a mask fill?)', keepFloat: true };
    const fill = maskFillOf(index, scope, tensor);
    if (fill) return { ok: false, reason: `mask fill (${fill})`, keepFloat: true };
    return { ok: true, range: [lo, hi] };
  };
  // The calibrated range cut to where the tensor's consumers stop saturating (Relu, Clip, hard-swish, …).
  const narrowedTensors = new Set<string>();
  const usedNarrowed = new Set<string>();
  const narrowRanges = opts.narrowRanges ?? true;
  const floorDb = opts.minTensorSqnrDb ?? DEFAULT_MIN_TENSOR_SQNR_DB;
  const lowPrecision = new Map<string, PrecisionRecord>();
  const lookups = new Map<GraphScope, Map<string, RangeLookup>>();
  // The only reader of the table (mark and emit alike): rangesNeeded records the same calls.
  const rangeIn: RangeAccessor = (scope, tensor) => {
    const memo = lookups.get(scope) ?? new Map<string, RangeLookup>();
    lookups.set(scope, memo);
    const known = memo.get(tensor);
    if (known) return known;
    let r = range(scope, tensor);
    let useful: readonly [number, number] = [-Infinity, Infinity];
    if (r.ok && narrowRanges) {
      const [a, b] = (useful = usefulInterval(index, scope, tensor));
      const lo = Math.max(r.range[0], a);
      const hi = Math.min(r.range[1], b);
      if (lo < hi && (lo !== r.range[0] || hi !== r.range[1])) {
        narrowedTensors.add(tensor);
        r = { ok: true, range: [lo, hi] };
      }
    }
    if (r.ok) r = measuredPrecision(index, scope, tensor, table!.tensors[tensor], r, useful, activationType, floorDb, lowPrecision);
    const cs = r.ok && scope === index.main ? opts.channelStats?.(tensor) : undefined;
    if (r.ok && cs) r = channelPrecision(tensor, cs, r, activationType, floorDb, lowPrecision);
    memo.set(tensor, r);
    return r;
  };

  // 8-bit weights judged by their measured SQNR against the same floor (6.02 dB lower per bit below 8).
  const weightChecked = new Map<string, RangeLookup>();
  const weightCheck: WeightCheck = (scope, node, input, spec) => {
    const name = node.input[input];
    const k = `${scope.path}\u0000${name}\u0000${JSON.stringify(spec)}`;
    const known = weightChecked.get(k);
    if (known) return known;
    let r: RangeLookup = { ok: true, range: [0, 0] };
    const t = index.constant(name, scope);
    if (t && floorDb > -Infinity) {
      const data = toFloat32(tensorFromProto(t, model));
      const dims = t.dims.map(Number);
      const m = spec.multiplier ?? 1;
      const w = m === 1 ? data : data.map((v) => v * m);
      const wq = dequantizeWeight(quantizeForSpec(data, dims, spec), dims, spec);
      const db = weightSqnrDb(w, wq);
      const floor = floorDb - 6.02 * (8 - spec.bits);
      if (db < floor) {
        lowPrecision.set(name, { tensor: name, kind: 'weight', sqnrDb: db, floorDb: floor, domain: 'linear', action: `layer ${nodeId(node, scope, scope.graph.node.indexOf(node))} kept float` });
        r = { ok: false, reason: `measured SQNR ${db.toFixed(1)} dB at ${spec.bits} bits (${spec.granularity}) is below the ${floor} dB floor`, keepFloat: true };
      }
    }
    weightChecked.set(k, r);
    return r;
  };

  // Mark.
  const edits = markEdits(index, plan, settings, rangeIn, weightCheck);

  // Emit.
  const clone = cloneStructure(model);
  const qdqDomain = opset >= 13 ? '' : 'com.microsoft';
  const st = new EmitState(model, index, clone, qdqDomain);
  st.layerInputMeans = inputMeansAfterFold(opts.layerInputMeans, folded);
  st.outlierChannels = opts.outlierChannels;
  st.weightQuantizer = (req) => {
    const lp = resolveLayerPlan(plan, req.layer, req.name, req.opType, opts);
    if (lp.algorithm === 'rtn') return undefined;
    if (!opts.weightQuantizer) throw new UsageError('E_OPTION_CONFLICT', `layer "${req.layer}": the plan asks for ${lp.algorithm}, which needs calibration data (layer-input statistics): give --data, or use algorithm rtn`);
    return opts.weightQuantizer(req);
  };
  const shares = sharesOf(edits);
  const readable = emissionRanges(edits, shares);
  const done = new Set<string>();
  const records = new Map<string, { node?: NodeProto; record: LayerRecord }>();
  const key = (...parts: (string | number)[]) => parts.join('\u0000');
  const aqFor = (scope: GraphScope): ActivationQuant => ({
    zpType: activationType,
    params: (t: string) => {
      const cur = scaleSource(shares, scope, t);
      if (!readable.get(scope)?.has(cur)) throw new InternalError(`emission reads the range of "${cur}", which emissionRanges does not list`);
      const r = rangeIn(scope, cur);
      if (narrowedTensors.has(cur)) usedNarrowed.add(cur);
      if (!r.ok) throw new ModelError('E_INTERNAL_RANGE', `tensor "${cur}" was marked for quantization without a usable range`, { file: model.file });
      return activationParams(r.range, activationType);
    },
  });
  // Layers kept float (a constant weight, no weight edit) read a quantized activation's float original,
  // not its DequantizeLinear: onnxruntime would otherwise quantize "DQ → float Conv → Q" itself
  // (its weight/bias quantization transformer), which ignores the plan and, below opset 11, writes a
  // Round node the model's opset lacks (the model no longer loads). For folded Relu/Clip outputs the
  // float readers a copy of the folded Relu/Clip (the float tensor under that name is the un-clipped producer output).
  const quantizedWeights = new Set(edits.filter((e) => e.kind === 'qdq-weight' || e.kind === 'matmul-nbits' || e.kind === 'dynamic-matmul').map((e) => e.node));
  const floatLayers = new Set(quantizableLayers(index).map((l) => l.node).filter((n) => !quantizedWeights.has(n)));
  const foldedBy = new Map<string, NodeProto>();
  for (const e of edits) if (e.kind === 'fold-activation') foldedBy.set(e.node.output[0], e.node);
  for (const [scope, m] of shares) for (const t of m.keys()) emitActivation(st, scope, t, aqFor(scope), { nodes: floatLayers, refold: foldedBy.get(t), producerFuses: quantizedWeights.has(scope.producers.get(t)?.node as NodeProto) });
  // Weight scales an int32 bias needs (weights are quantized before their bias).
  const minScales = new Map<NodeProto, Map<number, Float32Array>>();
  for (const e of edits) {
    if (e.kind !== 'int32-bias') continue;
    const m = minScales.get(e.node) ?? new Map<number, Float32Array>();
    minScales.set(e.node, m);
    m.set(e.weightInput, minWeightScalesForBias(st, e.scope, e.node, e.input, e.activation, aqFor(e.scope), e.multiplier));
  }
  const order: Edit['kind'][] = ['fold-activation', 'qdq-weight', 'int32-bias', 'gemm-unit-scalars', 'matmul-nbits', 'dynamic-matmul', 'gather-quantized', 'layer'];
  for (const kind of order) {
    for (const e of edits) {
      if (e.kind !== kind) continue;
      switch (e.kind) {
        case 'qdq-activation':
          break;
        case 'fold-activation': {
          const k = key('f', st.idOf(e.node));
          if (done.has(k)) break;
          done.add(k);
          const pc = st.cloneOf(e.producer);
          pc.output = pc.output.map((o) => (o === e.node.input[0] ? e.node.output[0] : o));
          st.replaceNode(e.scope, e.node, []);
          break;
        }
        case 'qdq-weight': {
          const k = key('w', st.idOf(e.node), e.input);
          if (done.has(k)) break;
          done.add(k);
          emitWeight(st, e.scope, e.node, e.input, e.spec, minScales.get(e.node)?.get(e.input));
          break;
        }
        case 'int32-bias': {
          const k = key('b', st.idOf(e.node), e.input);
          if (done.has(k)) break;
          done.add(k);
          emitBias(st, e.scope, e.node, e.input, e.activation, e.weightInput, aqFor(e.scope), e.multiplier);
          break;
        }
        case 'gemm-unit-scalars': {
          const cc = st.cloneOf(e.node);
          cc.attribute = cc.attribute.filter((a) => !((e.alpha && a.name === 'alpha') || (e.beta && a.name === 'beta')));
          break;
        }
        case 'matmul-nbits': {
          const k = key('r', st.idOf(e.node));
          if (done.has(k)) break;
          done.add(k);
          if (e.format === 'qdq') emitBlockedQdq(st, e.scope, e.node, e);
          else emitMatMulNBits(st, e.scope, e.node, e);
          break;
        }
        case 'dynamic-matmul': {
          const k = key('r', st.idOf(e.node));
          if (done.has(k)) break;
          done.add(k);
          emitDynamicMatMul(st, e.scope, e.node, e);
          break;
        }
        case 'gather-quantized': {
          const k = key('r', st.idOf(e.node));
          if (done.has(k)) break;
          done.add(k);
          emitGatherQuantized(st, e.scope, e.node, e);
          break;
        }
        case 'layer': {
          const ref = [...index.allNodes()].find((r) => nodeId(r.node, r.graph, r.position) === e.record.id && r.graph.path === e.record.graph);
          records.set(key(e.record.graph, e.record.id), { node: ref?.node, record: e.record });
          break;
        }
        default:
          assertNever(e);
      }
    }
  }

  // Fused QLinear* kernels exist from opset 10: an opset-9 model with activation Q/DQ is raised to 10.
  if (opset < 10 && shares.size > 0) raiseToOpset10(st, opset);
  if (folded.length > 0) {
    const after = folded.filter((f) => !f.input && !f.scalarOnly);
    const before = folded.filter((f) => f.input);
    const parts = [
      ...(after.length ? [`${after.length} convolutions took the BatchNormalization/Mul/Add/HardSigmoid after them into their weights and biases`] : []),
      ...(before.length ? [`${before.length} the scalar Mul/Div/Add before them`] : []),
    ];
    const ops = folded.reduce((a, f) => a + f.ops.length, 0);
    if (parts.length) st.notes.push(`${parts.join('; ')} (${ops} float ops fewer between Q/DQ)`);
  }
  if (usedNarrowed.size > 0) st.notes.push(`${usedNarrowed.size} activation ranges cut to the interval where their consumers do not saturate (Relu, Clip, HardSigmoid, hard-swish)`);
  rebuildGraphs(st);
  removeUnusedConstants(st);
  finishOpsets(st, opset);

  const layers: LayerRecord[] = [];
  for (const { node, record } of records.values()) {
    const before = node ? floatBytes(st, node) : 0;
    let after = node && record.bits !== 'float' ? (st.weightBytes.get(node) ?? before) : before;
    // Weight-only layers keep their float bias (before counts it too).
    if (node && record.scheme === 'weight-only' && st.weightBytes.has(node)) after += floatBytes(st, node, [2]);
    const alg = node ? st.weightAlgorithms.get(node) : undefined;
    layers.push({ ...record, ...(alg ?? {}), weightBytes: { before, after } });
  }
  const tensorMap: Record<string, string> = {};
  for (const k of [...st.tensorMap.keys()].sort()) tensorMap[k] = st.tensorMap.get(k)!;
  return {
    model: { proto: clone.proto, file: model.file, baseDir: model.baseDir },
    summary: { mode: plan.mode, layers, notes: st.notes, lowPrecision: [...lowPrecision.values()] },
    tensorMap,
  };
}

/**
 * The expected SQNR of an activation on its grid (over `r.range`, the part of the histogram inside it:
 * values outside are ones the consumers saturate or the range clips), in the log domain when the
 * non-negative tensor reaches a Log through relative-error-keeping ops. Below the floor: not usable,
 * kept float, recorded.
 */
function measuredPrecision(
  index: GraphIndex,
  scope: GraphScope,
  tensor: string,
  e: SqnrStats,
  r: Extract<RangeLookup, { ok: true }>,
  useful: readonly [number, number],
  type: 'uint8' | 'int8',
  floorDb: number,
  out: Map<string, PrecisionRecord>,
): RangeLookup {
  if (!(floorDb > -Infinity)) return r;
  const sink = e.min >= 0 ? logSinkOf(index, scope, tensor) : undefined;
  const linear = expectedSqnrDb(e, r.range, type, { kind: 'linear' }, useful);
  const log = sink ? expectedSqnrDb(e, r.range, type, { kind: 'log', epsilon: sink.epsilon }) : Infinity;
  const db = Math.min(linear, log);
  if (!(db < floorDb)) return r;
  const domain = log < linear ? 'log' : 'linear';
  out.set(tensor, { tensor, kind: 'activation', sqnrDb: db, floorDb, domain, action: 'kept float (its consumers read the float tensor)' });
  const where = domain === 'log' ? ' in the log domain (it reaches a Log)' : '';
  return { ok: false, reason: `expected SQNR ${db.toFixed(1)} dB at 8 bits${where} is below the ${floorDb} dB floor`, keepFloat: true };
}

/**
 * The median per-channel SQNR of a tensor on its one 8-bit grid over `r.range` (noise step²/12 against
 * each channel's E[x²], clipping ignored): below the floor, kept float and recorded. Only asked for
 * depthwise inputs, where each output channel sees one input channel's error alone.
 */
export function medianChannelSqnrDb(cs: ChannelRanges, range: readonly [number, number], type: 'uint8' | 'int8'): number {
  const [lo, hi] = range;
  const step = type === 'int8' ? (2 * Math.max(Math.abs(lo), Math.abs(hi))) / 255 : (Math.max(hi, 0) - Math.min(lo, 0)) / 255;
  const noise = (step * step) / 12;
  const db: number[] = [];
  for (let c = 0; c < cs.min.length; c++) {
    const e = cs.sumSquares[c] / Math.max(1, cs.count);
    if (e > 0) db.push(noise > 0 ? 10 * Math.log10(e / noise) : Infinity);
  }
  if (db.length === 0) return Infinity;
  db.sort((a, b) => a - b);
  return db[Math.floor(db.length / 2)];
}

function channelPrecision(tensor: string, cs: ChannelRanges, r: Extract<RangeLookup, { ok: true }>, type: 'uint8' | 'int8', floorDb: number, out: Map<string, PrecisionRecord>): RangeLookup {
  if (!(floorDb > -Infinity)) return r;
  const db = medianChannelSqnrDb(cs, r.range, type);
  if (!(db < floorDb)) return r;
  out.set(tensor, { tensor, kind: 'activation', sqnrDb: db, floorDb, domain: 'linear', action: 'kept float (a depthwise conv input: its median channel measures below the floor on one per-tensor 8-bit scale)' });
  return { ok: false, reason: `median per-channel SQNR ${db.toFixed(1)} dB at 8 bits (a depthwise conv input: channels are not mixed) is below the ${floorDb} dB floor`, keepFloat: true };
}

/**
 * The model the static rewrite works on — convolutions with their following affine ops folded in
 * (rangesNeeded uses the same) — and its GraphIndex. Without folding: the input and the caller's index.
 * The folded model of one input model (identity of its proto) is built once and reused, so an
 * evaluator's applyPlan per plan does not fold again.
 */
export function staticFold(model: Model, plan: Plan, opts: { foldConvAffine?: boolean; index?: GraphIndex }): FoldResult & { index: GraphIndex } {
  if (plan.mode !== 'static' || opts.foldConvAffine === false) return { model, folded: [], index: indexFor(model, opts) };
  let f = foldedModels.get(model.proto);
  if (!f) {
    const r = foldConvAffine(model, indexFor(model, opts));
    f = { ...r, index: r.folded.length > 0 ? new GraphIndex(r.model.proto.graph!, r.model.file) : indexFor(model, opts) };
    foldedModels.set(model.proto, f);
  }
  return f.folded.length > 0 ? f : { model, folded: [], index: indexFor(model, opts) };
}

/**
 * Layer-input means of the input model, for the folded model: a conv that took scalar ops from its
 * input side reads x where the input model's layer read a·x + b, so its means become (m − b) / a.
 */
function inputMeansAfterFold(means: ApplyPlanOptions['layerInputMeans'], folded: FoldResult['folded']): ApplyPlanOptions['layerInputMeans'] {
  const maps = new Map(folded.flatMap((f) => (f.input ? [[f.conv, f.input] as const] : [])));
  if (!means || maps.size === 0) return means;
  return (layer) => {
    const m = means(layer);
    const f = maps.get(layer);
    if (!m || !f) return m;
    return m.map((v) => v.map((x) => (x - f.b) / f.a));
  };
}

const foldedModels = new WeakMap<object, FoldResult & { index: GraphIndex }>();

function assertNever(x: never): never {
  throw new InternalError(`unhandled edit ${JSON.stringify(x)}`);
}

/** Float bytes of a layer's weight (and bias, when the layer has one). */
function floatBytes(st: EmitState, node: NodeProto, inputs: readonly number[] = [1, 2]): number {
  const scope = st.refs.get(node)?.graph;
  let n = 0;
  for (const i of inputs) {
    const t = node.input[i] ? st.index.constant(node.input[i], scope) : undefined;
    if (t) n += 4 * t.dims.reduce((a, b) => a * Number(b), 1);
  }
  return n;
}

/** Apply head/before/after/replace insertions and new initializers to each changed graph. */
function rebuildGraphs(st: EmitState): void {
  for (const [scope, ch] of st.changes) {
    const g = st.clone.graphs.get(scope.graph)!;
    const out: NodeProto[] = [...ch.head];
    for (const orig of scope.graph.node) {
      out.push(...(ch.before.get(orig) ?? []));
      out.push(...(ch.replace.get(orig) ?? [st.cloneOf(orig)]));
      out.push(...(ch.after.get(orig) ?? []));
    }
    g.node = out;
    g.initializer = [...g.initializer, ...ch.initializers];
  }
}

/** Drop float weights (initializers or Constant nodes) that no node reads any more. */
function removeUnusedConstants(st: EmitState): void {
  if (st.touchedConstants.size === 0) return;
  const used = new Set<string>();
  for (const g of walkGraphs(st.clone.proto.graph!)) {
    for (const n of g.node) for (const i of n.input) used.add(i);
    for (const o of g.output) used.add(o.name);
  }
  for (const g of walkGraphs(st.clone.proto.graph!)) {
    const drop = (name: string) => st.touchedConstants.has(name) && !used.has(name);
    g.initializer = g.initializer.filter((t) => !drop(t.name));
    g.input = g.input.filter((v) => !drop(v.name));
    g.node = g.node.filter((n) => !(n.opType === 'Constant' && n.domain === '' && n.output.length === 1 && drop(n.output[0])));
  }
}

/**
 * onnxruntime fuses Q/DQ into QLinearConv/QLinearMatMul, which need opset 10; in an opset-9 graph it
 * builds nodes that fail to load. Raise the default domain to 10, rewriting Slice-1 (attributes) as
 * Slice-10 (inputs); any other op that changed meaning at 10 stops the rewrite with E_OPSET.
 */
function raiseToOpset10(st: EmitState, opset: number): void {
  const blockers = opsetRaiseBlockers(st.model.proto, 10).filter((o) => o !== 'Slice');
  if (blockers.length) {
    throw new ModelError('E_OPSET', `opset ${opset} model: static quantization needs opset 10, and ${blockers.join(', ')} changed meaning at 10: expected a model qtool can raise to opset 10, got one it cannot (use --mode dynamic)`, { file: st.model.file });
  }
  let converted = 0;
  for (const ref of st.index.allNodes()) {
    const n = ref.node;
    if (n.opType !== 'Slice' || (n.domain !== '' && n.domain !== 'ai.onnx') || !getAttr(n, 'starts')) continue;
    const cc = st.cloneOf(n);
    const ints = (name: string) => getIntsAttr(n, name);
    const starts = ints('starts')!;
    const inputs = [cc.input[0]];
    for (const [k, v] of [['starts', starts], ['ends', ints('ends') ?? []], ['axes', ints('axes')]] as const) {
      if (!v) continue;
      inputs.push(st.addInitializer(ref.graph, `${n.name || 'Slice'}_${k}`, 'int64', [v.length], BigInt64Array.from(v.map((x) => BigInt(x)))));
    }
    cc.input = inputs;
    cc.attribute = cc.attribute.filter((a) => a.name !== 'starts' && a.name !== 'ends' && a.name !== 'axes');
    converted++;
  }
  st.minOpset = Math.max(st.minOpset, 10);
  st.notes.push(`opset ${opset} raised to 10 so onnxruntime's fused QLinear* kernels are valid${converted ? ` (${converted} Slice nodes rewritten from attributes to inputs)` : ''}`);
}

function finishOpsets(st: EmitState, opset: number): void {
  const proto = st.clone.proto;
  const isDefault = (o: { domain: string }) => o.domain === '' || o.domain === 'ai.onnx';
  if (proto.opsetImport.filter(isDefault).length > 1) {
    // Two imports of the default domain ('' and 'ai.onnx', or one twice): onnxruntime reads the last;
    // keep one import, at the first one's place, with that version, so no reader can pick another.
    const versions = proto.opsetImport.filter(isDefault).map((o) => Number(o.version));
    const first = proto.opsetImport.findIndex(isDefault);
    proto.opsetImport = proto.opsetImport.flatMap((o, i) => (!isDefault(o) ? [o] : i === first ? [create(OperatorSetIdProtoSchema, { domain: o.domain, version: BigInt(opset) })] : []));
    st.notes.push(`the model imported the default domain ${versions.length} times (versions ${versions.join(', ')}); kept one import, version ${opset} (the one onnxruntime uses)`);
  }
  if (st.minOpset > opset) {
    proto.opsetImport = proto.opsetImport.map((o) => (o.domain === '' || o.domain === 'ai.onnx' ? create(OperatorSetIdProtoSchema, { domain: o.domain, version: BigInt(st.minOpset) }) : o));
    if (st.minOpset >= 21) {
      if (proto.irVersion < 10n) proto.irVersion = 10n;
      st.notes.push(`default-domain opset raised from ${opset} to ${st.minOpset} for int4 DequantizeLinear (no existing op changes meaning between them)`);
    }
  }
  if (st.usedMsQdq && opset >= 13) {
    st.notes.push(`opset ${opset} cannot be raised to 21 (${opsetRaiseBlockers(st.model.proto, 21).join(', ')} changed meaning): int4 weights use com.microsoft DequantizeLinear, per output channel`);
  } else if (st.usedMsQdq) {
    st.notes.push(`opset ${opset} < 13: QuantizeLinear/DequantizeLinear emitted in the com.microsoft domain, which has per-axis scales, so the model's opset is unchanged`);
  }
  for (const [domain, version] of [...st.domains].sort()) {
    const existing = proto.opsetImport.find((o) => o.domain === domain);
    if (!existing) proto.opsetImport.push(create(OperatorSetIdProtoSchema, { domain, version: BigInt(version) }));
  }
}
