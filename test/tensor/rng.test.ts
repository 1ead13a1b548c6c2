import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/tensor/index.js';

describe('Rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 8 }, () => a.next());
    expect(Array.from({ length: 8 }, () => b.next())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.next())).not.toEqual(sa);
  });

  it('matches the mulberry32 reference sequence', () => {
    // mulberry32(0): the first outputs of the public reference implementation.
    const r = new Rng(0);
    const ref = (seed: number) => {
      let s = seed >>> 0;
      return () => {
        s = (s + 0x6d2b79f5) >>> 0;
        let t = s;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    };
    const g = ref(0);
    for (let i = 0; i < 100; i++) expect(r.next()).toBe(g());
    expect(new Rng(0).next()).toBeCloseTo(0.26642920868471265, 15);
  });

  it('stays in range and has the expected moments', () => {
    const r = new Rng(7);
    const n = 20000;
    let sum = 0;
    let sq = 0;
    let signs = 0;
    for (let i = 0; i < n; i++) {
      const u = r.next();
      expect(u >= 0 && u < 1).toBe(true);
      const k = r.int(10);
      expect(Number.isInteger(k) && k >= 0 && k < 10).toBe(true);
      const x = r.normal();
      sum += x;
      sq += x * x;
      signs += r.sign();
    }
    expect(Math.abs(sum / n)).toBeLessThan(0.05);
    expect(Math.abs(sq / n - 1)).toBeLessThan(0.05);
    expect(Math.abs(signs / n)).toBeLessThan(0.05);
  });

  it('fills arrays and permutes', () => {
    const r = new Rng(1);
    const u = r.fillUniform(new Float32Array(1000), -2, 3);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u)).toBeLessThan(3);
    const g = r.fillNormal(new Float32Array(4000), 0.5, 10);
    const mean = g.reduce((a, b) => a + b, 0) / g.length;
    expect(mean).toBeGreaterThan(9.95);
    expect(mean).toBeLessThan(10.05);
    const p = r.permutation(50);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect([...p]).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect([...new Rng(5).permutation(20)]).toEqual([...new Rng(5).permutation(20)]);
  });
});
