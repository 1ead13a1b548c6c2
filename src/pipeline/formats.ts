import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  chooseFastest,
  latencyCacheKey,
  latencyMachine,
  measureInterleaved,
  readLatencyCache,
  runtimeGraphFindings,
  slowdownCauses,
  slowerThanFloatAt,
  writeLatencyCache,
  opCounts,
  type CachedMeasurement,
  type InterleavedResult,
  type LatencyCandidate,
} from '../bench/index.js';
import { openDataset } from '../data/index.js';
import type { FormatDecision, MeasuredCandidate } from '../documents/index.js';
import { loadModel, type Model } from '../onnx/index.js';
import { Session, type Feeds } from '../runtime/index.js';

/** One quantized variant the rewrite can write; `build` makes it (the default one is built already). */
export interface FormatVariant {
  label: string;
  /** MatMulNBits accuracy_level it is written with. */
  accuracyLevel?: number;
  isDefault: boolean;
  build: () => Model;
  /** Whether it meets the accuracy constraint (default true). */
  isEligible?: boolean;
  note?: string;
}

export interface LatencyBatch {
  batchSize: number;
  feeds: Feeds;
}

/** Times candidates (float first) at one batch size within `seconds`; injected by tests. */
export type MeasureLatency = (candidates: readonly LatencyCandidate[], batch: LatencyBatch, seconds: number) => Promise<InterleavedResult>;

export const measureLatencyInterleaved: MeasureLatency = (candidates, batch, seconds) => measureInterleaved(candidates, { feeds: batch.feeds, maxSeconds: seconds });

export interface DecideFormatOptions {
  /** Seconds of timed runs in all (split across batch sizes). */
  seconds: number;
  /** Cache folder (latencyCacheDir()) and the float model's sha256; no cache when absent. */
  cache?: { dir: string; modelSha256: string; variant: unknown };
  threads?: number;
  measure?: MeasureLatency;
}

export interface DecidedFormat {
  decision: FormatDecision;
  /** The kept variant's model. */
  model: Model;
  variant: FormatVariant;
  /** Batch sizes at which the kept variant was slower than float in ≥ 3 of 4 rounds. */
  slowerAt: number[];
}

/**
 * Measure float and every variant interleaved (or read the measurement from the cache) and keep the
 * fastest eligible variant. Every candidate is timed against float in the same rounds.
 */
export async function decideFormat(float: Model, variants: readonly FormatVariant[], batches: readonly LatencyBatch[], opts: DecideFormatOptions): Promise<DecidedFormat> {
  const threads = opts.threads ?? 1;
  const machine = latencyMachine(threads);
  const key = opts.cache ? latencyCacheKey(opts.cache.modelSha256, { variant: opts.cache.variant, labels: variants.map((v) => v.label), batches: batches.map((b) => b.batchSize) }, machine) : undefined;
  const built = new Map<string, Model>();
  const modelOf = (v: FormatVariant) => {
    let m = built.get(v.label);
    if (!m) built.set(v.label, (m = v.build()));
    return m;
  };
  let measured: CachedMeasurement | undefined = opts.cache && key ? readLatencyCache(opts.cache.dir, key) : undefined;
  const isCached = measured !== undefined;
  if (!measured) {
    const measure = opts.measure ?? measureLatencyInterleaved;
    const candidates: LatencyCandidate[] = [{ label: 'float', source: float }, ...variants.map((v) => ({ label: v.label, source: modelOf(v), config: nbitsConfig(v) }))];
    const per: InterleavedResult[] = [];
    for (const b of batches) per.push(await measure(candidates, b, opts.seconds / batches.length));
    measured = {
      batchSizes: batches.map((b) => b.batchSize),
      rounds: per.reduce((s, r) => s + r.rounds, 0),
      seconds: per.reduce((s, r) => s + r.seconds, 0),
      loadAverage: per.length ? per[per.length - 1].loadAverage : os.loadavg()[0],
      candidates: candidates.map((c, i) => ({
        label: c.label,
        ratios: per.map((r) => r.candidates[i].ratio),
        medianMs: per.map((r) => r.candidates[i].medianMs),
        ratioQ1: per.map((r) => r.candidates[i].ratioQ1),
      })),
    };
    if (opts.cache && key) writeLatencyCache(opts.cache.dir, key, measured);
  }
  const byLabel = new Map(variants.map((v) => [v.label, v]));
  const candidates: MeasuredCandidate[] = measured.candidates.map((c) => {
    const v = byLabel.get(c.label);
    return { ...c, isEligible: v ? v.isEligible !== false : true, ...(v?.note ? { note: v.note } : {}) };
  });
  const preferred = variants.find((v) => v.isDefault)?.label;
  const best = chooseFastest(candidates, preferred) ?? candidates.find((c) => c.label === preferred)!;
  const variant = byLabel.get(best.label)!;
  const decision: FormatDecision = {
    chosen: best.label,
    ...(variant.accuracyLevel !== undefined ? { accuracyLevel: variant.accuracyLevel } : {}),
    batchSizes: measured.batchSizes,
    candidates,
    machine,
    rounds: isCached ? 0 : measured.rounds,
    seconds: isCached ? 0 : measured.seconds,
    loadAverage: measured.loadAverage,
    isCached,
  };
  return { decision, model: modelOf(variant), variant, slowerAt: slowerThanFloatAt(best, measured.batchSizes) };
}

function nbitsConfig(v: FormatVariant): Record<string, string> | undefined {
  // Blocked int4 DQ → MatMul is fused at load with the session's level; MatMulNBits nodes carry their own.
  return v.accuracyLevel !== undefined ? { 'session.qdq_matmulnbits_accuracy_level': String(v.accuracyLevel) } : undefined;
}

/**
 * Feeds for the latency measurement: batch 1 and, when the model takes larger batches, `batchSize`
 * samples, from the data (first samples) or seeded random inputs of the declared shapes.
 */
export async function latencyBatches(model: Model, data: string | undefined, batchSize: number): Promise<LatencyBatch[]> {
  const dataset = await openDataset(data ?? 'random', model, data ? { maxSamples: batchSize } : { randomSamples: batchSize, maxSamples: batchSize });
  const sizes = [...new Set([dataset.effectiveBatchSize(1), dataset.effectiveBatchSize(batchSize)])];
  const out: LatencyBatch[] = [];
  for (const requested of sizes) {
    for await (const feeds of dataset.batches(requested)) {
      const n = dataset.samplesIn(feeds);
      if (!out.some((b) => b.batchSize === n)) out.push({ batchSize: n, feeds });
      break;
    }
  }
  return out;
}

/** Why a model measured slower than float: read from onnxruntime's optimized graphs of both. */
export async function explainSlowdown(float: Model, quantized: Model, accuracyLevel?: number): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-why-'));
  try {
    const graph = async (m: Model, name: string) => {
      const file = path.join(dir, `${name}.onnx`);
      const s = await Session.open(m, { optimizedModelFilePath: file, config: accuracyLevel !== undefined ? { 'session.qdq_matmulnbits_accuracy_level': String(accuracyLevel) } : undefined });
      await s.release();
      return loadModel(file, { checkExternalData: false });
    };
    const f = await graph(float, 'float');
    const q = await graph(quantized, 'quantized');
    return slowdownCauses(runtimeGraphFindings(q, opCounts(f)));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
