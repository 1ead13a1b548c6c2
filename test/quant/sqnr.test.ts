import { describe, expect, it } from 'vitest';
import { activationGrid, cosineOfSqnrDb, expectedSqnrDb, meanSquaredGridError, toDb, weightSqnrDb } from '../../src/quant/index.js';

describe('expected SQNR from calibration statistics', () => {
  it('uniform-noise model without a histogram: E[x²] / (s²/12)', () => {
    // Range [0, 255] on uint8: step 1, noise 1/12; E[x²] = 100 → 10·log10(1200).
    const db = expectedSqnrDb({ min: 0, max: 255, meanSquare: 100 }, [0, 255]);
    expect(db).toBeCloseTo(10 * Math.log10(1200), 6);
    // No statistics to judge by: NaN (the caller treats it as unknown, never as bad).
    expect(expectedSqnrDb({ min: 0, max: 1 }, [0, 1])).toBeNaN();
  });

  it('a constant on the grid is exact; off the grid its rounding error counts', () => {
    expect(expectedSqnrDb({ min: 0, max: 0, meanSquare: 0 }, [0, 0])).toBe(Infinity);
    const g = activationGrid([0, 2.55]);
    expect(g.scale).toBeCloseTo(0.01, 8);
    const db = expectedSqnrDb({ min: 1.005, max: 1.005, meanSquare: 1.005 ** 2 }, [0, 2.55]);
    expect(db).toBeCloseTo(toDb(1.005 ** 2, 0.005 ** 2), 0);
  });

  it('grid error over a bin: exact integral, s²/12 over whole steps, clipping outside the range', () => {
    // A bin of exactly one step centred on a grid point: mean error s²/12.
    expect(meanSquaredGridError(0.5, 1.5, 1, 0, 10)).toBeCloseTo(1 / 12, 12);
    // Two steps: the same mean.
    expect(meanSquaredGridError(-0.5, 1.5, 1, 0, 10)).toBeCloseTo((1 / 24 + 1 / 12 + 1 / 24) / 2 + 0, 6);
    // Entirely above the grid: (u − hi)² averaged over [11, 13] = (2³ − 1³)/3 / 2 + … from hi = 10.
    expect(meanSquaredGridError(11, 13, 1, 0, 10)).toBeCloseTo(((3 ** 3 - 1 ** 3) / 3) / 2, 9);
    // A point.
    expect(meanSquaredGridError(0.25, 0.25, 1, 0, 10)).toBeCloseTo(0.0625, 12);
  });

  it('a histogram concentrated near zero with a far outlier has a low SQNR; clipping it away raises it', () => {
    // 1000 values in [0, 1), one at 1000: uint8 over [0, 1000] has a step of 3.9.
    const counts = new Array<number>(1000).fill(0);
    counts[0] = 1000;
    counts[999] = 1;
    const stats = { min: 0, max: 1000, histogram: { lo: 0, hi: 1000, counts } };
    const full = expectedSqnrDb(stats, [0, 1000]);
    // The outlier holds most of the energy, so the tensor's own SQNR is high even though the small values are lost …
    expect(full).toBeGreaterThan(20);
    // … while `within` [0, 1) (consumers that saturate above 1) judges only the values that matter.
    expect(expectedSqnrDb(stats, [0, 1000], 'uint8', { kind: 'linear' }, [0, 1])).toBeLessThan(3);
  });

  it('log domain: values far below one step become log(ε) after rounding', () => {
    // Power-spectrum-like: most values in the first bin (tiny), a few huge.
    const counts = new Array<number>(100).fill(0);
    counts[0] = 900;
    counts[99] = 100;
    const stats = { min: 0, max: 1e10, histogram: { lo: 0, hi: 1e10, counts } };
    const linear = expectedSqnrDb(stats, [0, 1e10]);
    const log = expectedSqnrDb(stats, [0, 1e10], 'uint8', { kind: 'log', epsilon: 1e-6 });
    expect(linear).toBeGreaterThan(30);
    expect(log).toBeLessThan(10);
    // A tensor whose values all sit well above one step loses little in the log domain either.
    const wide = { min: 1, max: 255, histogram: { lo: 0, hi: 256, counts: Array.from({ length: 256 }, (_, i) => (i === 0 ? 0 : 1)) } };
    expect(expectedSqnrDb(wide, [0, 255], 'uint8', { kind: 'log', epsilon: 0 })).toBeGreaterThan(35);
  });

  it('weights: SQNR against the fake-quantized copy; cosine of an SQNR', () => {
    expect(weightSqnrDb(Float32Array.of(1, 2), Float32Array.of(1, 2))).toBe(Infinity);
    expect(weightSqnrDb(Float32Array.of(3, 4), Float32Array.of(3, 4.5))).toBeCloseTo(10 * Math.log10(25 / 0.25), 9);
    expect(cosineOfSqnrDb(20)).toBeCloseTo(1 / Math.sqrt(1.01), 12);
  });
});
