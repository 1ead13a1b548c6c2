import { describe, expect, it } from 'vitest';
import { OutputCoverage } from '../../src/quant/index.js';

describe('calibration coverage of model outputs', () => {
  it('a Sigmoid output that never passes 0.5 (no positive example) warns; one that does is silent', () => {
    const neg = new OutputCoverage('prob', 'Sigmoid');
    neg.update(Float32Array.of(0.01, 0.2, 0.4999), [3, 1]);
    expect(neg.warnings()).toHaveLength(1);
    expect(neg.warnings()[0]).toMatch(/"prob" never passes 0.5.*max 0.4999/);
    const both = new OutputCoverage('prob', 'Sigmoid');
    both.update(Float32Array.of(0.01, 0.2), [2, 1]);
    both.update(Float32Array.of(0.7), [1, 1]);
    expect(both.warnings()).toEqual([]);
    const pos = new OutputCoverage('prob', 'Sigmoid');
    pos.update(Float32Array.of(0.6, 0.9), [2, 1]);
    expect(pos.warnings()[0]).toMatch(/never drops below 0.5/);
    // Not a Sigmoid: values below 0.5 mean nothing.
    const plain = new OutputCoverage('y', 'Gemm');
    plain.update(Float32Array.of(0.1, 0.2), [2, 1]);
    expect(plain.warnings()).toEqual([]);
  });

  it('a constant output warns', () => {
    const c = new OutputCoverage('y');
    c.update(new Float32Array(8).fill(3), [2, 4]);
    expect(c.warnings()[0]).toMatch(/"y" is constant \(3\)/);
  });

  it('a Softmax output with one argmax class at every row/position warns; two classes do not', () => {
    const one = new OutputCoverage('probs', 'Softmax');
    // [1, 3 positions, 2 classes]: class 0 everywhere.
    one.update(Float32Array.of(0.9, 0.1, 0.8, 0.2, 0.6, 0.4), [1, 3, 2]);
    expect(one.warnings()[0]).toMatch(/same argmax class \(0 of 2\) at all 3/);
    const two = new OutputCoverage('probs', 'Softmax');
    two.update(Float32Array.of(0.9, 0.1, 0.2, 0.8), [2, 2]);
    expect(two.warnings()).toEqual([]);
    // Raw 2-D scores of a Gemm (maybe an embedding) are not judged by argmax.
    const emb = new OutputCoverage('embedding', 'Gemm');
    emb.update(Float32Array.of(0.9, 0.1, 0.8, 0.2), [2, 2]);
    expect(emb.warnings()).toEqual([]);
  });
});
