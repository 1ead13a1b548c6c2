import { GraphIndex, NameAllocator, getAttr, getFloatAttr, getIntAttr, makeNode, opsetVersion, tensorFromProto, tensorToProto, type Model, type NodeProto, type TensorProto } from '../onnx/index.js';
import { makeTensor } from '../tensor/index.js';

export interface FoldedBatchNorm {
  conv: string;
  batchNorm: string;
}

export interface FoldBatchNormResult {
  /** The model with each foldable Conv → BatchNormalization pair as one Conv (the input model untouched). */
  model: Model;
  folded: FoldedBatchNorm[];
}

/**
 * Fold inference-mode BatchNormalization into the Conv that feeds it (main graph):
 * W'[m] = W[m]·s[m], b'[m] = (b[m] − mean[m])·s[m] + beta[m], s = scale/√(var + ε), computed in
 * float64 and stored as float32 — what onnxruntime's ConvBNFusion does to the float graph at load.
 * Done before quantizing, the BN no longer sits as a float island between the quantized Conv and its
 * consumer (PaddleOCR's classifier has 35). The folded Conv keeps the BN's output name, so ranges,
 * consumers and graph outputs are unchanged; weights nothing else reads are dropped.
 * A pair is folded only when the Conv's output feeds the BN alone, every parameter is a float32
 * constant, and the BN is in inference mode (one output, spatial, no training_mode).
 */
export function foldBatchNorms(model: Model): FoldBatchNormResult {
  const graph = model.proto.graph!;
  const index = new GraphIndex(graph, model.file);
  const main = index.main;
  const names = new NameAllocator(graph);
  const opset = opsetVersion(model.proto) ?? 1;
  const replace = new Map<NodeProto, NodeProto>();
  const drop = new Set<NodeProto>();
  const added: TensorProto[] = [];
  const folded: FoldedBatchNorm[] = [];
  const f32 = (name: string): Float32Array | undefined => {
    const t = name ? index.constant(name) : undefined;
    if (!t || t.dataType !== 1) return undefined;
    return tensorFromProto(t, model).data as Float32Array;
  };
  for (const ref of main.topoOrder) {
    const bn = ref.node;
    if (bn.opType !== 'BatchNormalization' || (bn.domain !== '' && bn.domain !== 'ai.onnx')) continue;
    if (bn.output.filter(Boolean).length !== 1 || getIntAttr(bn, 'training_mode', 0) !== 0) continue;
    if (opset < 9 && getAttr(bn, 'spatial') && getIntAttr(bn, 'spatial', 1) !== 1) continue;
    const x = bn.input[0];
    const conv = main.producers.get(x)?.node;
    if (!conv || conv.opType !== 'Conv' || (conv.domain !== '' && conv.domain !== 'ai.onnx') || replace.has(conv)) continue;
    if ((main.consumers.get(x) ?? []).length !== 1 || main.outputs.has(x)) continue;
    const wProto = index.constant(conv.input[1]);
    const w = f32(conv.input[1]);
    const [scale, beta, mean, variance] = bn.input.slice(1, 5).map(f32);
    if (!wProto || !w || !scale || !beta || !mean || !variance) continue;
    const m = Number(wProto.dims[0]);
    if (!(m > 0) || w.length % m !== 0 || [scale, beta, mean, variance].some((p) => p.length !== m)) continue;
    const bias = conv.input[2] ? f32(conv.input[2]) : new Float32Array(m);
    if (!bias || bias.length !== m) continue;
    const eps = getFloatAttr(bn, 'epsilon', 1e-5);
    const per = w.length / m;
    const w2 = new Float32Array(w.length);
    const b2 = new Float32Array(m);
    for (let c = 0; c < m; c++) {
      const s = scale[c] / Math.sqrt(variance[c] + eps);
      for (let k = c * per; k < (c + 1) * per; k++) w2[k] = w[k] * s;
      b2[c] = (bias[c] - mean[c]) * s + beta[c];
    }
    const wName = names.allocate(`${conv.input[1]}_bnfold`);
    const bName = names.allocate(`${conv.input[2] || conv.input[1]}_bnfold_bias`);
    added.push(tensorToProto(wName, makeTensor('float32', wProto.dims.map(Number), w2)), tensorToProto(bName, makeTensor('float32', [m], b2)));
    const next = makeNode({ opType: 'Conv', inputs: [conv.input[0], wName, bName], outputs: [bn.output[0]], name: conv.name, domain: conv.domain });
    next.attribute = conv.attribute;
    next.metadataProps = conv.metadataProps;
    next.docString = conv.docString;
    replace.set(conv, next);
    drop.add(bn);
    folded.push({ conv: conv.name || conv.output[0], batchNorm: bn.name || bn.output[0] });
  }
  if (folded.length === 0) return { model, folded };
  const kept = graph.node.filter((n) => !drop.has(n)).map((n) => replace.get(n) ?? n);
  // Weights and BN parameters nothing reads any more (initializers or Constant nodes) go.
  const read = new Set<string>(graph.output.map((o) => o.name));
  const readBy = (ns: readonly NodeProto[]): void => {
    for (const n of ns) {
      for (const i of n.input) read.add(i);
      for (const a of n.attribute) for (const g of [...(a.g ? [a.g] : []), ...a.graphs]) readBy(g.node);
    }
  };
  readBy(kept);
  const dropped = new Set<string>();
  for (const conv of replace.keys()) for (const i of conv.input.slice(1)) if (i && !read.has(i)) dropped.add(i);
  for (const bn of drop) for (const i of bn.input.slice(1)) if (i && !read.has(i)) dropped.add(i);
  const nodes = kept.filter((n) => !(n.opType === 'Constant' && n.output.length === 1 && dropped.has(n.output[0])));
  const initializer = [...graph.initializer.filter((t) => !dropped.has(t.name)), ...added];
  const gone = new Set([...replace.keys()].map((c) => c.output[0]));
  const valueInfo = graph.valueInfo.filter((v) => !gone.has(v.name));
  const newGraph = Object.assign(Object.create(Object.getPrototypeOf(graph) as object) as typeof graph, graph, { node: nodes, initializer, valueInfo });
  const proto = Object.assign(Object.create(Object.getPrototypeOf(model.proto) as object) as typeof model.proto, model.proto, { graph: newGraph });
  return { model: { ...model, proto }, folded };
}
