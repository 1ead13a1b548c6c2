import { describe, expect, it } from 'vitest';
import { latencyStats, percentile } from '../../src/bench/index.js';

describe('percentile', () => {
  it('interpolates linearly between ranks (numpy default)', () => {
    const s = [1, 2, 3, 4, 5];
    expect(percentile(s, 0)).toBe(1);
    expect(percentile(s, 50)).toBe(3);
    expect(percentile(s, 100)).toBe(5);
    expect(percentile(s, 90)).toBeCloseTo(4.6, 12);
    expect(percentile([10, 20], 25)).toBeCloseTo(12.5, 12);
  });
  it('handles one value and none', () => {
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('latencyStats', () => {
  it('summarises unsorted samples with ordered percentiles', () => {
    const samples = [5, 1, 4, 2, 3, 100, 2, 2, 3, 1];
    const s = latencyStats(samples);
    expect(s.runs).toBe(10);
    expect(s.meanMs).toBeCloseTo(12.3, 12);
    expect(s.minMs).toBe(1);
    expect(s.maxMs).toBe(100);
    expect(s.p50Ms).toBe(2.5);
    expect(s.p50Ms).toBeLessThanOrEqual(s.p90Ms);
    expect(s.p90Ms).toBeLessThanOrEqual(s.p99Ms);
    expect(s.p99Ms).toBeLessThanOrEqual(s.maxMs);
  });
});
