import type { CalibrationMethod, HistogramSummary, TensorRange } from '../../documents/index.js';
import { StreamingHistogram } from './histogram.js';
import { calibrationKernel } from './kernel.js';

/** Batches smaller than this stay in JavaScript (copying them into the kernel costs more than it saves). */
const KERNEL_MIN_VALUES = 4096;

/**
 * Values with |x| at or above 2⁶⁴ ≈ 1.8e19 are treated like ±Inf (float32-min/max mask fills):
 * excluded, flagged. Derived, not tuned: 2⁶⁴ = √(2¹²⁸) is where x² overflows float32, so no float32
 * model can use such a value as a signal (any square, variance, norm or power of it is already inf);
 * float32-min fills (−3.4e38) lie far beyond it. Finite fills below it (−1e9, −1e4) are ordinary
 * values here; the rewriter recognises them by structure (rewrite/precision.ts).
 */
export const EXTREME_ABS = 2 ** 64;

/** Online statistics of one tensor: constant memory, one update per batch. */
/** [count, min, max, Σx²] of a batch computed elsewhere (inside the graph): all values finite, inside [min, max], below EXTREME_ABS. */
export type CleanStats = readonly [count: number, min: number, max: number, sumSquares: number];

export interface Observer {
  /** Fold in a batch; with its clean statistics known (`stats`), histogram observers skip their own scan for the extremes. */
  update(x: Float32Array, stats?: CleanStats): void;
  /**
   * Fold in a batch already reduced elsewhere (inside the graph): `count` finite values with these
   * extremes and sum of squares. Only observers without a histogram (minmax) have it.
   */
  updateStats?(count: number, min: number, max: number, sumSquares: number): void;
  result(): TensorRange;
}

/** Settings the range rules read; all have defaults in CalibrateOptionsSchema. */
export interface RangeSettings {
  percentile: number;
  symmetric: boolean;
  bins: number;
}

/** Picks a range from collected statistics (histogram summary, extremes). */
export type RangeRule = (entry: Omit<TensorRange, 'range' | 'method'>, settings: RangeSettings) => [number, number];

/**
 * Count, finite extremes, E[x²] and the non-finite count of a stream of values; optionally a histogram.
 * Values that are NaN, ±Inf or |x| ≥ EXTREME_ABS are excluded from everything and counted apart.
 */
export class RunningStats {
  count = 0;
  min = Infinity;
  max = -Infinity;
  sumSquares = 0;
  nonFinite = 0;
  /** Extremes of the last update's finite values (for moving averages). */
  batchMin = Infinity;
  batchMax = -Infinity;
  readonly histogram?: StreamingHistogram;

  constructor(histogramBins?: number) {
    if (histogramBins) this.histogram = new StreamingHistogram(histogramBins);
  }

  update(x: Float32Array, stats?: CleanStats): void {
    // The WebAssembly kernel scans and bins one copy of the batch; without it, the JavaScript loops below.
    const kernel = x.length >= KERNEL_MIN_VALUES ? calibrationKernel() : undefined;
    if (kernel) kernel.load(x, this.histogram?.binCount ?? 0);
    const binner = kernel ? (inv: number, off: number, out: Uint32Array) => kernel.bin(inv, off, out) : undefined;
    if (stats) {
      const [n, lo, hi, ss] = stats;
      this.addStats(n, lo, hi, ss);
      if (this.histogram && lo <= hi) this.histogram.add(x, lo, hi, true, binner);
      return;
    }
    // Fast branch-free pass; NaN/Inf/extreme values poison lo/hi/ss, and only then the careful pass runs.
    let lo = Infinity;
    let hi = -Infinity;
    let ss = 0;
    const n = x.length;
    if (kernel) [lo, hi, ss] = kernel.scan();
    else {
      for (let k = 0; k < n; k++) {
        const v = x[k];
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
        ss += v * v;
      }
    }
    let bad = 0;
    const clean = n === 0 || (lo > -EXTREME_ABS && hi < EXTREME_ABS && Number.isFinite(ss));
    if (!clean) {
      lo = Infinity;
      hi = -Infinity;
      ss = 0;
      for (let k = 0; k < n; k++) {
        const v = x[k];
        if (v > -EXTREME_ABS && v < EXTREME_ABS) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
          ss += v * v;
        } else bad++;
      }
    }
    this.nonFinite += bad;
    this.addStats(n - bad, lo, hi, ss);
    if (this.histogram && lo <= hi) this.histogram.add(x, lo, hi, clean, clean ? binner : undefined);
  }

  /** Fold in a batch of `n` finite values summarised elsewhere (no histogram update). */
  addStats(n: number, lo: number, hi: number, ss: number): void {
    this.count += n;
    this.sumSquares += ss;
    this.batchMin = lo;
    this.batchMax = hi;
    if (lo < this.min) this.min = lo;
    if (hi > this.max) this.max = hi;
  }

  /** The statistics part of a table entry (extremes 0 when nothing finite was seen). */
  entry(): Omit<TensorRange, 'range' | 'method'> {
    const seen = this.count > 0;
    const e: Omit<TensorRange, 'range' | 'method'> = {
      min: seen ? this.min : 0,
      max: seen ? this.max : 0,
      count: this.count,
      meanSquare: seen ? this.sumSquares / this.count : 0,
    };
    const h = this.histogram?.summary();
    if (h) e.histogram = h;
    if (this.nonFinite > 0) {
      e.nonFinite = true;
      e.nonFiniteCount = this.nonFinite;
    }
    return e;
  }
}

/** An observer that keeps RunningStats with a histogram and applies a range rule at the end. */
export function histogramObserver(method: CalibrationMethod, rule: RangeRule, settings: RangeSettings): Observer {
  const stats = new RunningStats(2 * settings.bins);
  return {
    update: (x, clean) => stats.update(x, clean),
    result() {
      const e = stats.entry();
      return { range: finiteRange(rule(e, settings), e), method, ...e };
    },
  };
}

/** Guard: a range is finite, ordered and inside the observed extremes' hull; otherwise the observed range. */
export function finiteRange(r: [number, number], e: { min: number; max: number }): [number, number] {
  let [lo, hi] = r;
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) [lo, hi] = [e.min, e.max];
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 0];
  return [lo, hi];
}
