export * from './io.js';
export * from './model-summary.js';
export * from './calibration.js';
export * from './plan.js';
export * from './bench-report.js';
export * from './eval-report.js';
export * from './sensitivity-report.js';
export * from './search-report.js';
