export * from './io.js';
export * from './model-summary.js';
export * from './calibration.js';
export * from './plan.js';
