/**
 * The door of `qtool quantize`: parse the options once, load, (calibrate), (meet --max-drop), applyPlan,
 * verify in onnxruntime, save atomically, fidelity check, summary.
 */
import { readOptionsOf, sourceName } from './data-read.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { calibrate } from '../calibrate/index.js';
import {
  CalibrationTableSchema,
  PlanSchema,
  QuantizeOptionsSchema,
  flattenIssues,
  readDocument,
  writeDocument,
  type CalibrationTable,
  type LayerRecord,
  type Plan,
  type QuantizeBudget,
  type QuantizeOptions,
  type QuantizeSettings,
  type QuantizeSummary,
} from '../documents/index.js';
import { GateError, OrtError, QtoolError, UsageError } from '../errors.js';
import { latencyCacheDir } from '../bench/index.js';
import { checkOutputPaths, sha256 } from '../files.js';
import { modelFiles, saveModel, saveTargets, type Model } from '../onnx/index.js';
import { applyPlan, depthwiseInputs, equalizationPairs, equalizeConvPairs, foldConvAffine, scaledChannelStats, unchangedWarning, uniformPlan, type ApplyPlanOptions, type ChannelRanges, type EqualizationRecord } from '../rewrite/index.js';
import { channelStatistics } from '../calibrate/index.js';
import { prepareRecovery } from './recovery.js';
import { RANDOM_DATA_WARNING } from '../data/index.js';
import { loadData } from './load-data.js';
import { meetBudget, prepareBudget, type QuantizeProgress } from './budget.js';
import { checkTableCovers, planCalibrationTensors } from './calibration-plan.js';
import { DEFAULT_ACCURACY_LEVEL, latencyStep } from './formats.js';
import { modelContext } from './model-context.js';
import { checkFidelity, fidelityFailures, MAX_LAYERS_MEASURED, optimizedOpCounts, WORST_LAYER_SAMPLES, worstLayers } from './verify.js';

export type { QuantizeStage, QuantizeProgress } from './budget.js';

export interface QuantizeCallbacks {
  onProgress?: (event: QuantizeProgress) => void;
  /** A warning known before the work starts (random data), also listed in summary.warnings. */
  onWarning?: (message: string) => void;
}

export interface QuantizeResult {
  summary: QuantizeSummary;
  /** The written file. */
  file: string;
  /** The plan that was applied (from --plan, built from the options, or found for --max-drop). */
  plan: Plan;
  /** The calibration table used by static mode. */
  table?: CalibrationTable;
}

/** `model.onnx` → `model.int8.onnx` / `model.int4.onnx`, next to the input. */
export function defaultQuantizedPath(modelFile: string, bits: 4 | 8): string {
  const dir = path.dirname(modelFile);
  const base = path.basename(modelFile).replace(/\.onnx$/i, '');
  return path.join(dir, `${base}.int${bits}.onnx`);
}

export function parseQuantizeOptions(input: QuantizeOptions): QuantizeSettings {
  const r = QuantizeOptionsSchema.safeParse(input);
  if (!r.success) throw new UsageError('E_FLAG', `invalid quantize options: ${flattenIssues(r.error)}`);
  return r.data;
}

/**
 * load → (calibrate) → applyPlan → open the result in onnxruntime (a model it cannot load is never
 * written) → save atomically → float vs quantized fidelity check when data is given → summary.
 */
export async function quantize(source: string | Model, input: QuantizeOptions = {}, callbacks: QuantizeCallbacks = {}): Promise<QuantizeResult> {
  const opts = parseQuantizeOptions(input);
  const progress = callbacks.onProgress ?? (() => {});
  if (opts.data && opts.calib) throw new UsageError('E_OPTION_CONFLICT', '--data and --calib are alternatives: give one');
  const ctx = modelContext(source, readOptionsOf(opts), { maxTensorBytes: opts.maxTensorBytes });
  // `model` is what is calibrated and rewritten (BatchNormalization, Mul/Add by constants folded into
  // the Conv before them; in static mode with --data, Conv pairs equalised); ctx.model, the input as
  // given, stays the float reference of the fidelity and latency checks.
  const folded = opts.foldBatchNorm ? foldConvAffine(ctx.model) : undefined;
  let model = folded?.model ?? ctx.model;
  const plan = opts.plan ? readDocument(opts.plan, PlanSchema) : uniformPlan({ bits: opts.bits, mode: resolveMode(opts), blockSize: opts.blockSize, groupSize: opts.groupSize, symmetric: opts.symmetric, weightClip: opts.weightClip });
  if (plan.mode === 'static' && !opts.data && !opts.calib) {
    throw new UsageError('E_OPTION_CONFLICT', 'static quantization needs calibration data: give --data or --calib, or use --mode dynamic');
  }
  if (!opts.output && (model.file === '<bytes>' || !model.file.endsWith('.onnx'))) {
    if (model.file === '<bytes>') throw new UsageError('E_FLAG', 'a model given as bytes needs an output path (--output)');
  }
  const out = opts.output ?? defaultQuantizedPath(model.file, opts.bits);
  // One guard for every output (the model and its .data companion) against every input.
  checkOutputPaths([...saveTargets(model, out, { externalData: opts.externalData }), opts.savePlan], {
    force: opts.force,
    inputs: [...modelFiles(ctx.model), opts.data, opts.calib, opts.plan, opts.eval, opts.evalLabels].filter((f): f is string => typeof f === 'string'),
  });

  const warnings: string[] = [];
  if (opts.data === 'random') {
    const w = `--data random: ${RANDOM_DATA_WARNING}; the fidelity figures are on random inputs too, so they say little about real data`;
    warnings.push(w);
    callbacks.onWarning?.(w);
  }
  // Cross-layer equalisation and the depthwise inputs' per-channel check, from per-channel statistics
  // of the calibration samples (one in-graph reduction pass over the few tensors involved).
  let equalized: EqualizationRecord[] = [];
  let channelStats: Map<string, ChannelRanges> | undefined;
  const equalizeNotes: string[] = [];
  if (plan.mode === 'static' && opts.data) {
    const pairs = opts.equalize === 'off' ? [] : equalizationPairs(model);
    const depthwise = depthwiseInputs(model);
    const wanted = [...new Map([...pairs.map((p) => [p.tensor, p.rank] as const), ...depthwise.map((d) => [d.tensor, d.rank] as const)]).entries()].map(([name, rank]) => ({ name, rank }));
    if (wanted.length > 0) {
      progress({ stage: 'calibrate' });
      const dataset = await ctx.dataset(opts.data, { maxSamples: opts.samples });
      const measured = await channelStatistics(model, dataset, wanted, { batchSize: opts.batchSize, maxSamples: opts.samples });
      const eq = equalizeConvPairs(model, (t) => measured.get(t), { pairs, force: opts.equalize === 'on' });
      equalized = eq.records;
      model = eq.model;
      channelStats = new Map();
      for (const d of depthwise) {
        const st = measured.get(d.tensor);
        const rec = eq.scales.get(d.tensor);
        if (st) channelStats.set(d.tensor, rec ? scaledChannelStats(st, rec) : st);
      }
      const applied = equalized.filter((r) => r.applied);
      if (equalized.length > 0) {
        equalizeNotes.push(
          `cross-layer equalisation: ${applied.length} of ${equalized.length} Conv pair(s) rescaled (exact in float)${applied.length ? `: ${applied.map((r) => `${r.first} → ${r.second} (channel range spread ${r.spreadBefore.toPrecision(3)}× → ${r.spreadAfter.toPrecision(3)}×, predicted rounding noise ×${r.noiseRatio.toPrecision(2)})`).join(', ')}` : ''}${equalized.length > applied.length ? `; ${equalized.length - applied.length} left as they were (no predicted gain)` : ''}`,
        );
      }
    }
  }
  let rewriteOpts: ApplyPlanOptions = {
    ...(channelStats ? { channelStats: (t: string) => channelStats!.get(t) } : {}),
    minTensorSqnrDb: opts.minTensorSqnrDb,
    activationType: opts.activationType,
    int4Format: opts.int4Format,
    accuracyLevel: opts.accuracyLevel,
    excludeOps: opts.excludeOps,
    excludeNodes: opts.excludeNodes,
    includeNodes: opts.includeNodes,
    foldActivations: opts.foldActivations,
    integerElementwise: opts.integerElementwise,
  };
  if (opts.maxDrop === undefined && (opts.eval || opts.evalLabels || opts.metric)) {
    throw new UsageError('E_FLAG', `${opts.eval ? '--eval' : opts.evalLabels ? '--eval-labels' : '--metric'}: expected --max-drop (the budget it measures), got none`);
  }
  const work = model !== ctx.model ? modelContext(model) : ctx;
  const budget = opts.maxDrop !== undefined ? await prepareBudget(work, opts, plan) : undefined;
  const calibSamples = budget?.calibSamples ?? opts.samples;
  let table: CalibrationTable | undefined;
  let calibration: QuantizeSummary['calibration'];
  if (plan.mode === 'static') {
    if (opts.calib) {
      table = readDocument(opts.calib, CalibrationTableSchema);
      checkTableCovers(table, opts.calib, model, { plan, rewrite: rewriteOpts, check: 'plan-tables', fix: 'recalibrate with `qtool calibrate --all-tensors` or quantize with --data' });
      calibration = { source: opts.calib, method: table.method, samples: table.samples };
    } else {
      // Only the ranges this plan reads are observed (declare statistics, collect once).
      const dataset = await ctx.dataset(opts.data!, { maxSamples: calibSamples });
      table = await calibrate(model, dataset, {
        method: opts.method,
        batchSize: opts.batchSize,
        maxSamples: calibSamples,
        tensors: planCalibrationTensors(model, plan, rewriteOpts),
        tensorsFrom: 'plan',
        onProgress: (p) => progress({ stage: 'calibrate', done: p.done, total: p.total ?? undefined }),
      });
      calibration = { source: sourceName(opts.data!, dataset), method: table.method, samples: table.samples };
    }
  }

  // Accuracy recovery beyond round-to-nearest: GPTQ / AWQ, static bias correction, INT4 symmetry, outlier split.
  if (opts.algorithm !== 'rtn' && !opts.data) throw new UsageError('E_OPTION_CONFLICT', `--algorithm ${opts.algorithm} needs calibration data (the layer-input statistics): give --data`);
  if (opts.smooth !== undefined && opts.smooth !== 'off' && !opts.data) throw new UsageError('E_OPTION_CONFLICT', '--smooth needs calibration data (per-channel |x| maxima): give --data');
  if (opts.outlierThreshold !== undefined && !opts.data) throw new UsageError('E_OPTION_CONFLICT', '--outlier-threshold needs calibration data (per-channel |x| maxima): give --data');
  let qModel = model;
  let qPlan = plan;
  const recoveryNotes: string[] = [];
  if (opts.data) {
    const dataset = await ctx.dataset(opts.data, { maxSamples: calibSamples });
    const rec = await prepareRecovery(
      model,
      plan,
      table,
      rewriteOpts,
      () => dataset.batches(opts.batchSize),
      { algorithm: opts.algorithm, actOrder: opts.actOrder, dampRel: opts.dampening, biasCorrection: opts.biasCorrection, outlierThreshold: opts.outlierThreshold, smooth: opts.smooth },
      (p) => progress({ stage: p.stage, done: p.done, total: p.total }),
    );
    if (rec.model !== model && budget) throw new UsageError('E_OPTION_CONFLICT', `${rec.smooth?.used ? '--smooth' : `--algorithm ${opts.algorithm}`} rescales the graph, which --max-drop cannot search over yet: use --algorithm gptq without --smooth, or drop --max-drop`);
    qModel = rec.model;
    qPlan = rec.plan;
    rewriteOpts = rec.rewriteOptions;
    recoveryNotes.push(...rec.notes);
  }

  let finalPlan = qPlan;
  let budgetSummary: QuantizeBudget | undefined;
  if (budget) ({ plan: finalPlan, summary: budgetSummary } = await meetBudget(work, { opts, plan: qPlan, table, rewrite: rewriteOpts, req: budget, progress }));

  progress({ stage: 'rewrite' });
  const recordedLevel = opts.accuracyLevel ?? finalPlan.tuning?.accuracyLevel;
  let rewritten = applyPlan(qModel, finalPlan, table, { ...rewriteOpts, ...(qModel === model ? { index: work.index } : {}), ...(recordedLevel === undefined ? {} : { accuracyLevel: recordedLevel }) });
  let accuracyLevel = recordedLevel ?? DEFAULT_ACCURACY_LEVEL;
  let latency: QuantizeSummary['latency'];
  const latencyWarnings: string[] = [];
  let step: Awaited<ReturnType<typeof latencyStep>> | undefined;
  if (opts.bench) {
    // Float vs the planned rewrite (and its format candidates), interleaved and time-bounded.
    progress({ stage: 'latency' });
    try {
      step = await latencyStep({
        float: ctx.model,
        rewritten,
        rewriteAtLevel: (level) => applyPlan(qModel, finalPlan, table, { ...rewriteOpts, accuracyLevel: level }),
        rewriteWithPlan: budget || !opts.keepSlowFloat ? undefined : (p) => applyPlan(qModel, p, table, { ...rewriteOpts, accuracyLevel }),
        // Opt-in: static was chosen by default (--data, no --mode), dynamic may run faster (MatMul-heavy models).
        rewriteDynamic: opts.compareDynamic && opts.mode === 'auto' && !budget && finalPlan.mode === 'static' ? (p) => applyPlan(qModel, p, undefined, { ...rewriteOpts, accuracyLevel }) : undefined,
        plan: finalPlan,
        accuracyLevel: opts.accuracyLevel,
        data: opts.data,
        dataOptions: ctx.dataOptions,
        batchSize: opts.batchSize,
        seconds: opts.tuneSeconds,
        cacheDir: opts.latencyCache ? latencyCacheDir() : undefined,
        modelSha256: ctx.sha256,
        variantKey: { rewriteOpts, foldBatchNorm: opts.foldBatchNorm, equalized: equalized.filter((r) => r.applied).map((r) => r.tensor), table: table ? sha256(JSON.stringify(table.tensors)) : null },
      });
    } catch (err) {
      // The check must not fail the run: a model the latency feeds cannot drive (random inputs of a
      // model that needs real ones) is written unmeasured, and the summary says so.
      if (!(err instanceof QtoolError)) throw err;
      latencyWarnings.push(`latency not measured (${err.message.split('\n')[0].slice(0, 200)}); give --data with real samples, or --no-bench`);
    }
  }
  if (step) {
    rewritten = step.rewritten;
    accuracyLevel = step.accuracyLevel;
    if (step.tuning) finalPlan = { ...step.plan, tuning: step.tuning };
    latency = step.latency;
    latencyWarnings.push(...step.warnings);
  }

  if (budgetSummary) {
    // Layers the budget kept higher say so, instead of the rewriter's "plan: float for this layer".
    const kept = new Map(budgetSummary.kept.map((k, i) => [k.id, `--max-drop: kept at ${k.bits} (${i + 1} of ${budgetSummary!.kept.length}, most sensitive first)`]));
    for (const l of rewritten.summary.layers) if (kept.has(l.id)) l.reason = kept.get(l.id);
  }

  progress({ stage: 'verify' });
  let optimizedOps: Record<string, number>;
  try {
    optimizedOps = await optimizedOpCounts(rewritten.model, out, accuracyLevel);
  } catch (err) {
    // The model onnxruntime refused is the quantized one, built from the input; the output was never written.
    if (err instanceof OrtError && err.code === 'E_ORT_LOAD') {
      throw new OrtError('E_ORT_LOAD', `onnxruntime could not load the quantized model (${out} was not written): ${err.message.slice(err.message.indexOf('onnxruntime could not load the model: ') >= 0 ? err.message.indexOf('onnxruntime could not load the model: ') + 38 : 0)}`, { file: model.file, cause: err.cause });
    }
    throw err;
  }

  progress({ stage: 'save' });
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const saved = saveModel(rewritten.model, out, { externalData: opts.externalData });
  if (opts.savePlan) writeDocument(opts.savePlan, finalPlan);

  let fidelity: QuantizeSummary['fidelity'];
  if (opts.data && opts.fidelitySamples > 0) {
    progress({ stage: 'fidelity' });
    // Held out: the samples after the ones calibration read (the --max-drop tail, or those beyond
    // --samples); when --data has none, the calibration samples, flagged isHeldOut false.
    // A stream of unknown length is not counted (that would read it once more): fidelity then re-uses the calibration samples.
    const total = (await ctx.dataset(opts.data)).sampleCount;
    const from = plan.mode !== 'static' ? 0 : (budget?.heldOutFrom ?? (total !== undefined && total > calibSamples ? calibSamples : 0));
    const check = await checkFidelity(ctx.model, out, opts.data, opts.fidelitySamples, opts.batchSize, from, ctx.dataOptions);
    fidelity = { ...check.fidelity, isHeldOut: plan.mode !== 'static' || from > 0 };
    if (!fidelity.isHeldOut) rewritten.summary.notes.push(`fidelity measured on calibration samples: --data has no samples beyond the ${calibSamples} calibration read; give more for a held-out check`);
    warnings.push(...check.coverage);
    const failures = fidelityFailures(ctx.model, fidelity, opts.minTensorSqnrDb);
    if (failures.length > 0) {
      const quantized = rewritten.summary.layers.filter((l) => l.bits !== 'float').map((l) => l.id);
      let worst = '';
      if (quantized.length > 1 && quantized.length <= MAX_LAYERS_MEASURED) {
        progress({ stage: 'fidelity' });
        const held = await loadData(opts.data, model, { from, maxSamples: from + Math.min(WORST_LAYER_SAMPLES, opts.fidelitySamples), batchSize: opts.batchSize, read: ctx.dataOptions });
        const ranked = await worstLayers(model, finalPlan, table, rewriteOpts, held.batches, quantized);
        fidelity.worstLayers = ranked.slice(0, 5);
        worst = `; measured one layer at a time, the worst: ${ranked.slice(0, 3).map((w) => `${w.id} (${w.sqnrDb.toFixed(1)} dB alone)`).join(', ')}`;
      } else if (quantized.length > MAX_LAYERS_MEASURED) worst = `; ${quantized.length} layers are too many to measure one at a time here`;
      warnings.push(`fidelity below the floor on ${fidelity.samples}${fidelity.isHeldOut ? ' held-out' : ''} samples: ${failures.join('; ')}${worst}; run with --max-drop 1 (--metric agreement for classifiers and recognizers) to keep the most harmful layers float`);
    }
  }
  const unchanged = unchangedWarning(rewritten.summary.layers, plan.mode, opts.bits);
  if (unchanged) warnings.unshift(unchanged);

  // The input's size includes its external data files: a ratio against the graph file alone is meaningless.
  const inputBytes = ctx.sizeBytes > 0 ? modelFiles(model).reduce((a, f) => a + fileBytes(f), 0) : 0;
  const outputBytes = fileBytes(out) + saved.externalFiles.reduce((a, f) => a + fileBytes(f), 0);
  const summary: QuantizeSummary = {
    kind: 'qtool.quantize-summary',
    version: 1,
    input: { file: model.file, sizeBytes: inputBytes },
    output: { file: out, sizeBytes: outputBytes, externalFiles: saved.externalFiles },
    mode: finalPlan.mode,
    bits: opts.bits,
    sizeRatio: inputBytes > 0 ? outputBytes / inputBytes : 0,
    byOpType: byOpType(rewritten.summary.layers),
    layers: rewritten.summary.layers,
    notes: [
      ...latencyWarnings.map((w) => `WARNING: ${w}`),
      ...(folded && folded.folded.length > 0 ? [`folded ${folded.folded.reduce((a, f) => a + f.ops.length, 0)} BatchNormalization/Mul/Add node(s) into the Conv before them (--no-fold-batch-norm keeps them)`] : []),
      ...equalizeNotes,
      ...recoveryNotes,
      ...rewritten.summary.notes,
    ],
    ...(calibration ? { calibration } : {}),
    runtime: { loaded: true, optimizedOps },
    ...(fidelity ? { fidelity } : {}),
    ...(budgetSummary ? { budget: budgetSummary } : {}),
    ...(latency ? { latency } : {}),
    lowPrecision: rewritten.summary.lowPrecision,
    warnings,
  };
  return { summary, file: out, plan: finalPlan, table };
}

function resolveMode(opts: QuantizeSettings): Plan['mode'] {
  if (opts.mode !== 'auto') return opts.mode;
  if (opts.bits === 4) return 'weight-only';
  return opts.data || opts.calib ? 'static' : 'dynamic';
}

function fileBytes(f: string): number {
  return fs.statSync(f).size;
}

function byOpType(layers: readonly LayerRecord[]): QuantizeSummary['byOpType'] {
  const out: QuantizeSummary['byOpType'] = {};
  for (const l of [...layers].sort((a, b) => (a.opType < b.opType ? -1 : a.opType > b.opType ? 1 : 0))) {
    const e = (out[l.opType] ??= { int8: 0, int4: 0, float: 0 });
    if (l.bits === 8) e.int8++;
    else if (l.bits === 4) e.int4++;
    else e.float++;
  }
  return out;
}

/**
 * The GateError (exit 4) to raise after writing: --max-drop not met, or (without --allow-unchanged)
 * a run that quantized less than half the weight bytes; else undefined.
 */
export function quantizeGateError(summary: QuantizeSummary, opts: { allowUnchanged?: boolean } = {}): GateError | undefined {
  const b = summary.budget;
  if (!b || b.budgetMet) {
    const unchanged = opts.allowUnchanged ? undefined : unchangedWarning(summary.layers, summary.mode, summary.bits);
    return unchanged ? new GateError('E_UNCHANGED', `quantize: ${unchanged} (output written to ${summary.output.file})`, { file: summary.input.file }) : undefined;
  }
  return new GateError(
    'E_BUDGET_NOT_MET',
    summary.layers.length > 0 && summary.layers.every((l) => l.bits === 'float')
      ? `quantize: expected a ${b.metric} drop within ${b.maxDrop} ${b.dropUnit} with some layer quantized, got a pass only with every layer float, which quantizes nothing (output written to ${summary.output.file})`
      : `quantize: expected a ${b.metric} drop within ${b.maxDrop} ${b.dropUnit}, got ${b.final.drop.toPrecision(3)} with ${b.kept.length} layer(s) at ${b.levels[0]} (the best found; output written to ${summary.output.file})`,
    { file: summary.input.file },
  );
}
