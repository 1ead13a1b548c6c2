import { peakRssBytes } from './peak-rss.js';
import { performance } from 'node:perf_hooks';
import type { BenchModelResult } from '../documents/index.js';
import { Session, type Feeds } from '../runtime/index.js';
import { latencyStats } from './stats.js';

export interface MeasureOptions {
  runs: number;
  warmup: number;
  threads: number;
  /** Inputs for one batch size (built before the session, so they are not counted in its memory). */
  feeds: ReadonlyMap<number, Feeds>;
  /** Called after each timed run (phase label, done, total). */
  onProgress?: (event: { batchSize: number; done: number; total: number }) => void;
}

/**
 * Measure one model in this process: session creation time, then per batch size `warmup` untimed
 * runs and `runs` timed runs. Memory is this process's peak resident set (ru_maxrss), so callers
 * run it in a fresh child process per model to keep figures apart.
 */
export async function measureModel(file: string, opts: MeasureOptions): Promise<Omit<BenchModelResult, 'size' | 'ratios'>> {
  const baselineRssBytes = process.memoryUsage().rss;
  const t0 = performance.now();
  const session = await Session.open(file, { threads: opts.threads, name: file });
  const sessionCreateMs = performance.now() - t0;
  const results: BenchModelResult['results'] = [];
  try {
    for (const [batchSize, feeds] of opts.feeds) {
      for (let i = 0; i < opts.warmup; i++) await session.run(feeds);
      const samples = new Float64Array(opts.runs);
      for (let i = 0; i < opts.runs; i++) {
        const s = performance.now();
        await session.run(feeds);
        samples[i] = performance.now() - s;
        opts.onProgress?.({ batchSize, done: i + 1, total: opts.runs });
      }
      const latency = latencyStats(samples);
      results.push({ batchSize, latency, throughputSamplesPerSec: (batchSize * 1000) / latency.meanMs });
    }
  } finally {
    await session.release();
  }
  return { file, sessionCreateMs, baselineRssBytes, peakRssBytes: peakRssBytes(), results };
}
