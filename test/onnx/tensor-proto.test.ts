import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import {
  TensorProtoSchema,
  float16TensorProto,
  floatTensorProto,
  tensorFromProto,
  tensorToProto,
  type TensorProto,
} from '../../src/onnx/index.js';
import { DTYPES, float16ToFloat32, makeTensor, type DType, type DTypeMap, type Tensor } from '../../src/tensor/index.js';

/** Little-endian bytes written by hand, independent of the code under test. */
function le(dtype: DType, values: readonly (number | bigint)[]): Uint8Array {
  const size = DTYPES[dtype].bits / 8;
  const out = new Uint8Array(values.length * size);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => {
    const o = i * size;
    switch (dtype) {
      case 'float32': dv.setFloat32(o, Number(v), true); break;
      case 'float64': dv.setFloat64(o, Number(v), true); break;
      case 'int8': dv.setInt8(o, Number(v)); break;
      case 'uint8': case 'bool': dv.setUint8(o, Number(v)); break;
      case 'int16': dv.setInt16(o, Number(v), true); break;
      case 'uint16': case 'float16': case 'bfloat16': dv.setUint16(o, Number(v), true); break;
      case 'int32': dv.setInt32(o, Number(v), true); break;
      case 'uint32': dv.setUint32(o, Number(v), true); break;
      case 'int64': dv.setBigInt64(o, BigInt(v), true); break;
      case 'uint64': dv.setBigUint64(o, BigInt(v), true); break;
      default: throw new Error(dtype);
    }
  });
  return out;
}

function proto(fields: Partial<TensorProto> & { dataType: number; dims: bigint[] }): TensorProto {
  return create(TensorProtoSchema, { name: 't', ...fields } as never);
}

function values(t: Tensor): (number | bigint)[] {
  return Array.from(t.data as ArrayLike<number | bigint>);
}

/** The same bytes at an odd offset inside a bigger buffer (what protobuf subarrays look like). */
function misaligned(bytes: Uint8Array, offset = 1): Uint8Array {
  const buf = new ArrayBuffer(bytes.length + offset + 8);
  const view = new Uint8Array(buf, offset, bytes.length);
  view.set(bytes);
  return view;
}

const CASES: { dtype: DType; vals: (number | bigint)[] }[] = [
  { dtype: 'float32', vals: [1.5, -2.25, 0, Infinity, -3.4028234663852886e38, 1e-45] },
  { dtype: 'float64', vals: [0.1, -1e300, 5e-324] },
  { dtype: 'float16', vals: [0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00] },
  { dtype: 'bfloat16', vals: [0x3f80, 0xbf00, 0x7f7f, 0x0001, 0xff80] },
  { dtype: 'int8', vals: [-128, -1, 0, 127] },
  { dtype: 'uint8', vals: [0, 1, 128, 255] },
  { dtype: 'int16', vals: [-32768, -2, 300, 32767] },
  { dtype: 'uint16', vals: [0, 1, 40000, 65535] },
  { dtype: 'int32', vals: [-2147483648, -5, 70000, 2147483647] },
  { dtype: 'uint32', vals: [0, 3000000000, 4294967295] },
  { dtype: 'int64', vals: [-(2n ** 63n), -1n, 2n ** 40n + 3n, 2n ** 63n - 1n] },
  { dtype: 'uint64', vals: [0n, 2n ** 64n - 1n] },
  { dtype: 'bool', vals: [0, 1, 1, 0, 1] },
];

describe('tensorFromProto from raw_data', () => {
  it.each(CASES)('$dtype decodes little-endian raw_data', ({ dtype, vals }) => {
    const t = tensorFromProto(proto({ dataType: DTYPES[dtype].onnx, dims: [BigInt(vals.length)], rawData: le(dtype, vals) as never }));
    expect(t.dtype).toBe(dtype);
    expect(t.dims).toEqual([vals.length]);
    expect(t.data).toBeInstanceOf(DTYPES[dtype].ctor);
    const expected = dtype === 'float32' ? vals.map((v) => Math.fround(Number(v))) : vals;
    expect(values(t)).toEqual(expected);
  });

  it.each(CASES.filter((c) => DTYPES[c.dtype].bits > 8))('$dtype copies a misaligned raw_data view and views an aligned one', ({ dtype, vals }) => {
    const bytes = le(dtype, vals);
    const expected = values(tensorFromProto(proto({ dataType: DTYPES[dtype].onnx, dims: [BigInt(vals.length)], rawData: bytes as never })));
    for (const offset of [1, 2, 3, 5, 6, 7]) {
      const raw = misaligned(bytes, offset);
      const itemSize = DTYPES[dtype].bits / 8;
      const t = tensorFromProto(proto({ dataType: DTYPES[dtype].onnx, dims: [BigInt(vals.length)], rawData: raw as never }));
      expect(values(t)).toEqual(expected);
      const data = t.data as DTypeMap[DType];
      if (offset % itemSize === 0) {
        expect(data.buffer).toBe(raw.buffer); // zero-copy view
      } else {
        expect(data.buffer).not.toBe(raw.buffer);
        expect(data.byteOffset % itemSize).toBe(0);
      }
    }
  });

  it('copies a misaligned Node Buffer (whose slice() is a view, not a copy)', () => {
    const bytes = le('float32', [1, -2, 3.5]);
    const buf = Buffer.alloc(32);
    buf.set(bytes, 5);
    const raw = buf.subarray(5, 5 + bytes.length);
    expect(raw.byteOffset % 4).not.toBe(0);
    const t = tensorFromProto(proto({ dataType: 1, dims: [3n], rawData: raw as never }));
    expect(values(t)).toEqual([1, -2, 3.5]);
  });

  it('decodes raw_data handed out by the protobuf parser at an odd offset (Uint8Array and Buffer input)', () => {
    const src = tensorToProto('w', makeTensor('int64', [3], BigInt64Array.from([1n, -2n, 3n])));
    const bytes = toBinary(TensorProtoSchema, src);
    const buf = Buffer.alloc(bytes.length + 3);
    buf.set(bytes, 3);
    expect(values(tensorFromProto(fromBinary(TensorProtoSchema, buf.subarray(3))))).toEqual([1n, -2n, 3n]);
  });

  it('decodes raw_data handed out by the protobuf parser at an odd offset', () => {
    const src = tensorToProto('w', makeTensor('float32', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6])));
    const bytes = toBinary(TensorProtoSchema, src);
    const parsed = fromBinary(TensorProtoSchema, misaligned(bytes, 3));
    const t = tensorFromProto(parsed);
    expect(t.dims).toEqual([2, 3]);
    expect(values(t)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it.each([1, 2, 3, 4, 5, 9])('int4/uint4 with %i values unpack low nibble first', (n) => {
    const s = Array.from({ length: n }, (_, i) => ((i * 3) % 16) - 8);
    const packed = new Uint8Array(Math.ceil(n / 2));
    s.forEach((v, i) => (packed[i >> 1] |= (v & 15) << (4 * (i & 1))));
    const ti = tensorFromProto(proto({ dataType: 22, dims: [BigInt(n)], rawData: misaligned(packed) as never }));
    expect(ti.dtype).toBe('int4');
    expect(values(ti)).toEqual(s);
    const tu = tensorFromProto(proto({ dataType: 21, dims: [BigInt(n)], rawData: packed as never }));
    expect(tu.dtype).toBe('uint4');
    expect(values(tu)).toEqual(s.map((v) => v & 15));
    // Typed-field form: one packed byte per int32_data entry.
    const tf = tensorFromProto(proto({ dataType: 22, dims: [BigInt(n)], int32Data: [...packed] }));
    expect(values(tf)).toEqual(s);
  });

  it('decodes scalars and empty tensors', () => {
    const s = tensorFromProto(proto({ dataType: 1, dims: [], rawData: le('float32', [7]) as never }));
    expect(s.dims).toEqual([]);
    expect(values(s)).toEqual([7]);
    const e = tensorFromProto(proto({ dataType: 1, dims: [0, 4n] }));
    expect(e.dims).toEqual([0, 4]);
    expect(e.data.length).toBe(0);
  });
});

describe('tensorFromProto from the typed fields', () => {
  it('float_data, double_data, int64_data, uint64_data', () => {
    expect(values(tensorFromProto(proto({ dataType: 1, dims: [3n], floatData: [1.5, -2, 0.1] })))).toEqual([1.5, -2, Math.fround(0.1)]);
    expect(values(tensorFromProto(proto({ dataType: 11, dims: [2n], doubleData: [0.1, -3] })))).toEqual([0.1, -3]);
    expect(values(tensorFromProto(proto({ dataType: 7, dims: [3n], int64Data: [-(2n ** 63n), 5n, 2n ** 62n] })))).toEqual([-(2n ** 63n), 5n, 2n ** 62n]);
    expect(values(tensorFromProto(proto({ dataType: 13, dims: [1n], uint64Data: [2n ** 64n - 1n] })))).toEqual([2n ** 64n - 1n]);
    expect(values(tensorFromProto(proto({ dataType: 12, dims: [2n], uint64Data: [4294967295n, 7n] })))).toEqual([4294967295, 7]);
  });

  it('int32_data holds every narrow type, float16/bfloat16 as bit patterns', () => {
    const cases: [DType, number[], number[]][] = [
      ['int32', [-2147483648, 0, 2147483647], [-2147483648, 0, 2147483647]],
      ['int16', [-32768, 32767], [-32768, 32767]],
      ['uint16', [0, 65535], [0, 65535]],
      ['int8', [-128, 127], [-128, 127]],
      ['uint8', [0, 255], [0, 255]],
      ['bool', [1, 0, 1], [1, 0, 1]],
      ['float16', [0x3c00, 0xfc00], [0x3c00, 0xfc00]],
      ['bfloat16', [0x3f80, 0x8000], [0x3f80, 0x8000]],
    ];
    for (const [dtype, stored, expected] of cases) {
      const t = tensorFromProto(proto({ dataType: DTYPES[dtype].onnx, dims: [BigInt(stored.length)], int32Data: stored }));
      expect(t.dtype).toBe(dtype);
      expect(t.data).toBeInstanceOf(DTYPES[dtype].ctor);
      expect(values(t)).toEqual(expected);
    }
    expect(float16ToFloat32(Number(values(tensorFromProto(proto({ dataType: 10, dims: [1n], int32Data: [0x3555] })))[0]))).toBeCloseTo(1 / 3, 3);
  });

  it('prefers raw_data when both are present', () => {
    const t = tensorFromProto(proto({ dataType: 1, dims: [1n], rawData: le('float32', [9]) as never, floatData: [1] }));
    expect(values(t)).toEqual([9]);
  });
});

describe('tensorFromProto errors', () => {
  function expectModelError(t: TensorProto, code: string, re: RegExp) {
    try {
      tensorFromProto(t, { file: 'm.onnx', baseDir: '.' });
    } catch (err) {
      expect(err).toBeInstanceOf(ModelError);
      expect((err as ModelError).code).toBe(code);
      expect((err as ModelError).message).toMatch(re);
      expect((err as ModelError).message.startsWith('m.onnx: ')).toBe(true);
      return;
    }
    throw new Error('expected a ModelError');
  }

  it('refuses wrong byte and value counts', () => {
    expectModelError(proto({ dataType: 1, dims: [3n], rawData: new Uint8Array(8) as never }), 'E_TENSOR_SIZE', /expected 12 bytes of data, got 8/);
    expectModelError(proto({ dataType: 22, dims: [3n], rawData: new Uint8Array(1) as never }), 'E_TENSOR_SIZE', /expected 2 bytes/);
    expectModelError(proto({ dataType: 1, dims: [3n], floatData: [1, 2] }), 'E_TENSOR_SIZE', /expected 3 values, got 2/);
    expectModelError(proto({ dataType: 7, dims: [2n], int64Data: [1n] }), 'E_TENSOR_SIZE', /expected 2 values, got 1/);
    expectModelError(proto({ dataType: 6, dims: [2n], int32Data: [1, 2, 3] }), 'E_TENSOR_SIZE', /expected 2 values, got 3/);
    expectModelError(proto({ dataType: 1, dims: [-1n], rawData: new Uint8Array(4) as never }), 'E_TENSOR_SIZE', /expected dims >= 0, got \[-1\]/);
  });

  it('refuses dtypes qtool cannot read', () => {
    expectModelError(proto({ dataType: 8, dims: [1n], stringData: [new Uint8Array(1)] as never }), 'E_UNSUPPORTED_DTYPE', /string/);
    expectModelError(proto({ dataType: 17, dims: [1n], rawData: new Uint8Array(1) as never }), 'E_UNSUPPORTED_DTYPE', /float8e4m3fn/);
    expectModelError(proto({ dataType: 0, dims: [1n] }), 'E_UNSUPPORTED_DTYPE', /undefined/);
  });

  it('needs the model to read an external tensor', () => {
    const t = proto({ dataType: 1, dims: [1n], dataLocation: 1, externalData: [{ key: 'location', value: 'w.bin' }] as never });
    expect(() => tensorFromProto(t)).toThrow(ModelError);
  });
});

describe('tensorToProto', () => {
  it.each(CASES)('$dtype round-trips through raw_data', ({ dtype, vals }) => {
    const ctor = DTYPES[dtype].ctor as unknown as { from(v: unknown[]): DTypeMap[DType] };
    const data = ctor.from(dtype === 'int64' || dtype === 'uint64' ? vals.map((v) => BigInt(v)) : vals.map(Number));
    const p = tensorToProto('x', makeTensor(dtype, [vals.length], data));
    expect(p.name).toBe('x');
    expect(p.dataType).toBe(DTYPES[dtype].onnx);
    expect(p.dims).toEqual([BigInt(vals.length)]);
    expect([...p.rawData]).toEqual([...le(dtype, dtype === 'int64' || dtype === 'uint64' ? vals : [...data].map(Number))]);
    expect(values(tensorFromProto(p))).toEqual([...data]);
  });

  it('packs int4/uint4 low nibble first, odd lengths padded', () => {
    const p = tensorToProto('q', makeTensor('int4', [3], Int8Array.from([-1, 2, -8])));
    expect(p.dataType).toBe(22);
    expect([...p.rawData]).toEqual([0x2f, 0x08]);
    expect(values(tensorFromProto(p))).toEqual([-1, 2, -8]);
    const u = tensorToProto('u', makeTensor('uint4', [2, 1], Uint8Array.from([15, 1])));
    expect(u.dims).toEqual([2n, 1n]);
    expect([...u.rawData]).toEqual([0x1f]);
  });

  it('copies only the viewed part of a subarray', () => {
    const big = Float32Array.from([1, 2, 3, 4, 5]);
    const p = tensorToProto('s', makeTensor('float32', [2], big.subarray(2, 4)));
    expect(p.rawData.length).toBe(8);
    expect(values(tensorFromProto(p))).toEqual([3, 4]);
    big[2] = 99;
    expect(values(tensorFromProto(p))).toEqual([3, 4]);
  });

  it('floatTensorProto and float16TensorProto', () => {
    expect(values(tensorFromProto(floatTensorProto('f', [2], [0.5, -1])))).toEqual([0.5, -1]);
    const h = tensorFromProto(float16TensorProto('h', [3], [1, 65520, 2 ** -25]));
    expect(h.dtype).toBe('float16');
    expect(values(h)).toEqual([0x3c00, 0x7c00, 0x0000]);
  });
});
