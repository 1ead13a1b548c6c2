import type { TensorRange } from '../../documents/index.js';
import { RunningStats, finiteRange, type Observer, type RangeRule } from './observer.js';

/** The observed finite extremes. */
export const minmaxRange: RangeRule = (e) => [e.min, e.max];

/**
 * min/max observer. With `movingAverage` c in (0, 1], the range follows an exponential moving average
 * of per-batch extremes (min += c·(batchMin − min)); the table's min/max stay the true extremes.
 * Keeps no histogram unless `histogramBins` is given: calibrate() computes minmax inside the graph and
 * never sees the values, so a minmax table cannot recompute another method's range (rangeFromSummary
 * refuses); calibrate with percentile/entropy/mse to get histograms.
 */
export function minmaxObserver(opts: { movingAverage?: number; histogramBins?: number } = {}): Observer {
  const stats = new RunningStats(opts.histogramBins);
  const c = opts.movingAverage ?? 0;
  let emaLo = NaN;
  let emaHi = NaN;
  const follow = () => {
    if (c > 0 && stats.batchMin <= stats.batchMax) {
      if (Number.isNaN(emaLo)) {
        emaLo = stats.batchMin;
        emaHi = stats.batchMax;
      } else {
        emaLo += c * (stats.batchMin - emaLo);
        emaHi += c * (stats.batchMax - emaHi);
      }
    }
  };
  return {
    update(x, clean) {
      stats.update(x, clean);
      follow();
    },
    updateStats(count, min, max, sumSquares) {
      stats.addStats(count, min, max, sumSquares);
      follow();
    },
    result(): TensorRange {
      const e = stats.entry();
      const r: [number, number] = c > 0 && !Number.isNaN(emaLo) ? [emaLo, emaHi] : [e.min, e.max];
      return { range: finiteRange(r, e), method: 'minmax', ...e };
    },
  };
}
