export * from './bench-text.js';
export * from './eval-text.js';
export * from './sensitivity.js';
export * from './search.js';
