export * from './bench.js';
export * from './eval.js';
export * from './load-data.js';
export * from './sensitivity.js';
