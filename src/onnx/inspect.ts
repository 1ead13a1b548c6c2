import * as fs from 'node:fs';
import type { ModelSummary } from '../documents/index.js';
import { DTYPES, dtypeFromOnnx, numElements, onnxTypeName } from '../tensor/index.js';
import { GraphIndex } from './graph-index.js';
import { externalRef, isExternal, walkGraphs, type Model } from './model.js';
import { quantizableLayers } from './op-kinds.js';
import type { TensorProto, ValueInfoProto } from './proto.js';

function tensorBytes(t: TensorProto): number {
  const dt = dtypeFromOnnx(t.dataType);
  const n = numElements(t.dims.map(Number));
  return dt ? Math.ceil((n * DTYPES[dt].bits) / 8) : 0;
}

function describeValue(v: ValueInfoProto): ModelSummary['inputs'][number] {
  const tt = v.type?.value.case === 'tensorType' ? v.type.value.value : undefined;
  const shape = tt?.shape ? tt.shape.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : null)) : null;
  return { name: v.name, dtype: tt ? onnxTypeName(tt.elemType) : (v.type?.value.case ?? 'unknown'), shape };
}

/** Everything `qtool inspect` reports, as a plain document. */
export function inspectModel(model: Model): ModelSummary {
  const proto = model.proto;
  const graph = proto.graph!;
  const index = GraphIndex.of(model);
  const opHistogram: Record<string, number> = {};
  let nodeCount = 0;
  for (const g of walkGraphs(graph)) {
    for (const n of g.node) {
      const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
      opHistogram[key] = (opHistogram[key] ?? 0) + 1;
      nodeCount++;
    }
  }
  const byDtype: Record<string, { count: number; bytes: number }> = {};
  let count = 0;
  let bytes = 0;
  let inInitializers = 0;
  let inConstantNodes = 0;
  const external = new Map<string, { tensors: number; bytes: number }>();
  const add = (t: TensorProto, where: 'init' | 'const') => {
    const n = numElements(t.dims.map(Number));
    const b = tensorBytes(t);
    const name = onnxTypeName(t.dataType);
    const e = (byDtype[name] ??= { count: 0, bytes: 0 });
    e.count += n;
    e.bytes += b;
    count += n;
    bytes += b;
    if (where === 'init') inInitializers += n;
    else inConstantNodes += n;
    if (isExternal(t)) {
      const ref = externalRef(t, model.file);
      const x = external.get(ref.location) ?? { tensors: 0, bytes: 0 };
      x.tensors++;
      x.bytes += ref.length >= 0 ? ref.length : b;
      external.set(ref.location, x);
    }
  };
  for (const g of walkGraphs(graph)) {
    for (const t of g.initializer) add(t, 'init');
    for (const n of g.node) {
      if (n.opType === 'Constant') for (const a of n.attribute) if (a.t) add(a.t, 'const');
    }
  }
  const layers = quantizableLayers(index).map((l) => {
    const t = index.constantHeader(l.weight, l.scope)!;
    return {
      id: l.id,
      opType: l.opType,
      graph: l.scope.path,
      weight: l.weight,
      weightShape: [...l.weightDims],
      weightDtype: onnxTypeName(t.dataType),
      parameters: numElements(l.weightDims),
    };
  });
  const subgraphs = index.scopes
    .filter((s) => s.owner)
    .map((s) => ({ path: s.path, ownerOp: s.owner!.node.opType, nodeCount: s.graph.node.length }));
  const initNames = new Set(graph.initializer.map((t) => t.name));
  let fileBytes = 0;
  try {
    fileBytes = fs.statSync(model.file).size;
  } catch {
    fileBytes = 0;
  }
  return {
    kind: 'qtool.model-summary',
    version: 1,
    file: model.file,
    fileBytes,
    irVersion: Number(proto.irVersion),
    opsets: proto.opsetImport.map((o) => ({ domain: o.domain || 'ai.onnx', version: Number(o.version) })),
    producer: { name: proto.producerName, version: proto.producerVersion },
    graphName: graph.name,
    inputs: graph.input.filter((v) => !initNames.has(v.name)).map(describeValue),
    outputs: graph.output.map(describeValue),
    nodeCount,
    opHistogram: Object.fromEntries(Object.entries(opHistogram).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    parameters: { count, bytes, byDtype, inInitializers, inConstantNodes },
    quantizableLayers: layers,
    subgraphs,
    externalData: [...external.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([location, v]) => ({ location, ...v })),
    metadata: Object.fromEntries(proto.metadataProps.map((p) => [p.key, p.value])),
  };
}
