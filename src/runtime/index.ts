export * from './session.js';
export * from './matmul.js';
export * from './spill.js';
