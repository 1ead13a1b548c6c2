/**
 * Checks of declared tensor sizes, before anything is allocated from them: a dense tensor's dims
 * against the bytes it carries, a sparse tensor's dense dims against its values and the tensor cap.
 * (Own file: model.ts checks at load and tensor-proto.ts before densifying, without a cycle.)
 */
import { ModelError } from '../errors.js';
import { DTYPES, dtypeFromOnnx, formatShape, onnxTypeName } from '../tensor/index.js';
import { DataLocation, type SparseTensorProto, type TensorProto } from './proto.js';

const isExternal = (t: TensorProto) => t.dataLocation === DataLocation.EXTERNAL;

/** Bits per element of every ONNX data type as stored in raw_data (string: 0, counted separately). */
const STORAGE_BITS: Readonly<Record<number, number>> = {
  1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 8: 0, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64, 14: 64, 15: 128, 16: 16,
  17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2,
};

/** Bytes a tensor of `dims` and ONNX type `dataType` holds in raw_data, or undefined for unknown types and strings. */
export function declaredTensorBytes(dataType: number, dims: readonly number[]): number | undefined {
  const bits = STORAGE_BITS[dataType];
  if (!bits) return undefined;
  let n = 1;
  for (const d of dims) n *= d;
  return Math.ceil((n * bits) / 8);
}

/**
 * Check that a tensor's declared dims agree with the data it carries, before anyone (onnxruntime
 * included, which allocates the declared size first) trusts them: dims non-negative safe integers,
 * raw_data exactly the declared bytes, typed fields enough values, strings one per element, and some
 * data for a non-empty tensor. External tensors are checked against their file by loadModel.
 * Throws ModelError E_TENSOR_SIZE.
 */
export function checkTensorDeclaredSize(t: TensorProto, file?: string): void {
  const bad = (why: string) => new ModelError('E_TENSOR_SIZE', `tensor "${t.name}": ${why}`, { file });
  const dims = t.dims.map((d) => Number(d));
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(`expected dims >= 0, got [${formatShape(dims)}]`);
  let n = 1;
  for (const d of dims) n *= d;
  if (!Number.isSafeInteger(n)) throw bad(`dims [${formatShape(dims)}] hold more than 2^53 elements`);
  if (isExternal(t)) return;
  if (t.dataType === 8) {
    if (t.stringData.length !== n) throw bad(`expected ${n} strings for dims [${formatShape(dims)}], got ${t.stringData.length}`);
    return;
  }
  const bytes = declaredTensorBytes(t.dataType, dims);
  if (t.rawData.length > 0) {
    if (bytes !== undefined && t.rawData.length !== bytes) throw bad(`dims [${formatShape(dims)}] need ${bytes} bytes of data, got ${t.rawData.length}`);
    return;
  }
  const typed = t.floatData.length + t.int32Data.length + t.int64Data.length + t.doubleData.length + t.uint64Data.length;
  if (n > 0 && typed === 0) throw bad(`dims [${formatShape(dims)}] declare ${n} elements, the tensor holds no data`);
  // A typed value holds at most 64 bits (complex128: two doubles per element).
  if (bytes !== undefined && bytes > typed * 16) throw bad(`dims [${formatShape(dims)}] need ${bytes} bytes, the tensor holds ${typed} values`);
}

/**
 * Largest dense tensor sparseToDense builds, in bytes (256 MiB): a sparse tensor declares its dense
 * dims freely, so a 119-byte file can ask for 2^30 elements, and the dense form is then copied by the
 * rewrite and by onnxruntime. Raise it with `maxTensorBytes` (CLI: --max-tensor-bytes) for a model you trust.
 */
export const DEFAULT_MAX_TENSOR_BYTES = 256 * 1024 * 1024;

/**
 * Dense elements one stored value may stand for (4096, i.e. 99.98 % zeros) once the dense form exceeds
 * SPARSE_EXPANSION_FLOOR elements: the dense size must stay within reach of the declared values.
 * Not applied when the caller sets maxTensorBytes explicitly (a trusted model).
 */
export const MAX_SPARSE_EXPANSION = 4096;
export const SPARSE_EXPANSION_FLOOR = 1 << 20;

export interface DensifyOptions {
  /** Refuse a dense form larger than this (default DEFAULT_MAX_TENSOR_BYTES; setting it also lifts MAX_SPARSE_EXPANSION). */
  maxTensorBytes?: number;
}

/**
 * Check a sparse tensor's declared shape before anything is allocated: dims non-negative safe
 * integers, element count a safe integer, no more values than elements, and the dense bytes within
 * `maxTensorBytes`. Returns the dims and element count. Throws ModelError E_TENSOR_SIZE.
 */
export function checkSparseShape(sp: SparseTensorProto, file?: string, opts: DensifyOptions = {}): { dims: number[]; elements: number } {
  const name = sp.values?.name ?? '';
  const bad = (why: string, hint?: string) => new ModelError('E_TENSOR_SIZE', `sparse tensor "${name}": ${why}`, { file, hint });
  if (!sp.values || !sp.indices) throw bad('expected values and indices, got only one of them');
  const dims = sp.dims.map((d) => Number(d));
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(`expected dims >= 0, got [${formatShape(dims)}]`);
  let elements = 1;
  for (const d of dims) {
    elements *= d;
    if (!Number.isSafeInteger(elements)) throw bad(`dims [${formatShape(dims)}] hold more than 2^53 elements`);
  }
  const dtype = dtypeFromOnnx(sp.values.dataType);
  if (!dtype) throw new ModelError('E_UNSUPPORTED_DTYPE', `sparse tensor "${name}" has data type ${onnxTypeName(sp.values.dataType)}, which qtool cannot read`, { file });
  const declared = sp.values.dims.length === 1 ? Number(sp.values.dims[0]) : -1;
  if (declared > elements) throw bad(`expected at most ${elements} values for dims [${formatShape(dims)}], got ${declared}`);
  const stored = sp.values.dims.reduce((a, d) => a * Number(d), 1);
  if (opts.maxTensorBytes === undefined && elements > SPARSE_EXPANSION_FLOOR && !(elements <= MAX_SPARSE_EXPANSION * stored)) {
    throw bad(
      `dims [${formatShape(dims)}] ask for ${elements} elements from ${stored} stored values: expected at most ${MAX_SPARSE_EXPANSION} elements per stored value`,
      'pass --max-tensor-bytes N to densify it anyway for a model you trust',
    );
  }
  const max = opts.maxTensorBytes ?? DEFAULT_MAX_TENSOR_BYTES;
  const bytes = Math.ceil((elements * DTYPES[dtype].bits) / 8);
  if (bytes > max) {
    throw bad(`dense form would take ${bytes} bytes (dims [${formatShape(dims)}]), more than the ${max}-byte tensor cap`, 'pass --max-tensor-bytes N to raise the cap for a model you trust');
  }
  return { dims, elements };
}


