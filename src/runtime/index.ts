export * from './session.js';
export * from './matmul.js';
