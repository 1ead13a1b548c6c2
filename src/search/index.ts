export * from './order.js';
export * from './knapsack.js';
export * from './pareto.js';
export * from './search-plan.js';
export * from './latency.js';
