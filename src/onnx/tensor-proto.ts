import { create } from '@bufbuild/protobuf';
import { ModelError } from '../errors.js';
import {
  DTYPES,
  dtypeFromOnnx,
  float32ToFloat16,
  formatShape,
  makeTensor,
  numElements,
  onnxTypeName,
  packInt4,
  unpackInt4,
  unpackUint4,
  type DType,
  type DTypeMap,
  type Tensor,
} from '../tensor/index.js';
import { isExternal, readExternalBytes, type Model } from './model.js';
import { checkSparseShape, type DensifyOptions } from './tensor-checks.js';

export { DEFAULT_MAX_TENSOR_BYTES, MAX_SPARSE_EXPANSION, SPARSE_EXPANSION_FLOOR, checkSparseShape, checkTensorDeclaredSize, declaredTensorBytes, type DensifyOptions } from './tensor-checks.js';
import { TensorProtoSchema, type SparseTensorProto, type TensorProto } from './proto.js';

/** Byte source for external tensors; pass the model a tensor belongs to. */
export type ExternalSource = Pick<Model, 'file' | 'baseDir'> | undefined;

/**
 * Decode a TensorProto into a typed array tensor: raw_data (little-endian) or the typed
 * fields, inline or external. int4/uint4 come back unpacked, one value per element.
 */
export function tensorFromProto(t: TensorProto, source?: ExternalSource): Tensor {
  const dtype = dtypeFromOnnx(t.dataType);
  const file = source?.file;
  if (!dtype) {
    throw new ModelError('E_UNSUPPORTED_DTYPE', `tensor "${t.name}" has data type ${onnxTypeName(t.dataType)}, which qtool cannot read`, { file });
  }
  const dims = t.dims.map((d) => Number(d));
  if (dims.some((d) => d < 0)) {
    throw new ModelError('E_TENSOR_SIZE', `tensor "${t.name}": expected dims >= 0, got [${formatShape(dims)}]`, { file });
  }
  const n = numElements(dims);
  let raw: Uint8Array | undefined;
  if (isExternal(t)) {
    if (!source) throw new ModelError('E_EXTERNAL_DATA', `tensor "${t.name}" is stored externally; its model is needed to read it`);
    raw = readExternalBytes(source as Model, t);
  } else if (t.rawData.length > 0 || !hasTypedData(t)) {
    raw = t.rawData;
  }
  if (raw) return fromRaw(t.name, dtype, dims, n, raw, file);
  return fromTypedFields(t, dtype, dims, n, file);
}

function hasTypedData(t: TensorProto): boolean {
  return t.floatData.length + t.int32Data.length + t.int64Data.length + t.doubleData.length + t.uint64Data.length > 0;
}

function fromRaw(name: string, dtype: DType, dims: number[], n: number, raw: Uint8Array, file?: string): Tensor {
  const info = DTYPES[dtype];
  if (dtype === 'int4' || dtype === 'uint4') {
    const need = (n + 1) >> 1;
    if (raw.length !== need) throw sizeError(name, need, raw.length, file);
    return makeTensor(dtype, dims, dtype === 'int4' ? unpackInt4(raw, n) : unpackUint4(raw, n));
  }
  const itemSize = info.bits / 8;
  if (raw.length !== n * itemSize) throw sizeError(name, n * itemSize, raw.length, file);
  // Views only when aligned; protobuf hands out subarrays at arbitrary offsets.
  // (new Uint8Array(raw) copies; raw.slice() would not when raw is a Node Buffer, as it is for files.)
  const aligned = raw.byteOffset % itemSize === 0 ? raw : new Uint8Array(raw);
  const data = new (info.ctor as unknown as new (b: ArrayBufferLike, o: number, l: number) => DTypeMap[DType])(aligned.buffer, aligned.byteOffset, n);
  return makeTensor(dtype, dims, data);
}

function sizeError(name: string, need: number, got: number, file?: string): ModelError {
  return new ModelError('E_TENSOR_SIZE', `tensor "${name}": expected ${need} bytes of data, got ${got}`, { file });
}

function fromTypedFields(t: TensorProto, dtype: DType, dims: number[], n: number, file?: string): Tensor {
  const check = (len: number) => {
    if (len !== n) throw new ModelError('E_TENSOR_SIZE', `tensor "${t.name}": expected ${n} values, got ${len}`, { file });
  };
  switch (dtype) {
    case 'float32':
      check(t.floatData.length);
      return makeTensor(dtype, dims, Float32Array.from(t.floatData));
    case 'float64':
      check(t.doubleData.length);
      return makeTensor(dtype, dims, Float64Array.from(t.doubleData));
    case 'int64':
      check(t.int64Data.length);
      return makeTensor(dtype, dims, BigInt64Array.from(t.int64Data, (v) => BigInt(v)));
    case 'uint64':
      check(t.uint64Data.length);
      return makeTensor(dtype, dims, BigUint64Array.from(t.uint64Data, (v) => BigInt(v)));
    case 'uint32':
      check(t.uint64Data.length);
      return makeTensor(dtype, dims, Uint32Array.from(t.uint64Data, (v) => Number(v)));
    case 'int4':
    case 'uint4': {
      // int32_data holds one packed byte (two values) per entry.
      const bytes = Uint8Array.from(t.int32Data, (v) => v & 0xff);
      if (bytes.length !== (n + 1) >> 1) throw sizeError(t.name, (n + 1) >> 1, bytes.length, file);
      return makeTensor(dtype, dims, dtype === 'int4' ? unpackInt4(bytes, n) : unpackUint4(bytes, n));
    }
    default: {
      // int32, int16, uint16, int8, uint8, bool, float16 and bfloat16 (as bit patterns) live in int32_data.
      check(t.int32Data.length);
      const out = new DTYPES[dtype].ctor(n) as Exclude<DTypeMap[DType], BigInt64Array | BigUint64Array>;
      for (let i = 0; i < n; i++) out[i] = t.int32Data[i];
      return makeTensor(dtype, dims, out as never);
    }
  }
}

/** Encode a tensor as a TensorProto with little-endian raw_data (int4/uint4 packed low nibble first). */
export function tensorToProto(name: string, t: Tensor): TensorProto {
  let raw: Uint8Array;
  if (t.dtype === 'int4' || t.dtype === 'uint4') {
    raw = packInt4(t.data as Int8Array | Uint8Array);
  } else {
    const d = t.data;
    raw = new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
  }
  return create(TensorProtoSchema, {
    name,
    dims: t.dims.map((d) => BigInt(d)),
    dataType: DTYPES[t.dtype].onnx,
    rawData: raw as Uint8Array<ArrayBuffer>,
  });
}

/** Shorthand for float32 initializers. */
export function floatTensorProto(name: string, dims: readonly number[], values: ArrayLike<number>): TensorProto {
  return tensorToProto(name, makeTensor('float32', dims, Float32Array.from(values)));
}

/** float32 values to a float16 tensor proto (round to nearest even). */
export function float16TensorProto(name: string, dims: readonly number[], values: ArrayLike<number>): TensorProto {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16(values[i]);
  return tensorToProto(name, makeTensor('float16', dims, out));
}

/**
 * The dense tensor a SparseTensorProto describes (zeros elsewhere). Indices are either
 * linear ([NNZ]) or coordinates ([NNZ, rank]), as the ONNX spec allows. The declared shape is
 * checked (checkSparseShape) before the values, the indices or the dense array are read.
 */
export function sparseToDense(sp: SparseTensorProto, source?: ExternalSource, opts: DensifyOptions = {}): TensorProto {
  const file = source?.file;
  const name = sp.values?.name ?? '';
  const bad = (why: string) => new ModelError('E_TENSOR_SIZE', `sparse tensor "${name}": ${why}`, { file });
  const { dims, elements: n } = checkSparseShape(sp, file, opts);
  const values = tensorFromProto(sp.values!, source);
  const indices = tensorFromProto(sp.indices!, source);
  const nnz = values.data.length;
  if (nnz > n) throw bad(`expected at most ${n} values for dims [${formatShape(dims)}], got ${nnz}`);
  const rank = dims.length;
  const strides = new Array<number>(rank);
  for (let i = rank - 1, st = 1; i >= 0; i--) (strides[i] = st), (st *= dims[i]);
  const isCoords = indices.dims.length === 2;
  if (indices.data.length !== (isCoords ? nnz * rank : nnz)) throw bad(`expected ${isCoords ? nnz * rank : nnz} indices, got ${indices.data.length}`);
  const idx = (k: number) => Number(indices.data[k]);
  const dense = makeTensor(values.dtype, dims);
  const out = dense.data as unknown as { [i: number]: number | bigint };
  const src = values.data as unknown as { [i: number]: number | bigint };
  for (let v = 0; v < nnz; v++) {
    let at = 0;
    if (isCoords) {
      for (let j = 0; j < rank; j++) {
        const c = idx(v * rank + j);
        if (!(c >= 0 && c < dims[j])) throw bad(`index ${c} on axis ${j} is outside dims [${formatShape(dims)}]`);
        at += c * strides[j];
      }
    } else at = idx(v);
    if (!(at >= 0 && at < n)) throw bad(`index ${at} is outside the ${n} elements of dims [${formatShape(dims)}]`);
    out[at] = src[v];
  }
  return tensorToProto(name, dense);
}
