export { renderBenchText, renderBenchMarkdown } from './bench-text.js';
export * from './eval-text.js';
export * from './batch-text.js';
export * from './sensitivity.js';
export * from './search.js';
