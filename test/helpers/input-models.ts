/** One-node Identity models with the inputs a data test needs (no file on disk). */
import { makeGraph, makeModel, makeNode, makeValueInfo, type Model, type TensorProto } from '../../src/onnx/index.js';
import type { DType } from '../../src/tensor/index.js';

export interface InputDecl {
  name: string;
  dtype: DType;
  dims: (number | string | null)[];
}

/** Each input passes through an Identity to an output `<name>_out`; `extra` nodes/initializers are appended. */
export function identityModel(inputs: readonly InputDecl[], extra: { nodes?: ReturnType<typeof makeNode>[]; initializers?: TensorProto[]; file?: string } = {}): Model {
  const graph = makeGraph({
    name: 'inputs',
    nodes: [...inputs.map((i) => makeNode({ opType: 'Identity', inputs: [i.name], outputs: [`${i.name}_out`] })), ...(extra.nodes ?? [])],
    inputs: inputs.map((i) => makeValueInfo(i.name, i.dtype, i.dims)),
    outputs: inputs.map((i) => makeValueInfo(`${i.name}_out`, i.dtype, i.dims)),
    initializers: extra.initializers,
  });
  return { proto: makeModel({ graph, opsets: { '': 17 } }), file: extra.file ?? 'inputs.onnx', baseDir: '.' };
}
