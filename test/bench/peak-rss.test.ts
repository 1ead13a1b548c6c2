import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { peakRssBytes } from '../../src/bench/index.js';
import { ROOT } from '../helpers/paths.js';

describe('peakRssBytes', () => {
  it('is at least the current RSS', () => {
    expect(peakRssBytes()).toBeGreaterThanOrEqual(process.memoryUsage().rss * 0.9);
  });

  it('a child of a large parent reports its own peak, not the parent’s (ru_maxrss survives fork + execve on Linux)', () => {
    const big = Buffer.alloc(512 * 1024 * 1024, 1); // touched: resident in this process
    const script = `import(${JSON.stringify(path.join(ROOT, 'dist/bench/peak-rss.js'))}).then((m) => console.log(JSON.stringify({ peak: m.peakRssBytes(), maxRss: process.resourceUsage().maxRSS * 1024 })))`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(big[big.length - 1]).toBe(1);
    const { peak } = JSON.parse(r.stdout) as { peak: number; maxRss: number };
    expect(process.memoryUsage().rss).toBeGreaterThan(512 * 1024 * 1024);
    // A bare node process peaks well under 200 MB.
    expect(peak).toBeLessThan(200 * 1024 * 1024);
  });
});
