export * from './affine.js';
export * from './weights.js';
export * from './metrics.js';
export * from './layer-spec.js';
export * from './clip-search.js';
export * from './linalg.js';
export * from './gptq.js';
export * from './awq.js';
