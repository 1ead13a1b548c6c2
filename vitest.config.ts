import * as os from 'node:os';
import * as path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    // quantize's latency cache goes to a folder of this run, not the user's ~/.cache/qtool.
    env: { QTOOL_CACHE_DIR: path.join(os.tmpdir(), `qtool-test-latency-cache-${process.pid}`) },
  },
});
