export * from './bench.js';
export * from './eval.js';
export * from './load-data.js';
export * from './sensitivity.js';
export * from './evaluator.js';
export * from './search.js';
export * from './quantize.js';
