/**
 * Exact float folding before static quantization: a Conv (constant weight, optional constant bias)
 * whose output feeds only a BatchNormalization, a Mul by a constant or an Add of a constant — scalar or
 * one value per output channel — takes that op into its weight and bias. The model computes the same
 * function (up to float rounding), with one tensor fewer to quantize per folded op: quantizing a
 * conv's output, running a float scale/shift on it and quantizing again for the next layer rounds the
 * signal twice and leaves a float island between Q/DQ. onnxruntime's quantizer gets the same effect
 * from its pre-processing (ConvBNFusion, ConvMulFusion, ConvAddFusion). The input model is not changed.
 *
 * This is qtool's one conv-folding pass: the quantize door runs it on the input (every mode;
 * `--no-fold-batch-norm` turns it off) and applyPlan runs it in static mode for API callers
 * (`foldConvAffine: false` turns it off), where a model already folded comes back unchanged.
 * A BatchNormalization folds only in inference mode (one output, spatial, no training_mode).
 */
import { clone } from '@bufbuild/protobuf';
import { floatTensorProto, getAttr, getFloatAttr, getIntAttr, GraphIndex, makeNode, opsetVersion, NodeProtoSchema, tensorFromProto, walkGraphs, type GraphScope, type Model, type NodeProto, type TensorProto } from '../onnx/index.js';
import { toFloat32 } from '../tensor/index.js';

export interface FoldResult {
  model: Model;
  /**
   * Folded op names (or output names) per conv, in order. `input` is set for ops folded from the
   * input side: the conv now reads x where it read a·x + b (layer-input statistics of the input
   * model describe a·x + b). `scalarOnly`: no conv, two scalar Mul/Div collapsed or a Div made a Mul
   * (`conv` names the remaining op).
   */
  folded: { conv: string; ops: string[]; input?: { a: number; b: number }; scalarOnly?: true }[];
}

function isDefault(n: NodeProto): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}

/** Per-output-channel values of a constant broadcast against [N, C, …] (scalar, [C], [C,1,…] or [1,C,1,…]), or undefined. */
function perChannel(values: Float32Array, dims: readonly number[], channels: number, rank: number): Float32Array | undefined {
  if (values.length === 1) return new Float32Array(channels).fill(values[0]);
  if (values.length !== channels) return undefined;
  // The channel axis of the constant, right-aligned against a rank-`rank` output: it must be axis 1.
  const nonOne = dims.map((d, i) => [d, i] as const).filter(([d]) => d !== 1);
  if (nonOne.length !== 1) return undefined;
  const axisFromRight = dims.length - 1 - nonOne[0][1];
  return axisFromRight === rank - 2 ? values : undefined;
}

/** Fold BatchNormalization / Mul(const) / Add(const) consumers into Conv weights and biases (main graph). */
export function foldConvAffine(model: Model, index: GraphIndex = new GraphIndex(model.proto.graph!, model.file)): FoldResult {
  const src = model.proto.graph!;
  const folded: FoldResult['folded'] = [];
  const nodes = [...src.node];
  const scope: GraphScope = index.main;
  const drop = new Set<NodeProto>();
  const newInits: TensorProto[] = [];
  const constants = new Map<string, Float32Array>();
  const constant = (name: string | undefined): { data: Float32Array; dims: number[] } | undefined => {
    if (!name) return undefined;
    const t = index.constant(name, scope);
    if (!t || t.dataType !== 1) return undefined;
    let data = constants.get(name);
    if (!data) constants.set(name, (data = toFloat32(tensorFromProto(t, model))));
    return { data, dims: t.dims.map(Number) };
  };
  let counter = 0;
  // BatchNormalization before opset 9 has a `spatial` attribute; only spatial (per-channel) BN folds.
  const opset = opsetVersion(model.proto) ?? 1;
  for (const ref of [...index.allNodes()]) {
    const conv = ref.node;
    if (ref.graph !== scope || conv.opType !== 'Conv' || !isDefault(conv)) continue;
    const w = constant(conv.input[1]);
    if (!w || w.dims.length < 3) continue;
    const cout = w.dims[0];
    const rank = w.dims.length;
    let weight: Float32Array | undefined;
    let bias: Float32Array | undefined;
    const ops: string[] = [];
    let out = conv.output[0];
    let clipAfter: NodeProto | undefined;
    for (;;) {
      if (scope.outputs.has(out)) break;
      const cons = scope.consumers.get(out) ?? [];
      if (cons.length !== 1) break;
      const n = cons[0].node;
      if (!isDefault(n) || drop.has(n) || n.output.length < 1) break;
      let scale: Float32Array | undefined;
      let shift: Float32Array | undefined;
      if (n.opType === 'BatchNormalization' && n.input[0] === out && n.output.length === 1 && getIntAttr(n, 'training_mode', 0) === 0 && !(opset < 9 && getAttr(n, 'spatial') && getIntAttr(n, 'spatial', 1) !== 1)) {
        const [s, b, mean, v] = [1, 2, 3, 4].map((i) => constant(n.input[i]));
        if (!s || !b || !mean || !v || ![s, b, mean, v].every((t) => t.data.length === cout)) break;
        const eps = getFloatAttr(n, 'epsilon', 1e-5);
        scale = new Float32Array(cout);
        shift = new Float32Array(cout);
        for (let c = 0; c < cout; c++) {
          scale[c] = s.data[c] / Math.sqrt(v.data[c] + eps);
          shift[c] = b.data[c] - mean.data[c] * scale[c];
        }
      } else if (n.opType === 'HardSigmoid' && n.input[0] === out && n.output.length === 1) {
        // HardSigmoid(x) = Clip(αx + β, 0, 1): α, β go into the conv, a Clip(0, 1) stays (a uint8
        // QuantizeLinear of its output does the clamping, and x · HardSigmoid(…) becomes QLinearMul).
        const alpha = getFloatAttr(n, 'alpha', 0.2);
        const beta = getFloatAttr(n, 'beta', 0.5);
        if (!(Number.isFinite(alpha) && Number.isFinite(beta) && alpha !== 0)) break;
        scale = new Float32Array(cout).fill(alpha);
        shift = new Float32Array(cout).fill(beta);
        clipAfter = n;
      } else if ((n.opType === 'Mul' || n.opType === 'Add') && n.input.length === 2) {
        const other = n.input[0] === out ? n.input[1] : n.input[0];
        if (other === out) break;
        const k = constant(other);
        const vals = k ? perChannel(k.data, k.dims, cout, rank) : undefined;
        if (!k || !vals || k.dims.length > rank) break;
        if (n.opType === 'Mul') scale = vals;
        else shift = vals;
      } else break;
      weight ??= Float32Array.from(w.data);
      bias ??= conv.input[2] ? Float32Array.from(constant(conv.input[2])?.data ?? new Float32Array(cout)) : new Float32Array(cout);
      if (bias.length !== cout) break;
      if (scale) {
        const per = weight.length / cout;
        for (let c = 0; c < cout; c++) {
          for (let i = 0; i < per; i++) weight[c * per + i] *= scale[c];
          bias[c] *= scale[c];
        }
      }
      if (shift) for (let c = 0; c < cout; c++) bias[c] += shift[c];
      ops.push(n.name || n.output[0]);
      if (clipAfter) break;
      drop.add(n);
      out = n.output[0];
    }
    if (ops.length === 0 || !weight || !bias) continue;
    const base = `${conv.name || conv.output[0]}_folded${counter++}`;
    newInits.push(floatTensorProto(`${base}.weight`, w.dims, weight), floatTensorProto(`${base}.bias`, [cout], bias));
    const i = nodes.indexOf(conv);
    const replaced = clone(NodeProtoSchema, conv);
    replaced.input = [conv.input[0], `${base}.weight`, `${base}.bias`];
    replaced.output = [out];
    nodes[i] = replaced;
    if (clipAfter) {
      // The conv writes a new tensor (αx + β); the Clip keeps the HardSigmoid's output name.
      const pre = `${base}.preclip`;
      replaced.output = [pre];
      const opset = Number(model.proto.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 1);
      let clip: NodeProto;
      if (opset >= 11) {
        newInits.push(floatTensorProto(`${base}.min`, [], [0]), floatTensorProto(`${base}.max`, [], [1]));
        clip = makeNode({ opType: 'Clip', inputs: [pre, `${base}.min`, `${base}.max`], outputs: [clipAfter.output[0]], name: clipAfter.name, domain: clipAfter.domain });
      } else {
        clip = makeNode({ opType: 'Clip', inputs: [pre], outputs: [clipAfter.output[0]], name: clipAfter.name, domain: clipAfter.domain, attrs: { min: { float: 0 }, max: { float: 1 } } });
      }
      nodes[nodes.indexOf(clipAfter)] = clip;
    }
    folded.push({ conv: conv.name || conv.output[0], ops });
  }
  if (folded.length === 0) return foldConvInputs(model, index);
  // The replaced weights, biases and folded-op constants that nothing reads any more go too (initializers
  // or Constant nodes); everything else is kept as it was.
  const kept = nodes.filter((n) => !drop.has(n));
  const candidates = new Set<string>();
  for (const n of drop) for (const i of n.input) candidates.add(i);
  nodes.forEach((n, i) => {
    if (n !== src.node[i]) for (const x of src.node[i].input) candidates.add(x);
  });
  const used = new Set<string>();
  for (const n of kept) {
    for (const i of n.input) used.add(i);
    for (const a of n.attribute) for (const g of [...(a.g ? [a.g] : []), ...a.graphs]) for (const sg of walkGraphs(g)) for (const m of sg.node) for (const i of m.input) used.add(i);
  }
  for (const o of src.output) used.add(o.name);
  const dead = (name: string) => candidates.has(name) && !used.has(name);
  // Value infos of the tensors that no longer exist (a folded conv's old output, the folded ops' inner outputs).
  const gone = new Set<string>();
  for (const n of drop) for (const i of n.input) gone.add(i);
  for (const n of kept) for (const o of n.output) gone.delete(o);
  const graph = {
    ...src,
    node: kept.filter((n) => !(n.opType === 'Constant' && n.output.length === 1 && dead(n.output[0]))),
    initializer: [...src.initializer.filter((t) => !dead(t.name)), ...newInits],
    valueInfo: src.valueInfo.filter((v) => !gone.has(v.name)),
  };
  const out = foldConvInputs({ proto: { ...model.proto, graph }, file: model.file, baseDir: model.baseDir });
  return { model: out.model, folded: [...folded, ...out.folded] };
}

/** Does the Conv read no padding (every output position sees only real input values)? */
function hasNoPadding(conv: NodeProto): boolean {
  const autoPad = conv.attribute.find((a) => a.name === 'auto_pad');
  const mode = autoPad ? new TextDecoder().decode(autoPad.s) : 'NOTSET';
  if (mode === 'VALID') return true;
  if (mode !== 'NOTSET' && mode !== '') return false;
  const pads = conv.attribute.find((a) => a.name === 'pads');
  return !pads || pads.ints.every((v) => Number(v) === 0);
}

/**
 * Input-side folding (exact in float): scalar Mul/Div by constants, and scalar Add/Sub of constants
 * when the Conv reads no padding, between a tensor and the Conv that alone reads their output go into
 * the Conv's weight and bias: conv(a·x + b) = conv_{W·a}(x) + b·ΣW. A scale commutes with zero
 * padding, a shift does not, so a shift before a padded Conv stops the walk. Two scalar Mul/Div in a
 * row that the Conv cannot take collapse into one (x·c/6 as one Mul by c/6). The hard-swish of
 * MobileNet-style exports (x·Clip(x+3, 0, 6)/6, then a learnable scale and shift) thus reaches the
 * next Conv with its /6 and affine folded away, so fewer float ops sit between Q/DQ. Every remaining
 * tensor is a tensor of the input model with the same values (the calibration reads them there).
 */
export function foldConvInputs(model: Model, given?: GraphIndex): FoldResult {
  const src = model.proto.graph!;
  const index = given ?? new GraphIndex(src, model.file);
  const scope: GraphScope = index.main;
  const scalarOf = (name: string | undefined): number | undefined => {
    if (!name) return undefined;
    const t = index.constant(name, scope);
    if (!t || t.dataType !== 1) return undefined;
    const v = toFloat32(tensorFromProto(t, model));
    return v.length === 1 && Number.isFinite(v[0]) ? v[0] : undefined;
  };
  /** t = a·x + b for a scalar Mul/Div/Add/Sub producer of t, with x its non-constant input. */
  const affineOf = (n: NodeProto): { x: string; a: number; b: number } | undefined => {
    if (!isDefault(n) || n.input.length !== 2 || n.output.length !== 1) return undefined;
    const [p, q] = n.input;
    const kq = scalarOf(q);
    const kp = scalarOf(p);
    switch (n.opType) {
      case 'Mul':
        if (kq !== undefined && kp === undefined) return { x: p, a: kq, b: 0 };
        if (kp !== undefined && kq === undefined) return { x: q, a: kp, b: 0 };
        return undefined;
      case 'Div':
        return kq !== undefined && kp === undefined && kq !== 0 ? { x: p, a: 1 / kq, b: 0 } : undefined;
      case 'Add':
        if (kq !== undefined && kp === undefined) return { x: p, a: 1, b: kq };
        if (kp !== undefined && kq === undefined) return { x: q, a: 1, b: kp };
        return undefined;
      case 'Sub':
        return kq !== undefined && kp === undefined ? { x: p, a: 1, b: -kq } : undefined;
      default:
        return undefined;
    }
  };
  const soleReader = (t: string, reader: NodeProto): boolean => {
    if (scope.outputs.has(t)) return false;
    const cons = scope.consumers.get(t) ?? [];
    return cons.length === 1 && cons[0].node === reader && reader.input.filter((i) => i === t).length === 1;
  };
  const folded: FoldResult['folded'] = [];
  const drop = new Set<NodeProto>();
  const replace = new Map<NodeProto, NodeProto>();
  const newInits: TensorProto[] = [];
  let counter = 0;
  for (const ref of scope.topoOrder) {
    const conv = ref.node;
    if (conv.opType !== 'Conv' || !isDefault(conv)) continue;
    const wt = index.constant(conv.input[1], scope);
    if (!wt || wt.dataType !== 1 || wt.dims.length < 3) continue;
    const padless = hasNoPadding(conv);
    // conv input = A·x + B, walking back from the conv's input through sole-reader scalar ops.
    let A = 1;
    let B = 0;
    let x = conv.input[0];
    let reader: NodeProto = conv;
    const ops: NodeProto[] = [];
    for (;;) {
      const p = scope.producers.get(x)?.node;
      if (!p || drop.has(p) || replace.has(p) || !soleReader(x, reader)) break;
      const f = affineOf(p);
      if (!f) break;
      const nA = A * f.a;
      const nB = A * f.b + B;
      if (nB !== 0 && !padless) break;
      if (!(Number.isFinite(nA) && nA !== 0 && Number.isFinite(nB))) break;
      [A, B] = [nA, nB];
      ops.push(p);
      reader = p;
      x = f.x;
    }
    if (ops.length > 0) {
      const w = toFloat32(tensorFromProto(wt, model));
      const dims = wt.dims.map(Number);
      const cout = dims[0];
      const per = w.length / cout;
      const bt = conv.input[2] ? index.constant(conv.input[2], scope) : undefined;
      if (conv.input[2] && (!bt || bt.dataType !== 1)) continue;
      const bias = bt ? Float32Array.from(toFloat32(tensorFromProto(bt, model))) : new Float32Array(cout);
      if (bias.length !== cout) continue;
      const weight = new Float32Array(w.length);
      for (let c = 0; c < cout; c++) {
        let sum = 0;
        for (let i = c * per; i < (c + 1) * per; i++) {
          sum += w[i];
          weight[i] = w[i] * A;
        }
        bias[c] += B * sum;
      }
      const base = `${conv.name || conv.output[0]}_infolded${counter++}`;
      newInits.push(floatTensorProto(`${base}.weight`, dims, weight), floatTensorProto(`${base}.bias`, [cout], bias));
      const next = clone(NodeProtoSchema, conv);
      next.input = [x, `${base}.weight`, `${base}.bias`];
      replace.set(conv, next);
      for (const o of ops) drop.add(o);
      folded.push({ conv: conv.name || conv.output[0], ops: ops.map((o) => o.name || o.output[0]), input: { a: A, b: B } });
    }
  }
  // Two scalar Mul/Div in a row, the second the first's sole reader: one Mul by the product.
  for (const ref of scope.topoOrder) {
    const n = ref.node;
    if (drop.has(n) || replace.has(n) || (n.opType !== 'Mul' && n.opType !== 'Div')) continue;
    const f = affineOf(n);
    if (!f || f.b !== 0) continue;
    const p = scope.producers.get(f.x)?.node;
    if (!p || drop.has(p) || replace.has(p) || (p.opType !== 'Mul' && p.opType !== 'Div') || !soleReader(f.x, n)) continue;
    const g = affineOf(p);
    if (!g || g.b !== 0) continue;
    const k = Math.fround(f.a * g.a);
    if (!(Number.isFinite(k) && k !== 0)) continue;
    const name = `${n.name || n.output[0]}_collapsed${counter++}`;
    newInits.push(floatTensorProto(name, [], [k]));
    const next = clone(NodeProtoSchema, n);
    next.opType = 'Mul';
    next.input = [g.x, name];
    replace.set(n, next);
    drop.add(p);
    folded.push({ conv: n.name || n.output[0], ops: [p.name || p.output[0]], scalarOnly: true });
  }
  // A Div by a scalar left over: a Mul by its reciprocal (QLinearMul exists, QLinearDiv does not).
  for (const ref of scope.topoOrder) {
    const n = ref.node;
    if (drop.has(n) || replace.has(n) || n.opType !== 'Div' || !isDefault(n)) continue;
    const f = affineOf(n);
    if (!f || f.b !== 0) continue;
    const k = Math.fround(f.a);
    if (!(Number.isFinite(k) && k !== 0) || Math.fround(1 / k) !== scalarOf(n.input[1])) continue;
    const name = `${n.name || n.output[0]}_reciprocal${counter++}`;
    newInits.push(floatTensorProto(name, [], [k]));
    const next = clone(NodeProtoSchema, n);
    next.opType = 'Mul';
    next.input = [f.x, name];
    replace.set(n, next);
    folded.push({ conv: n.name || n.output[0], ops: [], scalarOnly: true });
  }
  if (folded.length === 0) return { model, folded };
  const kept = src.node.filter((n) => !drop.has(n)).map((n) => replace.get(n) ?? n);
  const candidates = new Set<string>();
  for (const n of drop) for (const i of n.input) candidates.add(i);
  for (const n of replace.keys()) for (const i of n.input) candidates.add(i);
  const used = new Set<string>();
  for (const n of kept) {
    for (const i of n.input) used.add(i);
    for (const a of n.attribute) for (const g of [...(a.g ? [a.g] : []), ...a.graphs]) for (const sg of walkGraphs(g)) for (const m of sg.node) for (const i of m.input) used.add(i);
  }
  for (const o of src.output) used.add(o.name);
  const dead = (name: string) => candidates.has(name) && !used.has(name);
  const graph = {
    ...src,
    node: kept.filter((n) => !(n.opType === 'Constant' && n.output.length === 1 && dead(n.output[0]))),
    initializer: [...src.initializer.filter((t) => !dead(t.name)), ...newInits],
  };
  return { model: { proto: { ...model.proto, graph }, file: model.file, baseDir: model.baseDir }, folded };
}
