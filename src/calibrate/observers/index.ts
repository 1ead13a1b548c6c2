import { InputError } from '../../errors.js';
import { CalibrateOptionsSchema, type CalibrationMethod, type TensorRange } from '../../documents/index.js';
import { entropyRange } from './entropy.js';
import { minmaxRange } from './minmax.js';
import { mseRange } from './mse.js';
import { finiteRange, type RangeRule, type RangeSettings } from './observer.js';
import { percentileRange } from './percentile.js';

export * from './observer.js';
export * from './histogram.js';
export { calibrationKernel, resetCalibrationKernel, CalibrationKernel } from './kernel.js';
export { makeObserver, type ObserverSettings } from './make.js';
export { minmaxObserver, minmaxRange } from './minmax.js';
export { percentileObserver, percentileRange } from './percentile.js';
export { entropyObserver, entropyRange, klThresholdBins, ENTROPY_LEVELS } from './entropy.js';
export { mseObserver, mseRange, mseThresholdBins } from './mse.js';

const DEFAULTS = CalibrateOptionsSchema.parse({});

export const RANGE_RULES: ReadonlyMap<CalibrationMethod, RangeRule> = new Map<CalibrationMethod, RangeRule>([
  ['minmax', minmaxRange],
  ['percentile', percentileRange],
  ['entropy', entropyRange],
  ['mse', mseRange],
]);

/**
 * Recompute a table entry's range with another method from its stored statistics (histogram summary
 * and extremes), without rerunning the model. Settings default to CalibrateOptionsSchema's defaults.
 * Entries of a minmax table carry no histogram: only 'minmax' can be recomputed from them, any other
 * method throws InputError E_NO_HISTOGRAM.
 */
export function rangeFromSummary(entry: Omit<TensorRange, 'range' | 'method'>, method: CalibrationMethod, opts: Partial<RangeSettings> = {}): [number, number] {
  if (method !== 'minmax' && !entry.histogram && entry.count > 0) {
    throw new InputError('E_NO_HISTOGRAM', `table entry has no histogram: expected a table calibrated with percentile, entropy or mse to recompute a ${method} range (minmax tables keep only extremes)`);
  }
  const s: RangeSettings = { percentile: opts.percentile ?? DEFAULTS.percentile, symmetric: opts.symmetric ?? DEFAULTS.symmetric, bins: opts.bins ?? DEFAULTS.bins };
  return finiteRange(RANGE_RULES.get(method)!(entry, s), entry);
}
