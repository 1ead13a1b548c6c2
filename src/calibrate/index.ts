export { calibrate, type CalibrateCallbacks, type CalibrateProgress } from './calibrate.js';
export { calibrationTensors, withOutputs } from './augment.js';
export {
  makeObserver,
  rangeFromSummary,
  RANGE_RULES,
  EXTREME_ABS,
  StreamingHistogram,
  RunningStats,
  absHistogram,
  histogramQuantile,
  klThresholdBins,
  mseThresholdBins,
  ENTROPY_LEVELS,
  calibrationKernel,
  resetCalibrationKernel,
  type Observer,
  type ObserverSettings,
  type RangeSettings,
  type RangeRule,
} from './observers/index.js';
export { channelStatistics, channelAbsMax, withChannelReductions, type ChannelStats, type ChannelTensor } from './channel-stats.js';
