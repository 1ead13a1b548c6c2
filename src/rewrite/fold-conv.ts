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
import { floatTensorProto, getAttr, getFloatAttr, getIntAttr, GraphIndex, opsetVersion, NodeProtoSchema, tensorFromProto, walkGraphs, type GraphScope, type Model, type NodeProto, type TensorProto } from '../onnx/index.js';
import { toFloat32 } from '../tensor/index.js';

export interface FoldResult {
  model: Model;
  /** Folded op names (or output names) per conv, in order. */
  folded: { conv: string; ops: string[] }[];
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
      drop.add(n);
      ops.push(n.name || n.output[0]);
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
    folded.push({ conv: conv.name || conv.output[0], ops });
  }
  if (folded.length === 0) return { model, folded };
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
  return { model: { proto: { ...model.proto, graph }, file: model.file, baseDir: model.baseDir }, folded };
}
