import { absHistogram } from './histogram.js';
import { histogramObserver, type Observer, type RangeRule, type RangeSettings } from './observer.js';

/**
 * The clip c (in bins of `hist`, a histogram of |x| with bins of width `step` from 0) minimising the
 * 8-bit quantization MSE E[(x − Q_c(x))²]: values inside [0, c] cost the rounding noise Δ²/12 with
 * Δ = c·`stepsPerUnit`, values beyond c cost (x − c)² (at bin centres). O(bins) with suffix sums.
 */
export function mseThresholdBins(hist: Float64Array, step: number, deltaPerClip: number): number {
  const n = hist.length;
  // Suffix sums of count, count·x, count·x² at bin centres.
  const s0 = new Float64Array(n + 1);
  const s1 = new Float64Array(n + 1);
  const s2 = new Float64Array(n + 1);
  for (let k = n - 1; k >= 0; k--) {
    const x = (k + 0.5) * step;
    s0[k] = s0[k + 1] + hist[k];
    s1[k] = s1[k + 1] + hist[k] * x;
    s2[k] = s2[k + 1] + hist[k] * x * x;
  }
  let best = n;
  let bestErr = Infinity;
  for (let i = 1; i <= n; i++) {
    const c = i * step;
    const delta = c * deltaPerClip;
    const inside = s0[0] - s0[i];
    const clipped = s2[i] - 2 * c * s1[i] + c * c * s0[i];
    const err = (inside * delta * delta) / 12 + clipped;
    if (err < bestErr) {
      bestErr = err;
      best = i;
    }
  }
  return best;
}

/**
 * The `mse` range: the clip c minimising 8-bit quantization MSE, measured on a `bins`-bin histogram of
 * |x|. Two-sided data (or `symmetric`) quantizes [−c, c] (Δ = 2c/255), one-sided data [0, c] (Δ = c/255).
 */
export const mseRange: RangeRule = (e, s) => {
  const h = e.histogram;
  if (!h) return [e.min, e.max];
  const amax = Math.max(Math.abs(e.min), Math.abs(e.max));
  if (!(amax > 0)) return [e.min, e.max];
  const twoSided = s.symmetric || (e.min < 0 && e.max > 0);
  const step = amax / s.bins;
  const c = mseThresholdBins(absHistogram(h, amax, s.bins), step, twoSided ? 2 / 255 : 1 / 255) * step;
  return s.symmetric ? [-c, c] : [Math.max(e.min, -c), Math.min(e.max, c)];
};

export function mseObserver(s: RangeSettings): Observer {
  return histogramObserver('mse', mseRange, s);
}
