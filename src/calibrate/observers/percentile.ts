import { absHistogram, binWidth, histogramQuantile } from './histogram.js';
import { histogramObserver, type Observer, type RangeRule, type RangeSettings } from './observer.js';

/**
 * The `percentile` range: the (100−p)th and pth percentiles of x, or ±(pth percentile of |x|) when
 * symmetric; read off the histogram with linear interpolation inside a bin, so within one bin width
 * of the exact quantile. Clipped to the observed extremes.
 */
export const percentileRange: RangeRule = (e, s) => {
  const h = e.histogram;
  if (!h) return [e.min, e.max];
  const q = s.percentile / 100;
  if (s.symmetric) {
    const amax = Math.max(Math.abs(e.min), Math.abs(e.max));
    const bins = s.bins;
    const a = Math.min(amax, histogramQuantile(absHistogram(h, amax, bins), 0, amax / bins, q));
    return [-a, a];
  }
  const w = binWidth(h);
  const lo = Math.max(e.min, histogramQuantile(h.counts, h.lo, w, 1 - q));
  const hi = Math.min(e.max, histogramQuantile(h.counts, h.lo, w, q));
  return lo <= hi ? [lo, hi] : [e.min, e.max];
};

export function percentileObserver(s: RangeSettings): Observer {
  return histogramObserver('percentile', percentileRange, s);
}
