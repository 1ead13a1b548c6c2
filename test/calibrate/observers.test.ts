import { describe, expect, it } from 'vitest';
import { StreamingHistogram, absHistogram, klThresholdBins, makeObserver, rangeFromSummary, type ObserverSettings } from '../../src/calibrate/index.js';
import { InputError } from '../../src/errors.js';
import { Rng } from '../../src/tensor/index.js';

const S: ObserverSettings = { percentile: 99.9, symmetric: false, bins: 2048, movingAverage: 0 };
const N = 100_000;

function sample(kind: 'uniform' | 'gauss' | 'laplace', seed = 1): Float32Array {
  const rng = new Rng(seed);
  const n = kind === 'laplace' ? 10 * N : N;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (kind === 'uniform') x[i] = rng.next() * 2 - 1;
    else if (kind === 'gauss') x[i] = rng.normal();
    else {
      const u = rng.next() - 0.5;
      x[i] = -Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
    }
  }
  if (kind === 'laplace') {
    // Laplace(b = 1), 10⁶ values (natural max ≈ 14), plus two far outliers.
    x[12345] = 60;
    x[54321] = -58;
  }
  return x;
}

function exactQuantile(x: Float32Array, q: number): number {
  const s = Float64Array.from(x).sort();
  const pos = q * (s.length - 1);
  const i = Math.floor(pos);
  return s[i] + (s[Math.min(i + 1, s.length - 1)] - s[i]) * (pos - i);
}

function observe(method: 'minmax' | 'percentile' | 'entropy' | 'mse', x: Float32Array, batch = x.length, s = S) {
  const o = makeObserver(method, s);
  for (let i = 0; i < x.length; i += batch) o.update(x.subarray(i, i + batch));
  return o.result();
}

describe('observers on synthetic distributions', () => {
  const data = { uniform: sample('uniform'), gauss: sample('gauss'), laplace: sample('laplace') };

  it('minmax returns the exact extremes, count and E[x²]', () => {
    const x = data.gauss;
    const r = observe('minmax', x);
    let lo = Infinity, hi = -Infinity, ss = 0;
    for (const v of x) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      ss += v * v;
    }
    expect(r.range).toEqual([lo, hi]);
    expect([r.min, r.max, r.count]).toEqual([lo, hi, N]);
    expect(r.meanSquare).toBeCloseTo(ss / N, 10);
  });

  for (const kind of ['uniform', 'gauss', 'laplace'] as const) {
    it(`percentile is within one bin of the exact quantile (${kind})`, () => {
      const x = data[kind];
      const r = observe('percentile', x);
      const w = (r.histogram!.hi - r.histogram!.lo) / r.histogram!.counts.length;
      expect(Math.abs(r.range[1] - exactQuantile(x, 0.999))).toBeLessThanOrEqual(w);
      expect(Math.abs(r.range[0] - exactQuantile(x, 0.001))).toBeLessThanOrEqual(w);
      const sym = observe('percentile', x, x.length, { ...S, symmetric: true });
      const ax = x.map(Math.abs);
      const amax = Math.max(-r.min, r.max);
      expect(Math.abs(sym.range[1] - exactQuantile(ax, 0.999))).toBeLessThanOrEqual(Math.max(w, amax / S.bins));
      expect(sym.range[0]).toBe(-sym.range[1]);
    });
  }

  it('entropy and mse stay near the max on uniform data', () => {
    for (const m of ['entropy', 'mse'] as const) {
      const r = observe(m, data.uniform);
      expect(r.range[1]).toBeGreaterThan(0.95 * r.max);
      expect(r.range[0]).toBeLessThan(0.95 * r.min);
    }
  });

  it('entropy and mse clip well below the max on heavy-tailed data with outliers', () => {
    const e = observe('entropy', data.laplace);
    const m = observe('mse', data.laplace);
    expect([e.min, e.max]).toEqual([-58, 60]);
    expect(e.range[1]).toBeLessThan(0.4 * 60);
    expect(e.range[1]).toBeGreaterThan(5); // still covers the Laplace bulk (b = 1)
    expect(m.range[1]).toBeLessThan(0.4 * 60);
    expect(m.range[1]).toBeGreaterThan(8);
  });

  it('gaussian: mse clips near the known 8-bit optimum (~4σ), entropy between 3σ and max', () => {
    const m = observe('mse', data.gauss);
    expect(m.range[1]).toBeGreaterThan(3.3);
    expect(m.range[1]).toBeLessThan(4.3);
    const e = observe('entropy', data.gauss);
    expect(e.range[1]).toBeGreaterThan(3);
    expect(e.range[1]).toBeLessThanOrEqual(e.max);
  });

  it('the KL search returns the full width on a flat histogram and cuts a lone far spike', () => {
    expect(klThresholdBins(new Float64Array(2048).fill(10))).toBe(2048);
    const h = new Float64Array(2048);
    for (let i = 0; i < 300; i++) h[i] = 1000 * Math.exp(-i / 40);
    h[2047] = 1;
    expect(klThresholdBins(h)).toBeLessThan(600);
  });

  it('rangeFromSummary recomputes every method from a histogram entry; a minmax entry (no histogram) only minmax', () => {
    const r = observe('percentile', data.laplace);
    for (const m of ['percentile', 'entropy', 'mse'] as const) {
      const direct = observe(m, data.laplace);
      expect(rangeFromSummary(r, m, { percentile: 99.9 })).toEqual(direct.range);
    }
    expect(rangeFromSummary(r, 'minmax')).toEqual([r.min, r.max]);
    const mm = observe('minmax', data.laplace);
    expect(mm.histogram).toBeUndefined();
    expect(rangeFromSummary(mm, 'minmax')).toEqual([mm.min, mm.max]);
    expect(() => rangeFromSummary(mm, 'entropy')).toThrow(InputError);
  });

  it('moving-average minmax follows per-batch extremes', () => {
    const o = makeObserver('minmax', { ...S, movingAverage: 0.5 });
    o.update(Float32Array.of(-1, 1));
    o.update(Float32Array.of(-3, 3));
    const r = o.result();
    expect(r.range).toEqual([-2, 2]);
    expect([r.min, r.max]).toEqual([-3, 3]);
  });
});

describe('streaming', () => {
  it('batch sizes 1, 7 and 64 give the same table entries (minmax exact, histograms identical)', () => {
    const rng = new Rng(5);
    // Later batches exceed the range seen so far: the histogram must re-bin.
    const x = new Float32Array(4096).map((_, i) => rng.normal() * (1 + i / 256));
    for (const m of ['minmax', 'percentile', 'entropy', 'mse'] as const) {
      const ref = observe(m, x, x.length);
      for (const b of [1, 7, 64]) {
        const r = observe(m, x, b);
        expect([r.min, r.max, r.count]).toEqual([ref.min, ref.max, ref.count]);
        expect(r.histogram).toEqual(ref.histogram);
        // minmax keeps no histogram: its range is exact.
        const w = ref.histogram ? (ref.histogram.hi - ref.histogram.lo) / ref.histogram.counts.length : 0;
        expect(Math.abs(r.range[0] - ref.range[0])).toBeLessThanOrEqual(w);
        expect(Math.abs(r.range[1] - ref.range[1])).toBeLessThanOrEqual(w);
        expect(r.meanSquare).toBeCloseTo(ref.meanSquare!, 9);
      }
    }
  });

  it('the histogram grid is the smallest power-of-two width holding all values, with at least half the bins occupied', () => {
    const h = new StreamingHistogram(64);
    h.add(Float32Array.of(0.1, 0.2), Math.fround(0.1), Math.fround(0.2));
    h.add(Float32Array.of(-5, 7), -5, 7);
    const s = h.summary()!;
    const w = (s.hi - s.lo) / s.counts.length;
    expect(Number.isInteger(Math.log2(w))).toBe(true);
    expect(s.counts.length).toBeGreaterThan(32);
    expect(s.counts.reduce((a, b) => a + b, 0)).toBe(4);
    expect(s.lo).toBeLessThanOrEqual(-5);
    expect(s.hi).toBeGreaterThan(7);
  });

  it('a constant tensor gets a one-bin histogram and its value as range for every method', () => {
    for (const m of ['minmax', 'percentile', 'entropy', 'mse'] as const) {
      const r = observe(m, new Float32Array(100).fill(2.5), 7);
      expect(r.range).toEqual([2.5, 2.5]);
      if (m === 'minmax') expect(r.histogram).toBeUndefined();
      else expect(r.histogram!.counts).toEqual([100]);
    }
  });

  it('NaN, ±Inf and float32-min mask fills are excluded and flagged; ranges stay finite', () => {
    const x = Float32Array.of(-Infinity, 1, 2, NaN, -3.4028234663852886e38, -1, Infinity, 0.5);
    for (const m of ['minmax', 'percentile', 'entropy', 'mse'] as const) {
      const r = observe(m, x, 3);
      expect(r.nonFinite).toBe(true);
      expect(r.nonFiniteCount).toBe(4);
      expect([r.min, r.max, r.count]).toEqual([-1, 2, 4]);
      expect(r.range.every(Number.isFinite)).toBe(true);
    }
    const all = observe('entropy', Float32Array.of(-Infinity, NaN));
    expect(all.range).toEqual([0, 0]);
    expect(all.count).toBe(0);
  });

  it('absHistogram folds the signed grid and keeps the mass', () => {
    const r = observe('percentile', sample('gauss', 9));
    const a = absHistogram(r.histogram!, Math.max(-r.min, r.max), 2048);
    expect(a.reduce((s, c) => s + c, 0)).toBeCloseTo(N, 6);
    expect(a.length).toBe(2048);
  });
});
