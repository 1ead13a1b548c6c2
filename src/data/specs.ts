import { ModelError } from '../errors.js';
import type { Model, ValueInfoProto } from '../onnx/index.js';
import { dtypeFromOnnx, formatShape, onnxTypeName, type DType } from '../tensor/index.js';

/** A model input as declared: name, dtype and dims (a number, a symbolic name, or null when unknown). */
export interface InputSpec {
  name: string;
  dtype: DType;
  dims: (number | string | null)[];
  /** True when the model declares no shape at all (any rank accepted). */
  unknownRank?: boolean;
}

function specOf(v: ValueInfoProto, file: string): InputSpec {
  const tt = v.type?.value.case === 'tensorType' ? v.type.value.value : undefined;
  if (!tt) throw new ModelError('E_UNSUPPORTED_DTYPE', `input "${v.name}" is a ${v.type?.value.case ?? 'value of unknown type'}: expected a tensor`, { file });
  const dtype = dtypeFromOnnx(tt.elemType);
  if (!dtype) throw new ModelError('E_UNSUPPORTED_DTYPE', `input "${v.name}" has dtype ${onnxTypeName(tt.elemType)}: qtool cannot feed it`, { file });
  if (!tt.shape) return { name: v.name, dtype, dims: [], unknownRank: true };
  const dims = tt.shape.dim.map((d) => (d.value.case === 'dimValue' ? (Number(d.value.value) >= 0 ? Number(d.value.value) : null) : d.value.case === 'dimParam' && d.value.value ? d.value.value : null));
  return { name: v.name, dtype, dims };
}

/** The inputs a caller must feed: graph inputs that are not initializers. */
export function modelInputSpecs(model: Model): InputSpec[] {
  const graph = model.proto.graph!;
  const inits = new Set(graph.initializer.map((t) => t.name));
  return graph.input.filter((v) => !inits.has(v.name)).map((v) => specOf(v, model.file));
}

/** `[N, 1, 28, 28]` style text of declared dims. */
export function formatDims(dims: readonly (number | string | null)[]): string {
  return `[${formatShape(dims)}]`;
}

/**
 * True when the input's first axis is a batch axis: rank ≥ 2 with a first dim that is not fixed above 1
 * (`[2, batch, 64]` LSTM states have none), or rank 1 with a symbolic dim named like a batch (`batch…`, `N`).
 * Samples are stacked along a batch axis; inputs without one get one sample per run.
 */
export function hasBatchAxis(spec: InputSpec): boolean {
  if (spec.unknownRank) return false;
  if (spec.dims.length >= 2) return !(typeof spec.dims[0] === 'number' && spec.dims[0] > 1);
  const d = spec.dims[0];
  return spec.dims.length === 1 && typeof d === 'string' && /batch|^n$/i.test(d);
}
