import { describe, expect, it } from 'vitest';
import { InternalError } from '../../src/errors.js';
import {
  DTYPES,
  bfloat16ToFloat32,
  dtypeFromOnnx,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  makeTensor,
  numElements,
  onnxTypeName,
  toFloat32,
  type DType,
} from '../../src/tensor/index.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** The float32 whose bit pattern is `bits`. */
function fromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

describe('DTYPES table', () => {
  it('maps ONNX enum values both ways and agrees with the typed array widths', () => {
    const onnxOf: Record<string, number> = {
      float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11,
      uint32: 12, uint64: 13, bfloat16: 16, uint4: 21, int4: 22,
    };
    expect(Object.keys(DTYPES).sort()).toEqual(Object.keys(onnxOf).sort());
    for (const [name, info] of Object.entries(DTYPES) as [DType, (typeof DTYPES)[DType]][]) {
      expect(info.onnx).toBe(onnxOf[name]);
      expect(dtypeFromOnnx(info.onnx)).toBe(name);
      if (name === 'int4' || name === 'uint4') {
        expect(info.bits).toBe(4);
        expect(info.ctor.BYTES_PER_ELEMENT).toBe(1);
      } else {
        expect(info.ctor.BYTES_PER_ELEMENT * 8).toBe(info.bits);
      }
      if (info.min !== undefined) expect(info.isFloat).toBe(false);
    }
    expect(DTYPES.int4).toMatchObject({ min: -8, max: 7 });
    expect(DTYPES.uint4).toMatchObject({ min: 0, max: 15 });
    expect(DTYPES.int8).toMatchObject({ min: -128, max: 127 });
    expect(dtypeFromOnnx(8)).toBeUndefined(); // string
    expect(dtypeFromOnnx(17)).toBeUndefined(); // float8e4m3fn
    expect(onnxTypeName(8)).toBe('string');
    expect(onnxTypeName(17)).toBe('float8e4m3fn');
    expect(onnxTypeName(999)).toBe('type#999');
  });
});

describe('makeTensor / numElements', () => {
  it('allocates, wraps and checks the element count', () => {
    expect(numElements([])).toBe(1);
    expect(numElements([2, 0, 3])).toBe(0);
    expect(numElements([2, 3, 4])).toBe(24);
    const t = makeTensor('int64', [2, 2]);
    expect(t.data).toBeInstanceOf(BigInt64Array);
    expect(t.data.length).toBe(4);
    const dims = [3];
    const u = makeTensor('float32', dims, Float32Array.from([1, 2, 3]));
    dims.push(9);
    expect(u.dims).toEqual([3]);
    expect(() => makeTensor('float32', [2, 2], new Float32Array(3))).toThrow(InternalError);
  });
});

describe('float16', () => {
  it('decodes the landmark bit patterns exactly', () => {
    expect(float16ToFloat32(0x3c00)).toBe(1);
    expect(float16ToFloat32(0xc000)).toBe(-2);
    expect(float16ToFloat32(0x3555)).toBe(Math.fround(0.333251953125));
    expect(float16ToFloat32(0x7bff)).toBe(65504);
    expect(float16ToFloat32(0x0400)).toBe(2 ** -14); // smallest normal
    expect(float16ToFloat32(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(float16ToFloat32(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(float16ToFloat32(0x8001)).toBe(-(2 ** -24));
    expect(Object.is(float16ToFloat32(0x0000), 0)).toBe(true);
    expect(Object.is(float16ToFloat32(0x8000), -0)).toBe(true);
    expect(float16ToFloat32(0x7c00)).toBe(Infinity);
    expect(float16ToFloat32(0xfc00)).toBe(-Infinity);
    expect(float16ToFloat32(0x7e00)).toBeNaN();
    expect(float16ToFloat32(0xfc01)).toBeNaN();
  });

  it('round-trips every finite half exactly (all 63488 of them)', () => {
    let bad = 0;
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      if (float32ToFloat16(float16ToFloat32(h)) !== h) bad++;
    }
    expect(bad).toBe(0);
  });

  it('rounds ties to even and just-off-ties to nearest, for every pair of neighbouring halves', () => {
    let bad = 0;
    for (let h = 0; h < 0x7bff; h++) {
      const a = float16ToFloat32(h);
      const b = float16ToFloat32(h + 1);
      const mid = (a + b) / 2; // exact in float32: halves carry 11 significant bits
      expect(Math.fround(mid)).toBe(mid);
      const even = h & 1 ? h + 1 : h;
      for (const sign of [0, 0x8000]) {
        const s = sign ? -1 : 1;
        if (float32ToFloat16(s * mid) !== (even | sign)) bad++;
        f32[0] = s * mid;
        const midBits = u32[0];
        // One float32 ulp further from zero rounds away, one ulp closer rounds toward zero.
        if (float32ToFloat16(fromBits(midBits + 1)) !== ((h + 1) | sign)) bad++;
        if (float32ToFloat16(fromBits(midBits - 1)) !== (h | sign)) bad++;
      }
    }
    expect(bad).toBe(0);
  });

  it('handles zero, subnormal underflow, overflow, infinities and NaN', () => {
    expect(float32ToFloat16(0)).toBe(0x0000);
    expect(float32ToFloat16(-0)).toBe(0x8000);
    expect(float32ToFloat16(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal: even is 0
    expect(float32ToFloat16(-(2 ** -25))).toBe(0x8000);
    expect(float32ToFloat16(Math.fround(2 ** -25 * 1.0001))).toBe(0x0001);
    expect(float32ToFloat16(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2: even is 2
    expect(float32ToFloat16(2 ** -26)).toBe(0x0000);
    expect(float32ToFloat16(1e-10)).toBe(0x0000);
    expect(float32ToFloat16(fromBits(0x00000001))).toBe(0x0000); // float32 subnormal
    expect(float32ToFloat16(-fromBits(0x00000001))).toBe(0x8000);
    expect(float32ToFloat16(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up from subnormal into the smallest normal
    expect(float32ToFloat16(65504)).toBe(0x7bff);
    expect(float32ToFloat16(65519)).toBe(0x7bff);
    expect(float32ToFloat16(65520)).toBe(0x7c00); // tie between 65504 (odd) and 65536: overflows to Inf
    expect(float32ToFloat16(-65520)).toBe(0xfc00);
    expect(float32ToFloat16(1e6)).toBe(0x7c00);
    expect(float32ToFloat16(3.4e38)).toBe(0x7c00);
    expect(float32ToFloat16(1e300)).toBe(0x7c00); // float64 overflow to float32 Inf first
    expect(float32ToFloat16(Infinity)).toBe(0x7c00);
    expect(float32ToFloat16(-Infinity)).toBe(0xfc00);
    const nan = float32ToFloat16(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x03ff).not.toBe(0);
    expect(float16ToFloat32(float32ToFloat16(fromBits(0x7f800001)))).toBeNaN(); // NaN payload only in low bits stays NaN
    expect(float16ToFloat32(float32ToFloat16(fromBits(0xff800001)))).toBeNaN();
  });
});

describe('bfloat16', () => {
  it('decodes by shifting into the top half of a float32', () => {
    expect(bfloat16ToFloat32(0x3f80)).toBe(1);
    expect(bfloat16ToFloat32(0xc000)).toBe(-2);
    expect(bfloat16ToFloat32(0x7f7f)).toBe(fromBits(0x7f7f0000));
    expect(bfloat16ToFloat32(0x0001)).toBe(fromBits(0x00010000)); // subnormal
    expect(Object.is(bfloat16ToFloat32(0x8000), -0)).toBe(true);
    expect(bfloat16ToFloat32(0x7f80)).toBe(Infinity);
    expect(bfloat16ToFloat32(0xff80)).toBe(-Infinity);
    expect(bfloat16ToFloat32(0x7fc0)).toBeNaN();
  });

  it('round-trips every finite bfloat16 and rounds every midpoint to even', () => {
    let bad = 0;
    for (let b = 0; b < 0x10000; b++) {
      if ((b & 0x7f80) === 0x7f80) continue;
      if (float32ToBfloat16(bfloat16ToFloat32(b)) !== b) bad++;
      if ((b & 0x7fff) === 0x7f7f) continue; // the midpoint above the largest finite is checked below
      const mid = (b << 16) + 0x8000;
      const even = b & 1 ? b + 1 : b;
      if (float32ToBfloat16(fromBits(mid)) !== even) bad++;
      if (float32ToBfloat16(fromBits(mid + 1)) !== b + 1) bad++;
      if (float32ToBfloat16(fromBits(mid - 1)) !== b) bad++;
    }
    expect(bad).toBe(0);
  });

  it('handles -0, overflow, infinities and NaN', () => {
    expect(float32ToBfloat16(-0)).toBe(0x8000);
    expect(float32ToBfloat16(fromBits(0x7f7f8000))).toBe(0x7f80); // tie above the largest finite (odd): Inf
    expect(float32ToBfloat16(fromBits(0x7f7f7fff))).toBe(0x7f7f);
    expect(float32ToBfloat16(fromBits(0x7f7fffff))).toBe(0x7f80); // float32 max rounds to Inf
    expect(float32ToBfloat16(-fromBits(0x7f7fffff))).toBe(0xff80);
    expect(float32ToBfloat16(Infinity)).toBe(0x7f80);
    expect(float32ToBfloat16(-Infinity)).toBe(0xff80);
    for (const bits of [0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff]) {
      expect(bfloat16ToFloat32(float32ToBfloat16(fromBits(bits)))).toBeNaN();
    }
  });
});

describe('toFloat32', () => {
  it('converts every numeric dtype', () => {
    expect([...toFloat32(makeTensor('float32', [2], Float32Array.from([1.5, -2])))]).toEqual([1.5, -2]);
    expect([...toFloat32(makeTensor('float64', [1], Float64Array.from([0.1])))]).toEqual([Math.fround(0.1)]);
    expect([...toFloat32(makeTensor('float16', [3], Uint16Array.from([0x3c00, 0xc000, 0x7c00])))]).toEqual([1, -2, Infinity]);
    expect([...toFloat32(makeTensor('bfloat16', [2], Uint16Array.from([0x3f80, 0xbf00])))]).toEqual([1, -0.5]);
    expect([...toFloat32(makeTensor('int8', [2], Int8Array.from([-128, 127])))]).toEqual([-128, 127]);
    expect([...toFloat32(makeTensor('uint8', [2], Uint8Array.from([0, 255])))]).toEqual([0, 255]);
    expect([...toFloat32(makeTensor('int16', [1], Int16Array.from([-32768])))]).toEqual([-32768]);
    expect([...toFloat32(makeTensor('uint16', [1], Uint16Array.from([65535])))]).toEqual([65535]);
    expect([...toFloat32(makeTensor('int32', [1], Int32Array.from([-7])))]).toEqual([-7]);
    expect([...toFloat32(makeTensor('uint32', [1], Uint32Array.from([4000000000])))]).toEqual([4000000000]);
    expect([...toFloat32(makeTensor('int64', [2], BigInt64Array.from([-3n, 1n << 40n])))]).toEqual([-3, 2 ** 40]);
    expect([...toFloat32(makeTensor('uint64', [1], BigUint64Array.from([5n])))]).toEqual([5]);
    expect([...toFloat32(makeTensor('int4', [2], Int8Array.from([-8, 7])))]).toEqual([-8, 7]);
    expect([...toFloat32(makeTensor('uint4', [1], Uint8Array.from([15])))]).toEqual([15]);
    expect([...toFloat32(makeTensor('bool', [2], Uint8Array.from([0, 1])))]).toEqual([0, 1]);
  });
});
