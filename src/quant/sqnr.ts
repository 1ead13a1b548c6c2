/**
 * Expected quantization SQNR of a tensor from its calibration statistics (issue 11: decide by
 * measurement). SQNR = E[x²] / E[(x − Q(x))²] in dB, where Q is the affine grid the rewriter would
 * use for the tensor's range (activationParams: widened to include 0).
 *
 * With a histogram the expectation is taken over it: each bin's values are treated as uniform over
 * the bin, and the squared error of the grid (rounding inside the range, clipping outside) is
 * integrated exactly over the bin. Without one (minmax tables) the classic uniform-noise model is
 * used: E[e²] = step²/12 (the range covers every observed value, so nothing clips).
 *
 * 'log' domain: the tensor is non-negative and reaches a Log through ops that keep relative errors
 * (see rewrite/precision.ts); the error that matters is then log(Q(x) + ε) − log(x + ε), and SQNR is
 * E[log(x + ε)²] / E[(log(Q(x) + ε) − log(x + ε))²], taken at 8 points per histogram bin.
 */
import { affineParams, quantRange, type QuantType } from './affine.js';

export interface SqnrStats {
  /** Observed extremes. */
  readonly min: number;
  readonly max: number;
  /** E[x²] over all observed values. */
  readonly meanSquare?: number;
  /** Histogram of the values over [lo, hi], `counts.length` equal bins. */
  readonly histogram?: { readonly lo: number; readonly hi: number; readonly counts: readonly number[] };
}

export type SqnrDomain = { readonly kind: 'linear' } | { readonly kind: 'log'; readonly epsilon: number };

const LINEAR: SqnrDomain = { kind: 'linear' };

/** Decibels of a power ratio; +Infinity for a zero error, −Infinity for zero signal with error. */
export function toDb(signal: number, error: number): number {
  if (!(error > 0)) return Infinity;
  if (!(signal > 0)) return -Infinity;
  return 10 * Math.log10(signal / error);
}

/** The grid of an activation: asymmetric uint8 (default) or symmetric int8, as the rewriter emits it. */
export function activationGrid(range: readonly [number, number], type: QuantType = 'uint8'): { scale: number; zeroPoint: number; qmin: number; qmax: number } {
  const symmetric = type === 'int8' || type === 'int16' || type === 'int4';
  const r = quantRange(type, symmetric);
  const p = affineParams(range[0], range[1], r, symmetric);
  return { ...p, qmin: r.qmin, qmax: r.qmax };
}

/**
 * Expected SQNR (dB) of quantizing a tensor with these statistics onto the grid of `range`
 * (`type`, default uint8). +Infinity for a constant tensor that the grid holds exactly. `within`
 * limits the histogram to the interval the consumers can tell apart (rewrite/usefulInterval).
 */
export function expectedSqnrDb(
  stats: SqnrStats,
  range: readonly [number, number],
  type: QuantType = 'uint8',
  domain: SqnrDomain = LINEAR,
  within: readonly [number, number] = [-Infinity, Infinity],
): number {
  const g = activationGrid(range, type);
  const lo = (g.qmin - g.zeroPoint) * g.scale;
  const hi = (g.qmax - g.zeroPoint) * g.scale;
  const h = stats.histogram;
  if (domain.kind === 'log') return logDomainDb(stats, g.scale, lo, hi, domain.epsilon);
  if (!h || h.counts.length === 0 || !(h.hi > h.lo)) {
    const ms = stats.meanSquare;
    if (ms === undefined || !Number.isFinite(ms)) return NaN;
    if (stats.min === stats.max) {
      const e = stats.min - roundToGrid(stats.min, g.scale, lo, hi);
      return toDb(ms, e * e);
    }
    return toDb(ms, (g.scale * g.scale) / 12);
  }
  let signal = 0;
  let error = 0;
  const w = (h.hi - h.lo) / h.counts.length;
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i];
    if (!c) continue;
    // Only values inside `within` count (outside it the consumers saturate: no error can matter).
    const a0 = h.lo + i * w;
    const a = Math.max(a0, within[0]);
    const b = Math.min(a0 + w, within[1]);
    if (!(b >= a)) continue;
    const k = b > a ? (c * (b - a)) / w : c;
    signal += (k * (a * a + a * b + b * b)) / 3;
    error += k * meanSquaredGridError(a, b, g.scale, lo, hi);
  }
  return toDb(signal, error);
}

/** x on the grid {lo, lo + s, …, hi} (round to nearest, clamp). */
function roundToGrid(x: number, s: number, lo: number, hi: number): number {
  if (x <= lo) return lo;
  if (x >= hi) return hi;
  return lo + Math.round((x - lo) / s) * s;
}

/** ∫_c^d (u − g)² du. */
function sqIntegral(c: number, d: number, g: number): number {
  return ((d - g) ** 3 - (c - g) ** 3) / 3;
}

/**
 * Mean of (u − Q(u))² for u uniform on [a, b]: exact, split at the grid's rounding boundaries; when the
 * bin spans more than 16 grid steps the inside part uses s²/12 (the exact mean over whole steps).
 */
export function meanSquaredGridError(a: number, b: number, s: number, lo: number, hi: number): number {
  if (!(b > a)) {
    const e = a - roundToGrid(a, s, lo, hi);
    return e * e;
  }
  let total = 0;
  // Clipped parts.
  if (a < lo) total += sqIntegral(a, Math.min(b, lo), lo);
  if (b > hi) total += sqIntegral(Math.max(a, hi), b, hi);
  const c = Math.max(a, lo);
  const d = Math.min(b, hi);
  if (d > c) {
    if ((d - c) / s > 16) total += ((d - c) * s * s) / 12;
    else {
      let u = c;
      while (u < d) {
        const g = roundToGrid(u, s, lo, hi);
        const edge = Math.min(d, g + s / 2);
        const next = edge > u ? edge : d;
        total += sqIntegral(u, next, g);
        u = next;
      }
    }
  }
  return total / (b - a);
}

function logDomainDb(stats: SqnrStats, s: number, lo: number, hi: number, eps: number): number {
  const h = stats.histogram;
  const f = (x: number) => Math.log(Math.max(x, 0) + eps);
  let signal = 0;
  let error = 0;
  const add = (x: number, weight: number) => {
    const y = f(x);
    const e = f(roundToGrid(x, s, lo, hi)) - y;
    signal += weight * y * y;
    error += weight * e * e;
  };
  if (!h || h.counts.length === 0 || !(h.hi > h.lo)) {
    // No histogram: the two extremes, equally weighted (a coarse bound; min is what log magnifies).
    add(stats.min, 1);
    add(stats.max, 1);
    return toDb(signal, error);
  }
  const w = (h.hi - h.lo) / h.counts.length;
  const points = 8;
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i];
    if (!c) continue;
    for (let k = 0; k < points; k++) add(h.lo + (i + (k + 0.5) / points) * w, c / points);
  }
  return toDb(signal, error);
}

/** SQNR (dB) of a weight against its fake-quantized copy. */
export function weightSqnrDb(w: Float32Array, wq: Float32Array): number {
  let signal = 0;
  let error = 0;
  for (let i = 0; i < w.length; i++) {
    const d = w[i] - wq[i];
    signal += w[i] * w[i];
    error += d * d;
  }
  return toDb(signal, error);
}

/**
 * The default floor (dB) below which a tensor is kept at higher precision: 20 dB, an error of one
 * tenth of the signal's RMS. It is the same number as the default output fidelity floor (SQNR 20 dB,
 * cosine ≈ 0.995): a tensor whose own rounding error is below the floor the output must reach cannot
 * give an output above it (its error reaches the output unless later layers happen to discard it).
 * Not tuned on any model; `minTensorSqnrDb` changes it.
 */
export const DEFAULT_MIN_TENSOR_SQNR_DB = 20;

/** The cosine similarity an SQNR corresponds to when the error is uncorrelated with the signal: 1/√(1 + 10^(−dB/10)). */
export function cosineOfSqnrDb(db: number): number {
  return 1 / Math.sqrt(1 + 10 ** (-db / 10));
}
