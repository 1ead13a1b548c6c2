/**
 * The calibration copy of a model: every tensor to observe becomes a graph output. The copy shares
 * nodes and weights with the original (only the graph's output list is new); the original is untouched.
 */
import { create } from '@bufbuild/protobuf';
import { InputError } from '../errors.js';
import { GraphIndex, ValueInfoProtoSchema, type Model } from '../onnx/index.js';
import { dtypeFromOnnx } from '../tensor/index.js';

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
  const index = new GraphIndex(model.proto.graph!, model.file);
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
