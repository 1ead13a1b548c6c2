import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeNpy } from '../../src/data/index.js';
import { makeTensor } from '../../src/tensor/index.js';
import { makeTempDir } from '../helpers/tmp.js';
import { BenchReportSchema } from '../../src/documents/index.js';
import { UsageError } from '../../src/errors.js';
import { bench, benchRatios } from '../../src/pipeline/index.js';
import { FMNIST } from '../helpers/paths.js';

describe('bench() in this process (isolate: false)', () => {
  it('measures with data inputs', async () => {
    const report = await bench([FMNIST.mlp], { runs: 3, warmup: 0, batchSizes: [2], data: FMNIST.calibX }, { isolate: false });
    BenchReportSchema.parse(report);
    expect(report.settings).toMatchObject({ inputs: 'data', isolation: 'none', batchSizes: [2] });
    expect(report.models[0].results[0].latency.runs).toBe(3);
    expect(report.warnings).toEqual([]);
  });

  it('repeats samples to fill a batch larger than the data, and says so', async () => {
    const dir = makeTempDir();
    const one = path.join(dir, 'one.npy');
    writeNpy(one, makeTensor('float32', [1, 1, 28, 28], new Float32Array(784).fill(0.5)));
    const report = await bench([FMNIST.mlp], { runs: 2, warmup: 0, batchSizes: [3], data: one }, { isolate: false });
    expect(report.models[0].results.map((r) => r.batchSize)).toEqual([3]);
    expect(report.warnings.join('\n')).toMatch(/holds 1 sample\(s\), repeated to fill batches of 3/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses bad options with UsageError', async () => {
    await expect(bench([FMNIST.mlp], { runs: 0 })).rejects.toBeInstanceOf(UsageError);
    await expect(bench([], {})).rejects.toBeInstanceOf(UsageError);
  });
});

describe('benchRatios', () => {
  it('divides against the first model; speedup is the inverse mean ratio', () => {
    const lat = (mean: number) => ({ runs: 1, meanMs: mean, p50Ms: mean, p90Ms: mean, p99Ms: mean, minMs: mean, maxMs: mean });
    const base = { file: 'a', size: { modelBytes: 400, externalDataBytes: 0, totalBytes: 400 }, sessionCreateMs: 10, baselineRssBytes: 1, peakRssBytes: 200, results: [{ batchSize: 1, latency: lat(2), throughputSamplesPerSec: 500 }] };
    const q = { ...base, file: 'b', size: { modelBytes: 100, externalDataBytes: 0, totalBytes: 100 }, peakRssBytes: 100, results: [{ batchSize: 1, latency: lat(1), throughputSamplesPerSec: 1000 }, { batchSize: 8, latency: lat(4), throughputSamplesPerSec: 2000 }] };
    const r = benchRatios(base, q);
    expect(r).toEqual({ size: 0.25, sessionCreate: 1, peakRss: 0.5, batches: [{ batchSize: 1, latencyP50: 0.5, speedup: 2, throughput: 2 }] });
  });
});
