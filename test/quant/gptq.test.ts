import { describe, expect, it } from 'vitest';
import {
  choleskyInPlace,
  dequantizeGptq,
  gptq,
  choleskyBlocked,
  invertLowerBlocked,
  jsMatMul,
  jsMatMulSync,
  upperCholeskyOfInverseWith,
  gptqWeight,
  invertLowerInPlace,
  layerOutputError,
  quantizeValue,
  quantRange,
  quantizeWeight,
  upperCholeskyOfInverse,
  type WeightQuantSpec,
} from '../../src/quant/index.js';
import { Rng } from '../../src/tensor/index.js';

/** H = 2·XᵀX/m for m rows of correlated inputs with a few outlier channels (as real layer inputs are). */
function hessianOf(k: number, m: number, seed: number, dead: number[] = []): Float64Array {
  const rng = new Rng(seed);
  const mix = Array.from({ length: k * k }, () => rng.normal() * 0.4);
  const h = new Float64Array(k * k);
  const x = new Float64Array(k);
  for (let r = 0; r < m; r++) {
    const z = Array.from({ length: k }, () => rng.normal());
    for (let i = 0; i < k; i++) {
      let s = z[i];
      for (let j = 0; j < k; j++) s += mix[i * k + j] * z[j];
      x[i] = dead.includes(i) ? 0 : i % 7 === 3 ? 5 * s : s;
    }
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) h[i * k + j] += (2 * x[i] * x[j]) / m;
  }
  return h;
}

function randomWeight(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * 0.05);
}

/** Gauss-Jordan inverse (reference only). */
function inverse(a: Float64Array, n: number): Float64Array {
  const m = Float64Array.from(a);
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]) > Math.abs(m[p * n + c])) p = r;
    for (let j = 0; j < n; j++) {
      [m[c * n + j], m[p * n + j]] = [m[p * n + j], m[c * n + j]];
      [inv[c * n + j], inv[p * n + j]] = [inv[p * n + j], inv[c * n + j]];
    }
    const d = m[c * n + c];
    for (let j = 0; j < n; j++) {
      m[c * n + j] /= d;
      inv[c * n + j] /= d;
    }
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r * n + c];
      for (let j = 0; j < n; j++) {
        m[r * n + j] -= f * m[c * n + j];
        inv[r * n + j] -= f * inv[c * n + j];
      }
    }
  }
  return inv;
}

/**
 * Optimal Brain Quantizer, the slow closed form GPTQ reorganises: for each column in order, quantize it
 * and move the remaining columns by δ_F = −(w_i − q_i)/[H_F⁻¹]_ii · (H_F⁻¹)_{i,:}, with H_F⁻¹ re-inverted
 * from scratch on the remaining columns F every step. Per-channel, symmetric 4-bit (scale from the row).
 */
function obqReference(w: Float32Array, rows: number, k: number, h: Float64Array, dampRel: number, spec: { scale: (row: Float64Array) => [number, number] }): Float32Array {
  let mean = 0;
  for (let i = 0; i < k; i++) mean += h[i * k + i] / k;
  const hd = Float64Array.from(h);
  for (let i = 0; i < k; i++) hd[i * k + i] += dampRel * mean;
  const range = quantRange('int4');
  const out = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const row = Float64Array.from(w.subarray(r * k, (r + 1) * k));
    const [s, z] = spec.scale(row);
    for (let i = 0; i < k; i++) {
      const f = k - i;
      const sub = new Float64Array(f * f);
      for (let a = 0; a < f; a++) for (let b = 0; b < f; b++) sub[a * f + b] = hd[(i + a) * k + i + b];
      const inv = inverse(sub, f);
      const deq = Math.fround((quantizeValue(row[i], s, z, range) - z) * s);
      const e = (row[i] - deq) / inv[0];
      for (let b = 0; b < f; b++) row[i + b] -= e * inv[b];
      row[i] = deq;
      out[r * k + i] = deq;
    }
  }
  return out;
}

function canonical(k: number, groups: number): { colGroup: Int32Array; colGroups: number } {
  const per = k / groups;
  return { colGroup: Int32Array.from({ length: k }, (_, j) => Math.floor(j / per)), colGroups: groups };
}

describe('linalg', () => {
  it('Cholesky, triangular inverse and the upper factor of H⁻¹ match their definitions', () => {
    const n = 37;
    const h = hessianOf(n, 200, 1);
    for (let i = 0; i < n; i++) h[i * n + i] += 0.01;
    const l = Float64Array.from(h);
    expect(choleskyInPlace(l, n)).toBe(true);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += l[i * n + k] * l[j * n + k];
        expect(s).toBeCloseTo(h[i * n + j], 9);
      }
    }
    const li = Float64Array.from(l);
    invertLowerInPlace(li, n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += li[i * n + k] * l[k * n + j];
        expect(s).toBeCloseTo(i === j ? 1 : 0, 9);
      }
    }
    const u = upperCholeskyOfInverse(Float64Array.from(h), n)!;
    const hinv = inverse(h, n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (j < i) expect(u[i * n + j]).toBe(0);
        let s = 0;
        for (let k = 0; k < n; k++) s += u[k * n + i] * u[k * n + j];
        expect(s).toBeCloseTo(hinv[i * n + j], 7);
      }
    }
  });

  it('blocked factorizations through a matmul engine equal the unblocked ones', async () => {
    const n = 45;
    const h = hessianOf(n, 300, 13);
    for (let i = 0; i < n; i++) h[i * n + i] += 0.05;
    // A counting engine: the blocked code must route its products through it.
    let calls = 0;
    const engine = async (a: Float32Array, b: Float32Array, m: number, k: number, nn: number) => {
      calls++;
      return jsMatMulSync(a, b, m, k, nn);
    };
    const ref = upperCholeskyOfInverse(Float64Array.from(h), n)!;
    const got = (await upperCholeskyOfInverseWith(Float64Array.from(h), n, engine, 8))!;
    expect(calls).toBeGreaterThan(10);
    let maxRel = 0;
    let maxRef = 0;
    for (let i = 0; i < n * n; i++) maxRef = Math.max(maxRef, Math.abs(ref[i]));
    for (let i = 0; i < n * n; i++) maxRel = Math.max(maxRel, Math.abs(got[i] - ref[i]) / maxRef);
    expect(maxRel).toBeLessThan(1e-4);
    const l = Float64Array.from(h);
    expect(await choleskyBlocked(l, n, jsMatMul, 8)).toBe(true);
    const l2 = Float64Array.from(h);
    choleskyInPlace(l2, n);
    for (let i = 0; i < n * n; i++) expect(l[i]).toBeCloseTo(l2[i], 4);
    await invertLowerBlocked(l, n, jsMatMul, 8);
    invertLowerInPlace(l2, n);
    for (let i = 0; i < n * n; i++) expect(l[i]).toBeCloseTo(l2[i], 3);
  });

  it('reports a matrix that is not positive definite', () => {
    const a = Float64Array.from([1, 2, 2, 1]);
    expect(choleskyInPlace(a, 2)).toBe(false);
  });
});

describe('gptq', () => {
  it('the engine path (all rows, lazy updates as products) gives the same integers as the row-chunked JS path', async () => {
    const k = 300;
    const rows = 500;
    const h = hessianOf(k, 600, 14);
    const w = randomWeight(rows * k, 15);
    const problem = { w, rows, cols: k, hessians: [h], ...canonical(k, k / 30), bits: 4 as const, symmetric: true };
    const js = await gptq(problem, { blockSize: 64 });
    const eng = await gptq(problem, { blockSize: 64, engine: jsMatMul });
    let differ = 0;
    for (let i = 0; i < js.q.length; i++) if (js.q[i] !== eng.q[i]) differ++;
    // float32 products and float64 loops round differently: a rare tie may flip.
    expect(differ / js.q.length).toBeLessThan(1e-3);
  });

  it('equals the Optimal Brain Quantizer closed form (re-inverted H each step) on a tiny layer, for any lazy block size', async () => {
    const k = 12;
    const rows = 3;
    const h = hessianOf(k, 80, 2);
    const w = randomWeight(rows * k, 3);
    const scaleOf = (row: ArrayLike<number>): [number, number] => {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < row.length; i++) {
        lo = Math.min(lo, row[i]);
        hi = Math.max(hi, row[i]);
      }
      const absMax = Math.abs(hi) > Math.abs(lo) ? hi : lo;
      return [Math.fround(absMax / -8), 0];
    };
    const ref = obqReference(w, rows, k, h, 0.01, { scale: scaleOf });
    for (const blockSize of [1, 5, 128]) {
      const problem = { w, rows, cols: k, hessians: [h], ...canonical(k, 1), bits: 4 as const, symmetric: true };
      const res = await gptq(problem, { blockSize, actOrder: false });
      const deq = dequantizeGptq(res, problem);
      for (let i = 0; i < ref.length; i++) expect(deq[i]).toBeCloseTo(ref[i], 6);
    }
  });

  it('is never worse than round-to-nearest on Σ Δwᵀ H Δw, and no better than the brute-force optimum on the same grid', async () => {
    const k = 4;
    const rows = 2;
    const h = hessianOf(k, 30, 4);
    const w = randomWeight(rows * k, 5);
    const spec: WeightQuantSpec = { bits: 4, symmetric: true, granularity: 'channel', axis: 0 };
    const rtn = quantizeWeight(w, [rows, k], spec);
    const res = await gptqWeight(w, [rows, k], spec, [h], { rtn, dampRel: 0 })!;
    expect(res.errorGptq).toBeLessThanOrEqual(res.errorRtn + 1e-15);
    const deq = Array.from(res.quantized.q, (q, i) => Math.fround(q * res.quantized.scales[Math.floor(i / k)]));
    expect(layerOutputError(w, deq, rows, k, [h])).toBeCloseTo(res.errorGptq, 14);
    // Brute force over every int4 vector on GPTQ's grid (the scale is the row's RTN scale).
    const qw = quantizeWeight(w, [rows, k], spec);
    let best = 0;
    for (let r = 0; r < rows; r++) {
      const s = qw.scales[r];
      let rowBest = Infinity;
      const d = new Float64Array(k);
      for (let code = 0; code < 16 ** k; code++) {
        let c = code;
        for (let j = 0; j < k; j++) {
          d[j] = Math.fround(((c % 16) - 8) * s) - w[r * k + j];
          c = Math.floor(c / 16);
        }
        let e = 0;
        for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) e += d[i] * h[i * k + j] * d[j];
        rowBest = Math.min(rowBest, e);
      }
      best += rowBest;
    }
    expect(best).toBeLessThanOrEqual(res.errorGptq + 1e-15);
  });

  it('lowers the layer output error on random layers at 4 bits (blocks, with act-order) and 8 bits (per channel)', async () => {
    const k = 64;
    const n = 24;
    const h = hessianOf(k, 400, 6);
    const w = randomWeight(n * k, 7);
    const specs: WeightQuantSpec[] = [
      { bits: 4, symmetric: true, granularity: 'block', axis: 0, blockSize: 16 },
      { bits: 4, symmetric: false, granularity: 'block', axis: 0, blockSize: 32 },
      { bits: 8, symmetric: true, granularity: 'channel', axis: 1 },
    ];
    for (const spec of specs) {
      const rtn = quantizeWeight(w, [k, n], spec);
      for (const actOrder of [false, true]) {
        const res = await gptqWeight(w, [k, n], spec, [h], { rtn, actOrder, blockSize: 16 })!;
        expect(res.errorGptq).toBeLessThan(0.8 * res.errorRtn);
        expect(res.rtnRows).toBeLessThan(n / 4);
        // Same storage shape as round-to-nearest, and every stored integer in range.
        const ref = quantizeWeight(w, [k, n], spec);
        expect(res.quantized.scaleDims).toEqual(ref.scaleDims);
        expect(res.quantized.type).toBe(ref.type);
        for (const v of res.quantized.q) {
          expect(v).toBeGreaterThanOrEqual(ref.range.qmin);
          expect(v).toBeLessThanOrEqual(ref.range.qmax);
        }
      }
    }
  });

  it('handles dead input columns (zero Hessian row) without NaN and keeps their weights', async () => {
    const k = 16;
    const n = 4;
    const h = hessianOf(k, 100, 8, [2, 9]);
    const w = randomWeight(n * k, 9);
    const spec: WeightQuantSpec = { bits: 4, symmetric: true, granularity: 'block', axis: 1, blockSize: 16 };
    const rtn = quantizeWeight(w, [n, k], spec);
    const res = await gptqWeight(w, [n, k], spec, [h], { rtn })!;
    expect(res.deadColumns).toBe(2);
    expect(Number.isFinite(res.errorGptq)).toBe(true);
    expect(res.errorGptq).toBeLessThanOrEqual(res.errorRtn);
    const deq = Array.from(res.quantized.q, (q, i) => q * res.quantized.scales[Math.floor(i / k)]);
    // A dead column is rounded, not zeroed (its input may be non-zero on data outside the calibration set).
    for (let r = 0; r < n; r++) expect(Math.abs(deq[r * k + 2] - w[r * k + 2])).toBeLessThanOrEqual(Math.abs(res.quantized.scales[r]) / 2 + 1e-7);
  });

  it('conv weights: per Hessian group, im2col column order', async () => {
    // [O=4, C/g=2, 2, 2], two groups: rows 0-1 use H0, rows 2-3 use H1.
    const dims = [4, 2, 2, 2];
    const k = 8;
    const hs = [hessianOf(k, 60, 10), hessianOf(k, 60, 11)];
    const w = randomWeight(32, 12);
    const spec: WeightQuantSpec = { bits: 8, symmetric: true, granularity: 'channel', axis: 0 };
    const rtn = quantizeWeight(w, dims, spec);
    const res = await gptqWeight(w, dims, spec, hs, { rtn })!;
    expect(res.errorGptq).toBeLessThanOrEqual(res.errorRtn);
    const deq = Array.from(res.quantized.q, (q, i) => Math.fround(q * res.quantized.scales[Math.floor(i / k)]));
    expect(layerOutputError(w, deq, 4, k, hs) / res.errorGptq).toBeCloseTo(1, 9);
  });
});
