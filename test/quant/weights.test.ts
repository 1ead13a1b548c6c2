import { describe, expect, test } from 'vitest';
import { dequantizeWeight, fakeQuantizeWeight, int4SymmetricParams, quantizeWeight, type WeightQuantSpec } from '../../src/quant/index.js';

const block4: WeightQuantSpec = { bits: 4, symmetric: true, granularity: 'block', axis: 0, blockSize: 32 };

describe("symmetric int4: onnxruntime's signed-scale rule (quant_slice_symmetric)", () => {
  test('a positive extreme gets a negative scale and maps exactly to -8', () => {
    const w = Float32Array.from([1, -2, 4, 0.5]);
    const q = quantizeWeight(w, [4], block4);
    expect([...q.scales]).toEqual([-0.5]);
    expect([...q.q]).toEqual([-2, 4, -8, -1]);
    expect([...q.zeroPoints]).toEqual([0]);
    expect([...dequantizeWeight(q, [4], block4)]).toEqual([1, -2, 4, 0.5]);
  });

  test('a negative extreme gets a positive scale; nothing is clipped', () => {
    const q = quantizeWeight(Float32Array.from([-4, 2, 3.5]), [3], block4);
    expect([...q.scales]).toEqual([0.5]);
    expect([...q.q]).toEqual([-8, 4, 7]);
  });

  test('equal magnitudes pick the min (numpy where(|max| > |min|, max, min)); the max then clips to 7', () => {
    expect(int4SymmetricParams(-3, 3)).toEqual({ scale: 0.375, zeroPoint: 0 });
    const q = quantizeWeight(Float32Array.from([3, -3]), [2], block4);
    expect([...q.q]).toEqual([7, -8]);
  });

  test('ties round half to even, a zero block gets scale 1 and q 0', () => {
    expect([...quantizeWeight(Float32Array.from([-8, 2.5, 1.5, -0.5]), [4], block4).q]).toEqual([-8, 2, 2, 0]);
    const z = quantizeWeight(new Float32Array(4), [4], block4);
    expect([...z.scales]).toEqual([1]);
    expect([...z.q].every((v) => v === 0)).toBe(true);
  });

  test('the old absmax/8 rule clipped a positive extreme to 7/8 of itself; the signed rule is exact there', () => {
    const w = Float32Array.from([0.1, -0.3, 0.8, 0.05, -0.2]);
    const fq = fakeQuantizeWeight(w, [5], block4);
    expect(fq[2]).toBeCloseTo(0.8, 6);
    // absmax/8 = 0.1, q = 7 → 0.7 (the old rule)
    expect(Math.abs(fq[2] - 0.7)).toBeGreaterThan(0.09);
  });

  test('per-block and per-channel groups each get their own signed scale', () => {
    // [2, 4]: blocks of 2 along axis 1 → groups (row, block).
    const w = Float32Array.from([1, -0.5, -2, 1, 0.25, 0.5, -1, 3]);
    const q = quantizeWeight(w, [2, 4], { bits: 4, symmetric: true, granularity: 'block', axis: 1, blockSize: 2 });
    expect([...q.scales]).toEqual([-0.125, 0.25, -0.0625, -0.375]);
    expect(q.scaleDims).toEqual([2, 2]);
    const c = quantizeWeight(w, [2, 4], { bits: 4, symmetric: true, granularity: 'channel', axis: 0 });
    expect([...c.scales]).toEqual([0.25, -0.375]);
  });
});
