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
  clearlySlowerAt,
  writeLatencyCache,
  opCounts,
  layerCosts,
  profileNodes,
  type CachedMeasurement,
  type NodeCost,
  type InterleavedResult,
  type LatencyCandidate,
} from '../bench/index.js';
import { openDataset, type FeedSource, type OpenDatasetOptions } from '../data/index.js';
import type { FormatDecision, MeasuredCandidate, Plan, QuantizeLatency } from '../documents/index.js';
import type { ApplyPlanResult } from '../rewrite/index.js';
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
  /** Batch sizes at which the kept variant's median ratio to float was above 1. */
  slowerAt: number[];
  /** Of those, where it was slower in ≥ 3 of 4 rounds (beyond the noise). */
  clearlySlowerAt: number[];
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
  return { decision, model: modelOf(variant), variant, slowerAt: slowerThanFloatAt(best, measured.batchSizes), clearlySlowerAt: clearlySlowerAt(best, measured.batchSizes) };
}

function nbitsConfig(v: FormatVariant): Record<string, string> | undefined {
  // Blocked int4 DQ → MatMul is fused at load with the session's level; MatMulNBits nodes carry their own.
  return v.accuracyLevel !== undefined ? { 'session.qdq_matmulnbits_accuracy_level': String(v.accuracyLevel) } : undefined;
}

/**
 * Feeds for the latency measurement: batch 1 and, when the model takes larger batches, `batchSize`
 * samples, from the data (first samples) or seeded random inputs of the declared shapes.
 */
export async function latencyBatches(model: Model, data: string | FeedSource | undefined, batchSize: number, read: OpenDatasetOptions = {}): Promise<LatencyBatch[]> {
  const dataset = await openDataset(data ?? 'random', model, data ? { ...read, maxSamples: batchSize } : { randomSamples: batchSize, maxSamples: batchSize });
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

export interface LatencyStepInput {
  float: Model;
  /** The rewrite as planned, at accuracy level `accuracyLevel ?? plan.tuning?.accuracyLevel ?? 4`. */
  rewritten: ApplyPlanResult;
  /** The same rewrite at another MatMulNBits accuracy level. */
  rewriteAtLevel: (accuracyLevel: number) => ApplyPlanResult;
  /**
   * The same rewrite of another plan: static plans also get a candidate that keeps float the layers
   * whose quantized kernels onnxruntime's profiler measured slower than their float kernels.
   */
  rewriteWithPlan?: (plan: Plan) => ApplyPlanResult;
  /**
   * Static INT8 plans: also measure this rewrite of the plan in dynamic mode and keep the faster
   * (opt-in, `--compare-dynamic`); the decision is recorded in plan.tuning and the kept plan's mode.
   */
  rewriteDynamic?: (plan: Plan) => ApplyPlanResult;
  /** Per-node profiles of [float, quantized] (injected by tests; default: profileNodes). */
  profile?: (float: Model, quantized: Model, batch: LatencyBatch) => Promise<NodeCost[][]>;
  plan: Plan;
  /** --accuracy-level when the user gave one (then it is not tuned). */
  accuracyLevel?: number;
  data?: string | FeedSource;
  /** How `data` is read (preprocessing, dims, …): the command's data options. */
  dataOptions?: OpenDatasetOptions;
  batchSize: number;
  /** Seconds of timed runs (--tune-seconds). */
  seconds: number;
  /** Cache folder (undefined: no cache) and what the candidates are built from (part of the key). */
  cacheDir?: string;
  modelSha256: string;
  variantKey: unknown;
  measure?: MeasureLatency;
}

export interface LatencyStepResult {
  rewritten: ApplyPlanResult;
  /** The plan of the kept candidate (the input plan, or it with the slow layers float). */
  plan: Plan;
  accuracyLevel: number;
  /** The format decision to record in the plan (when candidates were compared). */
  tuning?: FormatDecision;
  latency: QuantizeLatency;
  warnings: string[];
}

export const DEFAULT_ACCURACY_LEVEL = 4;

function formatLabel(r: ApplyPlanResult, level: number): string {
  if (r.summary.layers.some((l) => l.scheme === 'matmul-nbits' || l.scheme === 'qdq-blocked')) return `matmul-nbits acc ${level}`;
  return r.summary.mode === 'static' ? 'static-qdq' : r.summary.mode;
}

/**
 * Measure float against the planned rewrite (and, for MatMulNBits with no --accuracy-level and no
 * recorded decision, against the other accuracy level), keep the fastest, and say so when the written
 * model is slower than float, with the causes onnxruntime's optimized graph shows. A plan that records
 * a decision (plan.tuning) is applied as recorded: only the brief float-vs-written check runs.
 */
export async function latencyStep(s: LatencyStepInput): Promise<LatencyStepResult> {
  const replayed = s.accuracyLevel === undefined ? s.plan.tuning?.accuracyLevel : undefined;
  const level = s.accuracyLevel ?? replayed ?? DEFAULT_ACCURACY_LEVEL;
  const label = formatLabel(s.rewritten, level);
  const results = new Map<string, ApplyPlanResult>([[label, s.rewritten]]);
  const variants: FormatVariant[] = [{ label, accuracyLevel: label.startsWith('matmul-nbits') ? level : undefined, isDefault: true, build: () => s.rewritten.model }];
  const isTunedLevel = label.startsWith('matmul-nbits') && s.accuracyLevel === undefined && !s.plan.tuning;
  if (isTunedLevel) {
    const other = level === 0 ? DEFAULT_ACCURACY_LEVEL : 0;
    const otherLabel = `matmul-nbits acc ${other}`;
    variants.push({
      label: otherLabel,
      accuracyLevel: other,
      isDefault: false,
      build: () => {
        const r = s.rewriteAtLevel(other);
        results.set(otherLabel, r);
        return r.model;
      },
    });
  }
  const plans = new Map<string, Plan>([[label, s.plan]]);
  if (s.rewriteDynamic && s.plan.mode === 'static' && !s.plan.tuning) {
    const dyn: Plan = { ...s.plan, mode: 'dynamic' };
    plans.set('dynamic', dyn);
    variants.push({
      label: 'dynamic',
      isDefault: false,
      note: 'dynamic INT8 (activation ranges per run), compared by --compare-dynamic',
      build: () => {
        const r = s.rewriteDynamic!(dyn);
        results.set('dynamic', r);
        return r.model;
      },
    });
  }
  const batches = await latencyBatches(s.float, s.data, s.batchSize, s.dataOptions);
  const { tuning: _old, ...planKey } = s.plan;
  const decide = (vs: readonly FormatVariant[]) =>
    decideFormat(s.float, vs, batches, {
      seconds: s.seconds,
      measure: s.measure,
      cache: s.cacheDir ? { dir: s.cacheDir, modelSha256: s.modelSha256, variant: { plan: planKey, rewrite: s.variantKey, level: isTunedLevel ? 'tuned' : level, labels: vs.map((v) => v.label) } } : undefined,
    });
  let decided = await decide(variants);
  if (decided.slowerAt.length > 0 && s.plan.mode === 'static' && s.rewriteWithPlan && !s.plan.tuning) {
    // Slower than float: try keeping float the layers whose quantized kernel (QLinearConv, …) the
    // profiler times above their float kernel, and keep that only if it then measures faster.
    // Profiled at the largest batch (kernel times well above the timer's resolution), a few runs; the
    // candidate is timed at every batch size. A layer kept float between quantized ones costs a
    // DequantizeLinear and a QuantizeLinear, so it is proposed only when its quantized kernel is slower
    // than its float one by more than the mean profiled Q + DQ pair of this graph.
    const [fp, qp] = await (s.profile ?? ((f, q, b) => profileNodes([{ label: 'float', source: f }, { label: 'quantized', source: q }], b.feeds, { runs: 5, warmup: 1 })))(s.float, s.rewritten.model, batches[batches.length - 1]);
    const quantized = new Set(s.rewritten.summary.layers.filter((l) => l.bits !== 'float').map((l) => l.id));
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
    const island = mean(qp.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.microsPerRun)) + mean(qp.filter((n) => n.opType === 'DequantizeLinear').map((n) => n.microsPerRun));
    const slow = layerCosts(s.float, fp, qp).filter((c) => quantized.has(c.id) && c.quantizedMicros - c.floatMicros > island);
    if (slow.length > 0 && slow.length < quantized.size) {
      const slowLabel = `static-qdq, ${slow.length} slow layer${slow.length === 1 ? '' : 's'} float`;
      const p: Plan = { ...s.plan, layers: { ...s.plan.layers, ...Object.fromEntries(slow.map((c) => [c.id, { bits: 'float' as const }])) } };
      plans.set(slowLabel, p);
      variants.push({
        label: slowLabel,
        isDefault: false,
        note: `profiled slower quantized than float: ${slow.slice(0, 8).map((c) => `${c.id} ${(c.quantizedMicros / 1000).toFixed(2)} vs ${(c.floatMicros / 1000).toFixed(2)} ms`).join(', ')}${slow.length > 8 ? ', …' : ''}`,
        build: () => {
          const r = s.rewriteWithPlan!(p);
          results.set(slowLabel, r);
          return r.model;
        },
      });
      decided = await decide(variants);
    }
  }
  const d = decided.decision;
  const rewritten = results.get(d.chosen) ?? s.rewritten;
  const chosenLevel = decided.variant.accuracyLevel ?? level;
  const warnings: string[] = [];
  let causes: string[] = [];
  const chosen = d.candidates.find((c) => c.label === d.chosen)!;
  if (decided.slowerAt.length > 0) {
    causes = await explainSlowdown(s.float, rewritten.model, decided.variant.accuracyLevel);
    const at = decided.slowerAt
      .map((b) => `${chosen.ratios[d.batchSizes.indexOf(b)].toFixed(2)}x at batch ${b}${decided.clearlySlowerAt.includes(b) ? '' : ' (within this run\'s noise: faster in over 1 of 4 rounds)'}`)
      .join(', ');
    const others = d.candidates.filter((c) => c.label !== d.chosen && c.label !== 'float').map((c) => `${c.label} ${c.ratios.map((r) => `${r.toFixed(2)}x`).join('/')}`);
    const elementwise = s.plan.mode === 'static' && causes.some((c) => c.startsWith('float islands') && /\b(Add|Mul)×/.test(c));
    const hint = [
      ...(s.plan.mode === 'static' && !s.rewriteWithPlan ? ['--keep-slow-float tries keeping float the layers profiled slower quantized'] : []),
      ...(elementwise ? ['--integer-elementwise runs scalar and quantized×quantized Add/Mul (hard-swish, SE gates) as QLinearAdd/QLinearMul (one more requantization each: check the fidelity)'] : []),
    ].map((h) => `; ${h}`).join('');
    warnings.push(
      `the quantized model is SLOWER than float on this machine (${d.chosen}: ${at}; ${d.isCached ? 'from the latency cache' : `${d.rounds} interleaved rounds`}${others.length ? `; also measured ${others.join(', ')}` : ''})${causes.length ? `: ${causes.join('; ')}` : ''}${hint}`,
    );
  }
  const latency: QuantizeLatency = {
    batchSizes: d.batchSizes,
    candidates: d.candidates,
    chosen: d.chosen,
    slowerThanFloatAt: decided.slowerAt,
    causes,
    source: s.plan.tuning && s.accuracyLevel === undefined ? 'plan' : d.isCached ? 'cache' : 'measured',
    machine: d.machine,
    rounds: d.rounds,
    seconds: d.seconds,
    loadAverage: d.loadAverage,
  };
  const isTuned = variants.length > 1;
  return { rewritten, plan: plans.get(d.chosen) ?? s.plan, accuracyLevel: chosenLevel, ...(isTuned ? { tuning: d } : {}), latency, warnings };
}
