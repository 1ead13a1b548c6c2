export * from './bench.js';
export * from './eval.js';
export * from './batch.js';
export * from './evaluator.js';
export * from './sensitivity.js';
export * from './search.js';
export * from './load-data.js';
export * from './quantize.js';
export { interruptedError } from './child-process.js';
