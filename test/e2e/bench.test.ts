import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BenchReportSchema, type BenchReport } from '../../src/documents/index.js';
import { quantize } from '../../src/pipeline/index.js';
import { FMNIST } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

/** Every figure of one model is positive and the percentiles are ordered. */
function expectSaneFigures(report: BenchReport): void {
  for (const m of report.models) {
    expect(m.size.totalBytes).toBeGreaterThan(0);
    expect(m.size.totalBytes).toBe(m.size.modelBytes + m.size.externalDataBytes);
    expect(m.sessionCreateMs).toBeGreaterThan(0);
    expect(m.baselineRssBytes).toBeGreaterThan(0);
    expect(m.peakRssBytes).toBeGreaterThanOrEqual(m.baselineRssBytes);
    for (const r of m.results) {
      const l = r.latency;
      expect(l.minMs).toBeGreaterThan(0);
      expect(l.minMs).toBeLessThanOrEqual(l.p50Ms);
      expect(l.p50Ms).toBeLessThanOrEqual(l.p90Ms);
      expect(l.p90Ms).toBeLessThanOrEqual(l.p99Ms);
      expect(l.p99Ms).toBeLessThanOrEqual(l.maxMs);
      expect(l.meanMs).toBeGreaterThan(0);
      expect(r.throughputSamplesPerSec).toBeCloseTo((r.batchSize * 1000) / l.meanMs, 6);
    }
  }
}

describe('qtool bench', () => {
  // fmnist_cnn fp32 against its static INT8 (QDQ) model made by quantize().
  let dir: string;
  let models: string[];
  let json: ReturnType<typeof spawnQtool>;
  beforeAll(async () => {
    dir = makeTempDir('qtool-bench-');
    const int8 = path.join(dir, 'fmnist_cnn.int8.onnx');
    await quantize(FMNIST.cnn, { bits: 8, mode: 'static', data: FMNIST.calibX, samples: 64, output: int8, fidelitySamples: 0 });
    models = [FMNIST.cnn, int8];
    json = spawnQtool(['bench', ...models, '--runs', '8', '--warmup', '2', '--batch', '1,4', '--json']);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('--json prints one qtool.bench/1 document with every field', () => {
    expect(json.code, json.stderr).toBe(0);
    const report = BenchReportSchema.parse(JSON.parse(json.stdout));
    expect(report.models.map((m) => m.file)).toEqual(models);
    expect(report.settings).toMatchObject({ runs: 8, warmup: 2, batchSizes: [1, 4], threads: 1, inputs: 'generated', isolation: 'process' });
    for (const m of report.models) {
      expect(m.results.map((r) => r.batchSize)).toEqual([1, 4]);
      for (const r of m.results) expect(r.latency.runs).toBe(8);
    }
    expectSaneFigures(report);
    expect(report.models[0].ratios).toBeUndefined();
    const ratios = report.models[1].ratios!;
    expect(ratios.size).toBeCloseTo(report.models[1].size.totalBytes / report.models[0].size.totalBytes, 9);
    // INT8 weights: about a quarter of the float file.
    expect(ratios.size).toBeLessThan(0.35);
    expect(ratios.batches.map((b) => b.batchSize)).toEqual([1, 4]);
    for (const b of ratios.batches) expect(b.speedup).toBeGreaterThan(0);
    // Separate processes: each model has its own baseline memory.
    expect(report.models[0].baselineRssBytes).not.toBe(report.models[1].baselineRssBytes);
    expect(json.stderr).toMatch(/generated from the model input shapes/);
  });

  it('prints a side-by-side table with ratios, and Markdown', () => {
    const text = spawnQtool(['bench', ...models, '--runs', '3', '--warmup', '1', '--data', FMNIST.valX]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/fmnist_cnn\.onnx\s+fmnist_cnn\.int8\.onnx/);
    for (const row of ['size', 'session create (ms)', 'peak RSS', 'batch 1 p50 (ms)', 'batch 1 p90 (ms)', 'batch 1 p99 (ms)', 'batch 1 mean (ms)', 'batch 1 runs', 'batch 1 samples/s']) {
      expect(text.stdout).toContain(row);
    }
    expect(text.stdout).toMatch(/\(\d+\.\d\dx\)/);
    expect(text.stdout).toContain('inputs from');
    expect(text.stderr).not.toMatch(/generated/);
    const md = spawnQtool(['bench', FMNIST.cnn, '--runs', '2', '--warmup', '0', '--markdown']);
    expect(md.code, md.stderr).toBe(0);
    expect(md.stdout).toMatch(/^\| metric \| fmnist_cnn\.onnx \|\n\| --- \| ---: \|/);
  });

  it('bad inputs: a corrupt model exits 3, a bad flag exits 2, no stack traces', () => {
    const bad = spawnQtool(['bench', FMNIST.valY, '--runs', '2']);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/E_MODEL_PARSE|E_READ/);
    expect(hasStackTrace(bad.stderr)).toBe(false);
    const flag = spawnQtool(['bench', FMNIST.cnn, '--batch', '0']);
    expect(flag.code).toBe(2);
    expect(hasStackTrace(flag.stderr)).toBe(false);
  });
});
