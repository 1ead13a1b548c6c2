export * from './bench.js';
export * from './eval.js';
