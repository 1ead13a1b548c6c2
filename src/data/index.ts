export * from './npy.js';
export { readNpz, writeNpz, npyArray, npzArrays, readStoredArray, type StoredArray } from './npz.js';
export * from './specs.js';
export * from './convert.js';
export * from './dataset.js';
