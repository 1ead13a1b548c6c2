export * from './stats.js';
export * from './size.js';
export * from './batch-feeds.js';
export * from './measure.js';
export * from './peak-rss.js';
export * from './interleaved.js';
export * from './slowdown.js';
export * from './formats.js';
