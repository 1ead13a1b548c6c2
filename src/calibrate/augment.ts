/**
 * The calibration copy of a model: every tensor to observe becomes a graph output. The copy shares
 * nodes and weights with the original (only the graph's output list is new); the original is untouched.
 */
import { create } from '@bufbuild/protobuf';
import { InputError } from '../errors.js';
import { GraphIndex, NameAllocator, ValueInfoProtoSchema, makeNode, tensorToProto, type Model } from '../onnx/index.js';
import { dtypeFromOnnx, makeTensor, type DType } from '../tensor/index.js';

const FLOAT_TYPES = new Set(['float32', 'float16', 'float64', 'bfloat16']);

/** Whether a value is declared float, declared something else, or undeclared (decided at run time). */
function declaredFloat(index: GraphIndex, name: string): boolean | undefined {
  const v = index.valueInfo(name);
  const tt = v?.type?.value.case === 'tensorType' ? v.type.value.value : undefined;
  if (!tt || !tt.elemType) return undefined;
  const dt = dtypeFromOnnx(tt.elemType);
  return dt !== undefined && FLOAT_TYPES.has(dt);
}

/**
 * The tensors calibration observes, in topological order: the main graph's runtime (non-constant)
 * inputs, then every non-constant input or output of a main-graph node. Values declared non-float are
 * left out; undeclared ones are kept and filtered by dtype when they come back from onnxruntime.
 * `only` restricts the list (every name must exist).
 */
export function calibrationTensors(model: Model, only?: readonly string[]): string[] {
  const index = GraphIndex.of(model);
  const main = index.main;
  const seen = new Set<string>();
  const out: string[] = [];
  const consider = (name: string) => {
    if (!name || seen.has(name)) return;
    seen.add(name);
    if (index.isConstant(name)) return;
    if (declaredFloat(index, name) === false) return;
    out.push(name);
  };
  for (const v of main.graph.input) if (!main.initializers.has(v.name)) consider(v.name);
  for (const ref of main.topoOrder) {
    for (const i of ref.node.input) consider(i);
    for (const o of ref.node.output) consider(o);
  }
  if (!only) return out;
  const available = new Set(out);
  for (const name of only) {
    if (!available.has(name)) {
      const why = seen.has(name) ? 'is a constant or not a float tensor' : 'is not a tensor of the main graph';
      throw new InputError('E_TENSOR_UNKNOWN', `tensor "${name}" ${why}: expected a float activation to calibrate`, { file: model.file });
    }
  }
  const wanted = new Set(only);
  return out.filter((n) => wanted.has(n));
}

/** A copy of `model` whose graph also outputs `tensors` (graph inputs and existing outputs are skipped). */
export function withOutputs(model: Model, tensors: readonly string[]): Model {
  const graph = model.proto.graph!;
  const present = new Set([...graph.output.map((o) => o.name), ...graph.input.map((i) => i.name)]);
  const extra = tensors.filter((t) => !present.has(t)).map((name) => create(ValueInfoProtoSchema, { name }));
  const newGraph = { ...graph, output: [...graph.output, ...extra] };
  return { ...model, proto: { ...model.proto, graph: newGraph } };
}

/** Ops whose every output has the element type of their first input (ONNX type constraints). */
const SAME_TYPE_OPS = new Set([
  'Abs', 'Add', 'AveragePool', 'BatchNormalization', 'Ceil', 'Celu', 'Clip', 'Concat', 'Conv', 'ConvTranspose', 'Cos', 'CumSum',
  'DepthToSpace', 'Div', 'Elu', 'Erf', 'Exp', 'Expand', 'Flatten', 'Floor', 'Gather', 'GatherElements', 'GatherND', 'Gelu', 'Gemm',
  'GlobalAveragePool', 'GlobalMaxPool', 'HardSigmoid', 'HardSwish', 'Identity', 'InstanceNormalization', 'LRN', 'LeakyRelu', 'Log',
  'LogSoftmax', 'MatMul', 'Max', 'Mean', 'Min', 'Mish', 'Mul', 'Neg', 'PRelu', 'Pad', 'Pow', 'Reciprocal', 'ReduceL2', 'ReduceMax',
  'ReduceMean', 'ReduceMin', 'ReduceProd', 'ReduceSum', 'ReduceSumSquare', 'Relu', 'Reshape', 'Resize', 'Round', 'Selu', 'Sigmoid',
  'Sign', 'Sin', 'Slice', 'Softmax', 'Softplus', 'Softsign', 'SpaceToDepth', 'Split', 'Sqrt', 'Squeeze', 'Sub', 'Sum', 'Tanh', 'Tile',
  'Transpose', 'Trilu', 'Unsqueeze', 'Upsample',
]);
/** Ops with outputs of the first input's type only at the listed positions (the others are indices or masks). */
const FIRST_OUTPUT_SAME_TYPE = new Set(['MaxPool', 'TopK', 'Dropout', 'LayerNormalization']);

/**
 * The element type of every main-graph value, as far as it follows from declarations, constants and a
 * conservative per-op table; values it cannot decide are left out (callers fall back to fetching them).
 */
export function inferDTypes(index: GraphIndex): Map<string, DType> {
  const main = index.main;
  const types = new Map<string, DType>();
  const typeOf = (name: string): DType | undefined => {
    const known = types.get(name);
    if (known) return known;
    const c = index.constant(name);
    if (c) return dtypeFromOnnx(c.dataType);
    const v = index.valueInfo(name);
    const tt = v?.type?.value.case === 'tensorType' ? v.type.value.value : undefined;
    return tt?.elemType ? dtypeFromOnnx(tt.elemType) : undefined;
  };
  for (const v of main.graph.input) {
    const t = typeOf(v.name);
    if (t) types.set(v.name, t);
  }
  for (const ref of main.topoOrder) {
    const n = ref.node;
    const isOnnx = n.domain === '' || n.domain === 'ai.onnx';
    n.output.forEach((o, i) => {
      if (!o) return;
      let t = typeOf(o);
      if (!t && isOnnx) {
        if (SAME_TYPE_OPS.has(n.opType) || (i === 0 && FIRST_OUTPUT_SAME_TYPE.has(n.opType))) t = n.input[0] ? typeOf(n.input[0]) : undefined;
        else if (n.opType === 'Where') t = typeOf(n.input[1]);
        else if (n.opType === 'Cast') {
          const to = n.attribute.find((a) => a.name === 'to');
          t = to ? dtypeFromOnnx(Number(to.i)) : undefined;
        }
      }
      if (t) types.set(o, t);
    });
  }
  return types;
}

/** The graph outputs of withReductions: one float32 [N] (or int64 [N] for counts) vector per statistic, element i for tensor i. */
export interface ReductionOutputs {
  readonly tensors: readonly string[];
  readonly count: string;
  readonly min: string;
  readonly max: string;
  readonly sumSquares: string;
}

/**
 * A copy of `model` that computes, for each of `tensors` (float32 values of the main graph), its element
 * count, min, max and sum of squares inside the graph: x → Reshape([-1]) → Shape / ReduceMin / ReduceMax /
 * ReduceSumSquare (keepdims 1, so every result is [1]) → one Concat per statistic. Four small graph
 * outputs replace fetching every tensor. The reductions run in float32 (ORT accumulates the sum of
 * squares in float32). No `axes` is given, so the nodes mean "all axes" in every opset (≥ 5 for Reshape).
 */
export function withReductions(model: Model, tensors: readonly string[]): { model: Model; outputs: ReductionOutputs } {
  const graph = model.proto.graph!;
  const names = new NameAllocator(graph);
  const flatShape = names.allocate('qtool_calib_flat_shape');
  const nodes = [...graph.node];
  const parts = { count: [] as string[], min: [] as string[], max: [] as string[], sumSquares: [] as string[] };
  const ops = { count: 'Shape', min: 'ReduceMin', max: 'ReduceMax', sumSquares: 'ReduceSumSquare' } as const;
  for (const t of tensors) {
    const flat = names.allocate(`${t}_qtool_flat`);
    nodes.push(makeNode({ opType: 'Reshape', inputs: [t, flatShape], outputs: [flat], name: names.allocate(`${t}_qtool_flatten`) }));
    for (const stat of ['count', 'min', 'max', 'sumSquares'] as const) {
      const out = names.allocate(`${t}_qtool_${stat}`);
      const attrs = stat === 'count' ? undefined : { keepdims: 1 };
      nodes.push(makeNode({ opType: ops[stat], inputs: [flat], outputs: [out], name: out, attrs }));
      parts[stat].push(out);
    }
  }
  const outputs = { tensors, count: '', min: '', max: '', sumSquares: '' };
  for (const stat of ['count', 'min', 'max', 'sumSquares'] as const) {
    const out = names.allocate(`qtool_calib_${stat}`);
    nodes.push(makeNode({ opType: 'Concat', inputs: parts[stat], outputs: [out], name: out, attrs: { axis: 0 } }));
    outputs[stat] = out;
  }
  const newGraph = {
    ...graph,
    node: nodes,
    initializer: [...graph.initializer, tensorToProto(flatShape, makeTensor('int64', [1], BigInt64Array.of(-1n)))],
    output: [...graph.output, ...(['count', 'min', 'max', 'sumSquares'] as const).map((s) => create(ValueInfoProtoSchema, { name: outputs[s] }))],
  };
  return { model: { ...model, proto: { ...model.proto, graph: newGraph } }, outputs };
}
