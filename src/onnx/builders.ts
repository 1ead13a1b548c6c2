import { create } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema,
  AttributeType,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorShapeProtoSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js';
import { DTYPES, type DType } from '../tensor/index.js';

export type AttrValue =
  | number
  | bigint
  | string
  | number[]
  | bigint[]
  | string[]
  | TensorProto
  | GraphProto
  | { float: number }
  | { floats: number[] }
  | { ints: number[] };

/**
 * Build an attribute; plain JS numbers that are integers become INT, others FLOAT.
 * Use {float} for a FLOAT attribute with an integral value (Gemm alpha 1.0), {floats}/{ints} to force lists.
 */
export function attr(name: string, value: AttrValue): AttributeProto {
  const a = create(AttributeProtoSchema, { name });
  if (typeof value === 'bigint') {
    a.type = AttributeType.INT;
    a.i = value;
  } else if (typeof value === 'number') {
    if (Number.isInteger(value)) {
      a.type = AttributeType.INT;
      a.i = BigInt(value);
    } else {
      a.type = AttributeType.FLOAT;
      a.f = value;
    }
  } else if (typeof value === 'string') {
    a.type = AttributeType.STRING;
    a.s = new TextEncoder().encode(value) as Uint8Array<ArrayBuffer>;
  } else if (Array.isArray(value)) {
    if (value.length > 0 && typeof value[0] === 'string') {
      a.type = AttributeType.STRINGS;
      a.strings = (value as string[]).map((s) => new TextEncoder().encode(s) as Uint8Array<ArrayBuffer>);
    } else if (value.every((v) => typeof v === 'bigint' || Number.isInteger(v))) {
      a.type = AttributeType.INTS;
      a.ints = (value as (number | bigint)[]).map((v) => BigInt(v));
    } else {
      a.type = AttributeType.FLOATS;
      a.floats = value as number[];
    }
  } else if ('float' in value) {
    a.type = AttributeType.FLOAT;
    a.f = value.float;
  } else if ('floats' in value) {
    a.type = AttributeType.FLOATS;
    a.floats = value.floats;
  } else if ('ints' in value) {
    a.type = AttributeType.INTS;
    a.ints = value.ints.map((v) => BigInt(v));
  } else if (value.$typeName === 'onnx.TensorProto') {
    a.type = AttributeType.TENSOR;
    a.t = value as TensorProto;
  } else {
    a.type = AttributeType.GRAPH;
    a.g = value as GraphProto;
  }
  return a;
}

export interface NodeSpec {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  domain?: string;
  attrs?: Readonly<Record<string, AttrValue>>;
  /** Provenance entries written to node metadata_props (e.g. qtool.origin). */
  metadata?: Readonly<Record<string, string>>;
}

export function makeNode(spec: NodeSpec): NodeProto {
  return create(NodeProtoSchema, {
    opType: spec.opType,
    input: [...spec.inputs],
    output: [...spec.outputs],
    name: spec.name ?? '',
    domain: spec.domain ?? '',
    attribute: Object.entries(spec.attrs ?? {}).map(([k, v]) => attr(k, v)),
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value })),
  });
}

/** Tensor value info; a dim is a number, a symbolic name, or null (unknown). */
export function makeValueInfo(name: string, dtype: DType, dims?: readonly (number | string | null)[]): ValueInfoProto {
  const shape = dims
    ? create(TensorShapeProtoSchema, {
        dim: dims.map((d) =>
          typeof d === 'number' ? { value: { case: 'dimValue' as const, value: BigInt(d) } } : typeof d === 'string' ? { value: { case: 'dimParam' as const, value: d } } : {},
        ),
      })
    : undefined;
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: 'tensorType', value: { elemType: DTYPES[dtype].onnx, shape } } }),
  });
}

export interface GraphSpec {
  name: string;
  nodes: NodeProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  initializers?: TensorProto[];
  valueInfo?: ValueInfoProto[];
}

export function makeGraph(spec: GraphSpec): GraphProto {
  return create(GraphProtoSchema, {
    name: spec.name,
    node: spec.nodes,
    input: spec.inputs,
    output: spec.outputs,
    initializer: spec.initializers ?? [],
    valueInfo: spec.valueInfo ?? [],
  });
}

export interface ModelSpec {
  graph: GraphProto;
  opsets: Readonly<Record<string, number>>;
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  metadata?: Readonly<Record<string, string>>;
}

export function makeModel(spec: ModelSpec): ModelProto {
  return create(ModelProtoSchema, {
    irVersion: BigInt(spec.irVersion ?? 8),
    producerName: spec.producerName ?? 'qtool',
    producerVersion: spec.producerVersion ?? '',
    graph: spec.graph,
    opsetImport: Object.entries(spec.opsets).map(([domain, version]) => create(OperatorSetIdProtoSchema, { domain, version: BigInt(version) })),
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value })),
  });
}

/**
 * Opset version imported for a domain ('' = ai.onnx), or undefined. A model that imports a domain
 * twice ('' and 'ai.onnx', say) gets the version onnxruntime uses: the last import wins.
 */
export function opsetVersion(model: ModelProto, domain = ''): number | undefined {
  const d = domain === 'ai.onnx' ? '' : domain;
  const o = [...model.opsetImport].reverse().find((x) => (x.domain === 'ai.onnx' ? '' : x.domain) === d);
  return o ? Number(o.version) : undefined;
}

/** Read an attribute of a node by name. */
export function getAttr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function getIntAttr(node: NodeProto, name: string, fallback: number): number {
  const a = getAttr(node, name);
  return a ? Number(a.i) : fallback;
}

export function getFloatAttr(node: NodeProto, name: string, fallback: number): number {
  const a = getAttr(node, name);
  if (!a) return fallback;
  // Tolerate an INT where a FLOAT belongs (a builder given 1.0 makes INT 1); ONNX would refuse it, qtool reads the value.
  return a.type === AttributeType.INT ? Number(a.i) : a.f;
}

export function getIntsAttr(node: NodeProto, name: string): number[] | undefined {
  const a = getAttr(node, name);
  return a ? a.ints.map((v) => Number(v)) : undefined;
}

export function getStringAttr(node: NodeProto, name: string): string | undefined {
  const a = getAttr(node, name);
  return a ? new TextDecoder().decode(a.s) : undefined;
}
