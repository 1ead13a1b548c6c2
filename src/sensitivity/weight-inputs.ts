import {
  getIntAttr,
  makeValueInfo,
  tensorFromProto,
  type GraphIndex,
  type GraphProto,
  type Model,
  type NodeProto,
  type QuantizableLayer,
} from '../onnx/index.js';
import { weightAxes, type WeightAxes } from '../quant/index.js';
import { toFloat32 } from '../tensor/index.js';

/** A layer whose weight has become a graph input of the weights-as-inputs model. */
export interface WeightInputLayer {
  readonly layer: QuantizableLayer;
  /** Graph input name (the original weight value name). */
  readonly input: string;
  readonly dims: readonly number[];
  /** The float weight W₀. */
  readonly w0: Float32Array;
  readonly axes: WeightAxes;
  /** The activation feeding the layer, added as a graph output (main-graph layers only). */
  readonly activation?: string;
}

export interface WeightInputsModel {
  readonly model: Model;
  readonly layers: readonly WeightInputLayer[];
  /** Outputs of the original model, in order. */
  readonly outputs: readonly string[];
}

/**
 * A copy of the model in which every selected layer's float32 weight (an initializer or the output
 * of a Constant node, in any graph) is a main-graph input instead, so that one onnxruntime session
 * serves every perturbation: swap one layer's array per run, feed the others unchanged.
 * With `activationOutputs`, each main-graph layer's activation input is also a graph output
 * (the float reference pass reads the layer-wise statistics from it).
 * Graphs are copied shallowly; tensor bytes are shared with the source model.
 */
export function weightsAsInputs(model: Model, index: GraphIndex, layers: readonly QuantizableLayer[], opts: { activationOutputs?: boolean } = {}): WeightInputsModel {
  const picked: WeightInputLayer[] = [];
  const seen = new Set<string>();
  for (const layer of layers) {
    if (seen.has(layer.weight)) continue;
    const proto = index.constant(layer.weight, layer.scope);
    if (!proto || proto.dataType !== 1) continue; // float32 weights only
    seen.add(layer.weight);
    const t = tensorFromProto(proto, model);
    const dims = t.dims.map(Number);
    const transB = layer.opType === 'Gemm' ? getIntAttr(layer.node, 'transB', 0) : 0;
    const activation = layer.scope.path === 'main' ? layer.node.input[layer.kind.activationInput] : undefined;
    picked.push({ layer, input: layer.weight, dims, w0: toFloat32(t), axes: weightAxes(layer.opType, dims.length, transB), activation: activation || undefined });
  }
  const targets = new Set(picked.map((p) => p.input));
  const graph = model.proto.graph!;
  const copy = copyGraph(graph, targets);
  const declared = new Set(graph.input.map((v) => v.name));
  copy.input = [...copy.input, ...picked.filter((p) => !declared.has(p.input)).map((p) => makeValueInfo(p.input, 'float32', p.dims))];
  if (opts.activationOutputs) {
    const outs = new Set(graph.output.map((v) => v.name));
    const extra: string[] = [];
    for (const p of picked) if (p.activation && !outs.has(p.activation) && !extra.includes(p.activation)) extra.push(p.activation);
    copy.output = [...copy.output, ...extra.map((name) => makeValueInfo(name, 'float32'))];
  }
  return {
    model: { proto: { ...model.proto, graph: copy }, file: model.file, baseDir: model.baseDir },
    layers: picked,
    outputs: graph.output.map((v) => v.name),
  };
}

function copyGraph(g: GraphProto, targets: ReadonlySet<string>): GraphProto {
  const isTargetConstant = (n: NodeProto) => n.opType === 'Constant' && (n.domain === '' || n.domain === 'ai.onnx') && targets.has(n.output[0]);
  return {
    ...g,
    initializer: g.initializer.filter((t) => !targets.has(t.name)),
    node: g.node
      .filter((n) => !isTargetConstant(n))
      .map((n) =>
        n.attribute.some((a) => a.g || a.graphs.length)
          ? { ...n, attribute: n.attribute.map((a) => (a.g || a.graphs.length ? { ...a, g: a.g && copyGraph(a.g, targets), graphs: a.graphs.map((s) => copyGraph(s, targets)) } : a)) }
          : n,
      ),
  };
}
