import { describe, expect, it } from 'vitest';
import { affineParams, dequantizeValue, quantRange, quantizeValue, roundHalfEven } from '../../src/quant/index.js';

describe('roundHalfEven', () => {
  it('rounds ties to the even neighbour, as onnxruntime and numpy do', () => {
    const cases: [number, number][] = [
      [0.5, 0], [1.5, 2], [2.5, 2], [3.5, 4], [-0.5, -0], [-1.5, -2], [-2.5, -2], [-3.5, -4],
      [0.49999, 0], [0.50001, 1], [2.4, 2], [2.6, 3], [-2.6, -3], [7, 7], [-7, -7],
    ];
    for (const [x, want] of cases) expect(roundHalfEven(x), `roundHalfEven(${x})`).toBe(want);
    // Math.round would give 3 and -2 for these ties; half-to-even gives 2 and -2.
    expect(Math.round(2.5)).toBe(3);
    expect(roundHalfEven(2.5)).toBe(2);
  });

  it('keeps non-finite values', () => {
    expect(roundHalfEven(Infinity)).toBe(Infinity);
    expect(Number.isNaN(roundHalfEven(NaN))).toBe(true);
  });
});

describe('quantRange', () => {
  it('gives onnxruntime ranges, with the restricted symmetric int8 range', () => {
    expect(quantRange('int8')).toEqual({ qmin: -128, qmax: 127 });
    expect(quantRange('int8', true)).toEqual({ qmin: -127, qmax: 127 });
    expect(quantRange('uint8')).toEqual({ qmin: 0, qmax: 255 });
    expect(quantRange('int4')).toEqual({ qmin: -8, qmax: 7 });
    expect(quantRange('uint4')).toEqual({ qmin: 0, qmax: 15 });
  });
});

describe('affineParams', () => {
  it('uint8 asymmetric: scale = range/255, zero point maps 0 exactly', () => {
    const p = affineParams(-1, 3, quantRange('uint8'), false);
    expect(p.scale).toBeCloseTo(4 / 255, 7);
    expect(p.zeroPoint).toBe(64); // round(0 - (-1)/(4/255)) = round(63.75)
    expect(dequantizeValue(quantizeValue(0, p.scale, p.zeroPoint, quantRange('uint8')), p.scale, p.zeroPoint)).toBe(0);
  });

  it('widens the range to include 0 (an all-positive tensor has zero point 0)', () => {
    const p = affineParams(2, 10, quantRange('uint8'), false);
    expect(p.zeroPoint).toBe(0);
    expect(p.scale).toBeCloseTo(10 / 255, 7);
    const n = affineParams(-10, -2, quantRange('uint8'), false);
    expect(n.zeroPoint).toBe(255);
  });

  it('int8 symmetric: zero point 0, scale = max|x| / 127', () => {
    const p = affineParams(-0.5, 2, quantRange('int8', true), true);
    expect(p.zeroPoint).toBe(0);
    expect(p.scale).toBeCloseTo(2 / 127, 7);
  });

  it('a zero range gives scale 1 and zero point 0 (a constant-zero tensor stays exact)', () => {
    expect(affineParams(0, 0, quantRange('uint8'), false)).toEqual({ scale: 1, zeroPoint: 0 });
    expect(affineParams(0, 0, quantRange('int8', true), true)).toEqual({ scale: 1, zeroPoint: 0 });
  });

  it('refuses a non-finite range (an -inf mask must never reach a scale)', () => {
    expect(() => affineParams(-Infinity, 1, quantRange('uint8'), false)).toThrow(RangeError);
    expect(() => affineParams(0, NaN, quantRange('uint8'), false)).toThrow(RangeError);
  });
});

describe('quantizeValue / dequantizeValue', () => {
  it('saturates to the type range and rounds ties to even', () => {
    const r = quantRange('int8');
    expect(quantizeValue(1000, 1, 0, r)).toBe(127);
    expect(quantizeValue(-1000, 1, 0, r)).toBe(-128);
    expect(quantizeValue(2.5, 1, 0, r)).toBe(2);
    expect(quantizeValue(3.5, 1, 0, r)).toBe(4);
    expect(quantizeValue(-0, 1, 0, r)).toBe(0);
  });

  it('round-trips within half a step inside the range', () => {
    const r = quantRange('uint8');
    const p = affineParams(-3, 5, r, false);
    for (let x = -3; x <= 5; x += 0.0371) {
      const y = dequantizeValue(quantizeValue(x, p.scale, p.zeroPoint, r), p.scale, p.zeroPoint);
      expect(Math.abs(y - x)).toBeLessThanOrEqual(p.scale / 2 + 1e-6);
    }
  });
});
