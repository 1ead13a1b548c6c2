/**
 * qtool's public API. The CLI imports only this module.
 */
export * from './errors.js';
export { writeFileAtomic, resolveInside, sha256, removePendingTempFiles, fileExists } from './files.js';
export * from './tensor/index.js';
export * from './onnx/index.js';
export * from './documents/index.js';
export * from './runtime/index.js';
export * from './data/index.js';
export * from './calibrate/index.js';
export * from './rewrite/index.js';
export * from './quant/index.js';
export * from './pipeline/index.js';
export * from './report/index.js';
export * from './sensitivity/index.js';
export * from './search/index.js';
export { peakRssBytes } from './bench/index.js';
