import { absHistogram } from './histogram.js';
import { histogramObserver, type Observer, type RangeRule, type RangeSettings } from './observer.js';

/** Quantized levels of TensorRT's KL calibration. */
export const ENTROPY_LEVELS = 128;

/**
 * TensorRT's KL-divergence threshold over a histogram of |x| (`hist`, equal bins from 0), as in
 * Migacz, "8-bit Inference with TensorRT" (2017): for each candidate i from `levels` to hist.length,
 * P = hist[0:i] with the outliers hist[i:] added to bin i−1; Q = hist[0:i] (without the outliers)
 * merged into `levels` groups and expanded back, each group's mass spread evenly over its non-empty
 * bins; both normalised; the i minimising KL(P‖Q) wins (a candidate where P has mass and Q none is
 * skipped). Returns that i: the threshold is i bins.
 */
export function klThresholdBins(hist: Float64Array, levels = ENTROPY_LEVELS): number {
  const n = hist.length;
  if (n <= levels) return n;
  // With prefix sums, KL·|P| = Σ p·log p − Σ_groups P_g·log(q_g) + |P|·log(|Q|/|P|), O(levels) per candidate.
  const mass = new Float64Array(n + 1);
  const nonzero = new Float64Array(n + 1);
  const plogp = new Float64Array(n + 1);
  for (let k = 0; k < n; k++) {
    const p = hist[k];
    mass[k + 1] = mass[k] + p;
    nonzero[k + 1] = nonzero[k] + (p > 0 ? 1 : 0);
    plogp[k + 1] = plogp[k] + (p > 0 ? p * Math.log(p) : 0);
  }
  const total = mass[n];
  if (total <= 0) return n;
  let best = n;
  let bestKl = Infinity;
  for (let i = levels; i <= n; i++) {
    const outliers = total - mass[i];
    if (outliers > 0 && hist[i - 1] <= 0) continue;
    const qTotal = mass[i];
    if (qTotal <= 0) continue;
    const last = hist[i - 1] + outliers;
    let kl = plogp[i - 1] + (last > 0 ? last * Math.log(last) : 0);
    const merged = i / levels;
    for (let g = 0; g < levels; g++) {
      const start = Math.floor(g * merged);
      const stop = g === levels - 1 ? i : Math.floor((g + 1) * merged);
      const m = mass[stop] - mass[start];
      const nz = nonzero[stop] - nonzero[start];
      if (nz <= 0 || m <= 0) continue;
      const pMass = stop === i ? m + outliers : m;
      kl -= pMass * Math.log(m / nz);
    }
    kl = kl / total + Math.log(qTotal / total);
    if (kl < bestKl - 1e-12) {
      bestKl = kl;
      best = i;
    }
  }
  return best;
}

/**
 * The `entropy` range: the KL threshold t on a `bins`-bin histogram of |x| over [0, max|x|] with 128
 * levels (TensorRT), as [−t, t] when symmetric, else the observed range clipped to ±t.
 */
export const entropyRange: RangeRule = (e, s) => {
  const h = e.histogram;
  if (!h) return [e.min, e.max];
  const amax = Math.max(Math.abs(e.min), Math.abs(e.max));
  if (!(amax > 0)) return [e.min, e.max];
  const t = (klThresholdBins(absHistogram(h, amax, s.bins)) * amax) / s.bins;
  return s.symmetric ? [-t, t] : [Math.max(e.min, -t), Math.min(e.max, t)];
};

export function entropyObserver(s: RangeSettings): Observer {
  return histogramObserver('entropy', entropyRange, s);
}
