export * from './bench-text.js';
export * from './eval-text.js';
