/**
 * dtype names match onnxruntime-node's, so runtime/ conversion is a re-wrap.
 * int4/uint4 are unpacked in memory (one value per element); packing lives in onnx/.
 */
export interface DTypeMap {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  int4: Int8Array;
  uint4: Uint8Array;
  bool: Uint8Array;
}

export type DType = keyof DTypeMap;

export interface DTypeInfo {
  /** ONNX TensorProto.DataType enum value. */
  readonly onnx: number;
  /** Bits per element as stored in raw_data. */
  readonly bits: number;
  readonly ctor: { new (n: number): DTypeMap[DType]; readonly BYTES_PER_ELEMENT: number };
  readonly isFloat: boolean;
  /** Value range for integer types (inclusive). */
  readonly min?: number;
  readonly max?: number;
}

export const DTYPES: { readonly [K in DType]: DTypeInfo } = {
  float32: { onnx: 1, bits: 32, ctor: Float32Array, isFloat: true },
  uint8: { onnx: 2, bits: 8, ctor: Uint8Array, isFloat: false, min: 0, max: 255 },
  int8: { onnx: 3, bits: 8, ctor: Int8Array, isFloat: false, min: -128, max: 127 },
  uint16: { onnx: 4, bits: 16, ctor: Uint16Array, isFloat: false, min: 0, max: 65535 },
  int16: { onnx: 5, bits: 16, ctor: Int16Array, isFloat: false, min: -32768, max: 32767 },
  int32: { onnx: 6, bits: 32, ctor: Int32Array, isFloat: false, min: -2147483648, max: 2147483647 },
  int64: { onnx: 7, bits: 64, ctor: BigInt64Array, isFloat: false },
  bool: { onnx: 9, bits: 8, ctor: Uint8Array, isFloat: false, min: 0, max: 1 },
  float16: { onnx: 10, bits: 16, ctor: Uint16Array, isFloat: true },
  float64: { onnx: 11, bits: 64, ctor: Float64Array, isFloat: true },
  uint32: { onnx: 12, bits: 32, ctor: Uint32Array, isFloat: false, min: 0, max: 4294967295 },
  uint64: { onnx: 13, bits: 64, ctor: BigUint64Array, isFloat: false },
  bfloat16: { onnx: 16, bits: 16, ctor: Uint16Array, isFloat: true },
  uint4: { onnx: 21, bits: 4, ctor: Uint8Array, isFloat: false, min: 0, max: 15 },
  int4: { onnx: 22, bits: 4, ctor: Int8Array, isFloat: false, min: -8, max: 7 },
};

const BY_ONNX = new Map<number, DType>(Object.entries(DTYPES).map(([k, v]) => [v.onnx, k as DType]));

/** The qtool dtype for an ONNX TensorProto.DataType, or undefined when qtool does not handle it. */
export function dtypeFromOnnx(onnxType: number): DType | undefined {
  return BY_ONNX.get(onnxType);
}

/** Human name of any ONNX data type number (for messages). */
export const ONNX_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'undefined', 1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64',
  8: 'string', 9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 14: 'complex64',
  15: 'complex128', 16: 'bfloat16', 17: 'float8e4m3fn', 18: 'float8e4m3fnuz', 19: 'float8e5m2',
  20: 'float8e5m2fnuz', 21: 'uint4', 22: 'int4', 23: 'float4e2m1', 24: 'float8e8m0', 25: 'uint2', 26: 'int2',
};

export function onnxTypeName(t: number): string {
  return ONNX_TYPE_NAMES[t] ?? `type#${t}`;
}
