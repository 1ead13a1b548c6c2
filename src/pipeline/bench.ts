import { readOptionsOf, sourceName } from './data-read.js';
import * as os from 'node:os';
import { measureModel, modelSize, tileBatch } from '../bench/index.js';
import { openDataset } from '../data/index.js';
import { BenchOptionsSchema, flattenIssues, type BenchModelResult, type BenchOptions, type BenchRatios, type BenchReport, type BenchSettings } from '../documents/index.js';
import { UsageError } from '../errors.js';
import { loadModel } from '../onnx/index.js';
import type { Feeds } from '../runtime/index.js';
import { childScript, runChild } from './child-process.js';

export interface BenchCallbacks {
  /** One event per model started/finished (models are measured one after another). */
  onProgress?: (event: { model: string; index: number; total: number; phase: 'start' | 'done' }) => void;
  /** Measure each model in its own child process (default true; false runs in this process, figures then mix). */
  isolate?: boolean;
  signal?: AbortSignal;
}

export interface BenchChildRequest {
  file: string;
  settings: BenchSettings;
}

export interface BenchChildResult {
  result: Omit<BenchModelResult, 'ratios'>;
  inputs: 'data' | 'generated';
  warnings: string[];
}

/** Measure one model in this process: inputs first (not counted in the session's memory), then the session. */
export async function measureOneModel(req: BenchChildRequest): Promise<BenchChildResult> {
  const { file, settings } = req;
  const model = loadModel(file);
  const size = modelSize(model);
  const maxBatch = Math.max(...settings.batchSizes);
  const source = settings.data ?? 'random';
  const dataset = await openDataset(source, model, { ...readOptionsOf(settings), maxSamples: maxBatch, randomSamples: maxBatch, seed: settings.seed });
  const warnings: string[] = [];
  const feeds = new Map<number, Feeds>();
  for (const requested of settings.batchSizes) {
    let first: Feeds | undefined;
    for await (const b of dataset.batches(requested)) {
      first = b;
      break;
    }
    let n = dataset.samplesIn(first!);
    const effective = dataset.effectiveBatchSize(requested);
    if (effective !== requested) warnings.push(`${file}: batch size ${requested} is not possible, the model takes ${effective} sample(s) per run; measured ${effective}`);
    if (n < effective) {
      warnings.push(`${file}: the data holds ${n} sample(s), repeated to fill batches of ${effective}`);
      first = tileBatch(first!, effective);
      n = effective;
    }
    if (!feeds.has(n)) feeds.set(n, first!);
  }
  for (const w of dataset.warnings) if (!w.startsWith('calibrating on random data')) warnings.push(w);
  const measured = await measureModel(file, { runs: settings.runs, warmup: settings.warmup, threads: settings.threads, feeds });
  return { result: { file, size, sessionCreateMs: measured.sessionCreateMs, baselineRssBytes: measured.baselineRssBytes, peakRssBytes: measured.peakRssBytes, results: measured.results }, inputs: settings.data ? 'data' : 'generated', warnings };
}

/** Ratios of `m` against `base` (the first model). */
export function benchRatios(base: Omit<BenchModelResult, 'ratios'>, m: Omit<BenchModelResult, 'ratios'>): BenchRatios {
  const div = (a: number, b: number) => (b > 0 ? a / b : 0);
  return {
    size: div(m.size.totalBytes, base.size.totalBytes),
    sessionCreate: div(m.sessionCreateMs, base.sessionCreateMs),
    peakRss: div(m.peakRssBytes, base.peakRssBytes),
    batches: m.results.flatMap((r) => {
      const b = base.results.find((x) => x.batchSize === r.batchSize);
      return b
        ? [{ batchSize: r.batchSize, latencyP50: div(r.latency.p50Ms, b.latency.p50Ms), speedup: div(b.latency.meanMs, r.latency.meanMs), throughput: div(r.throughputSamplesPerSec, b.throughputSamplesPerSec) }]
        : [];
    }),
  };
}

/**
 * Benchmark models through onnxruntime-node: per batch size latency percentiles and throughput,
 * session creation time, peak resident memory (each model in its own child process) and size on
 * disk, with ratios against the first model. Inputs come from `data` or are generated from the
 * model's declared shapes (`settings.inputs` says which).
 */
export async function bench(models: readonly string[], options: BenchOptions = {}, callbacks: BenchCallbacks = {}): Promise<BenchReport> {
  const parsed = BenchOptionsSchema.safeParse(options);
  if (!parsed.success) throw new UsageError('E_OPTION', `bench options: ${flattenIssues(parsed.error)}`);
  const settings = parsed.data;
  if (models.length === 0) throw new UsageError('E_FLAG', 'bench: expected at least one model, got none');
  // Feeds in memory cannot be sent to a child process: such a run is measured in this one.
  const isInMemory = settings.data !== undefined && typeof settings.data !== 'string';
  const isolate = (callbacks.isolate ?? true) && !isInMemory;
  const results: Omit<BenchModelResult, 'ratios'>[] = [];
  const warnings: string[] = isInMemory && callbacks.isolate !== false ? ['in-memory data: models measured in this process one after another (feeds cannot be sent to a child process), so memory figures include the earlier models'] : [];
  let inputs: 'data' | 'generated' = settings.data ? 'data' : 'generated';
  for (const [index, file] of models.entries()) {
    callbacks.onProgress?.({ model: file, index, total: models.length, phase: 'start' });
    const req: BenchChildRequest = { file, settings };
    const r = isolate ? await runChild<BenchChildResult>(childScript('bench-child.js'), req, { signal: callbacks.signal, name: file }).result : await measureOneModel(req);
    results.push(r.result);
    inputs = r.inputs;
    for (const w of r.warnings) if (!warnings.includes(w)) warnings.push(w);
    callbacks.onProgress?.({ model: file, index, total: models.length, phase: 'done' });
  }
  if (inputs === 'generated') warnings.unshift('no --data: inputs were generated from the model input shapes (random normal floats, small integers)');
  return {
    kind: 'qtool.bench',
    version: 1,
    settings: { runs: settings.runs, warmup: settings.warmup, batchSizes: settings.batchSizes, threads: settings.threads, inputs, data: settings.data === undefined ? undefined : sourceName(settings.data), isolation: isolate ? 'process' : 'none' },
    environment: { node: process.version, platform: process.platform, arch: process.arch, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown' },
    models: results.map((m, i) => (i === 0 ? m : { ...m, ratios: benchRatios(results[0], m) })),
    warnings,
  };
}
