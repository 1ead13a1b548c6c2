export * from './affine.js';
export * from './weights.js';
