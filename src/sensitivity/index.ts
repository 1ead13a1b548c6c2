export * from './weight-inputs.js';
export * from './hutchinson.js';
export * from './layerwise.js';
export * from './measure.js';
export * from './hessians.js';
export * from './awq.js';
