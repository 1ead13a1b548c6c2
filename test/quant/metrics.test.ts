import { describe, expect, it } from 'vitest';
import {
  FidelityAccumulator,
  argmaxRows,
  crossEntropy,
  klDivergence,
  maxAbsError,
  meanSquaredError,
  perplexity,
  spearman,
  topKHits,
} from '../../src/quant/index.js';

const f32 = (...v: number[]) => Float32Array.from(v);

describe('output losses', () => {
  it('KL divergence is 0 for identical logits and matches a hand computation otherwise', () => {
    expect(klDivergence(f32(1, 2, 3), f32(1, 2, 3), 3)).toBeCloseTo(0, 12);
    // p = softmax(0, ln 3) = (1/4, 3/4); q = (1/2, 1/2): KL = 1/4 ln(1/2) + 3/4 ln(3/2)
    const want = 0.25 * Math.log(0.5) + 0.75 * Math.log(1.5);
    expect(klDivergence(f32(0, Math.log(3)), f32(0, 0), 2)).toBeCloseTo(want, 6);
    // logits shifted by a constant are the same distribution
    expect(klDivergence(f32(1, 2, 3), f32(11, 12, 13), 3)).toBeCloseTo(0, 6);
  });

  it('cross-entropy of uniform logits is ln(classes); huge logits stay finite', () => {
    expect(crossEntropy(f32(0, 0, 0, 0), [2], 4)).toBeCloseTo(Math.log(4), 9);
    expect(Number.isFinite(crossEntropy(f32(1e4, -1e4), [1n], 2))).toBe(true);
    expect(crossEntropy(f32(1e4, -1e4), [1n], 2)).toBeCloseTo(2e4, 0);
  });

  it('MSE and max abs error', () => {
    expect(meanSquaredError(f32(0, 0, 0, 0), f32(1, -1, 2, 0))).toBeCloseTo(1.5, 9);
    expect(maxAbsError(f32(0, 5), f32(0.5, 3))).toBe(2);
  });
});

describe('classification metrics', () => {
  it('argmax per row and top-k hits', () => {
    const logits = f32(0.1, 0.7, 0.2, 0.9, 0.05, 0.05);
    expect([...argmaxRows(logits, 3)]).toEqual([1, 0]);
    expect(topKHits(logits, [1, 2], 3, 1)).toBe(1);
    // Row 2's label 2 ties with label 1 for second place: only strictly greater logits push a label out.
    expect(topKHits(logits, [1, 2], 3, 2)).toBe(2);
    expect(topKHits(logits, [0, 1], 3, 1)).toBe(0);
    expect(topKHits(logits, [0, 1], 3, 3)).toBe(2);
  });

  it('perplexity: exp of mean NLL, padding labels (< 0) ignored', () => {
    const uniform = new Float32Array(3 * 5);
    const r = perplexity(uniform, [0, -1, 4], 5);
    expect(r.tokens).toBe(2);
    expect(r.perplexity).toBeCloseTo(5, 6);
  });
});

describe('FidelityAccumulator', () => {
  it('identical outputs: cosine 1, SQNR +inf, full agreement', () => {
    const acc = new FidelityAccumulator();
    acc.update(f32(1, 2, 3, 4), f32(1, 2, 3, 4), 2);
    const r = acc.result();
    expect(r.cosine).toBeCloseTo(1, 12);
    expect(r.sqnrDb).toBe(Infinity);
    expect(r.top1Agreement).toBe(1);
    expect(r.maxAbsError).toBe(0);
  });

  it('streams batches: SQNR = 10 log10(signal / noise) over everything seen', () => {
    const acc = new FidelityAccumulator();
    acc.update(f32(3, 4), f32(3, 4.5));
    acc.update(f32(0, 0), f32(0, 0.5));
    const r = acc.result();
    expect(r.sqnrDb).toBeCloseTo(10 * Math.log10(25 / 0.5), 6);
    expect(r.elements).toBe(4);
    expect(r.mse).toBeCloseTo(0.5 / 4, 9);
    expect(r.cosine).toBeLessThan(1);
  });

  it('disagreement on the top class is counted per row', () => {
    const acc = new FidelityAccumulator();
    acc.update(f32(1, 0, 0, 1), f32(1, 0, 1, 0), 2);
    expect(acc.result().top1Agreement).toBe(0.5);
  });
});

describe('spearman', () => {
  it('is 1 for a monotone relation, -1 for a reversed one, and uses average ranks for ties', () => {
    expect(spearman([1, 2, 3, 4], [10, 20, 30, 1000])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    // ranks a = [1, 2.5, 2.5, 4], b = [1, 2, 3, 4] → rho = 0.9487
    expect(spearman([1, 2, 2, 3], [1, 2, 3, 4])).toBeCloseTo(0.9486833, 6);
    expect(spearman([1, 1, 1], [1, 2, 3])).toBe(0);
  });
});
