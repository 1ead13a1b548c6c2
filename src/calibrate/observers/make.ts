import { InternalError } from '../../errors.js';
/** Observer construction by method. Imports no zod schemas: the observer worker threads load only this. */
import type { CalibrationMethod } from '../../documents/index.js';
import { entropyObserver } from './entropy.js';
import { minmaxObserver } from './minmax.js';
import { mseObserver } from './mse.js';
import type { Observer, RangeSettings } from './observer.js';
import { percentileObserver } from './percentile.js';

export interface ObserverSettings extends RangeSettings {
  movingAverage: number;
}

/** A fresh observer for one tensor. percentile/entropy/mse keep a histogram (2·bins signed bins); minmax keeps none. */
export function makeObserver(method: CalibrationMethod, s: ObserverSettings): Observer {
  switch (method) {
    case 'minmax':
      return minmaxObserver({ movingAverage: s.movingAverage });
    case 'percentile':
      return percentileObserver(s);
    case 'entropy':
      return entropyObserver(s);
    case 'mse':
      return mseObserver(s);
    default: {
      const never: never = method;
      throw new InternalError(`unknown calibration method ${String(never)}`);
    }
  }
}

