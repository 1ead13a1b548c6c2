export * from './dtypes.js';
export * from './tensor.js';
export * from './int4.js';
export * from './rng.js';
export * from './feeds.js';
