export * from './io.js';
export * from './model-summary.js';
