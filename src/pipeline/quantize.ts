import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { calibrate, calibrateFile, calibrationTensors, type CalibrateCallbacks, type CalibrateFileOptions } from '../calibrate/index.js';
import { openDataset } from '../data/index.js';
import {
  CalibrationTableSchema,
  PlanSchema,
  QuantizeOptionsSchema,
  flattenIssues,
  readDocument,
  type CalibrationSummary,
  type CalibrationTable,
  type LayerRecord,
  type Plan,
  type QuantizeOptions,
  type EvalResult,
  type QuantizeBudget,
  type QuantizeOptionsInput,
  type QuantizeSummary,
} from '../documents/index.js';
import { GateError, InputError, UsageError } from '../errors.js';
import { checkOutputPath, sha256 } from '../files.js';
import { GraphIndex, loadModel, quantizableLayers, saveModel, walkGraphs, type Model } from '../onnx/index.js';
import { FidelityAccumulator } from '../quant/index.js';
import { applyPlan, rangesNeeded, uniformPlan, type ApplyPlanOptions } from '../rewrite/index.js';
import { Session, type Feeds } from '../runtime/index.js';
import { toFloat32 } from '../tensor/index.js';
import { makeEvaluator } from './evaluator.js';
import { loadData, type LoadedData } from './load-data.js';
import { searchModel } from './search.js';

export type QuantizeStage = 'calibrate' | 'budget' | 'search' | 'rewrite' | 'verify' | 'save' | 'fidelity';

export interface QuantizeCallbacks {
  onProgress?: (event: { stage: QuantizeStage; done?: number; total?: number; label?: string }) => void;
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

export function parseQuantizeOptions(input: QuantizeOptionsInput): QuantizeOptions {
  const r = QuantizeOptionsSchema.safeParse(input);
  if (!r.success) throw new UsageError('E_FLAG', `invalid quantize options: ${flattenIssues(r.error)}`);
  return r.data;
}

/**
 * load → (calibrate) → applyPlan → open the result in onnxruntime (a model it cannot load is never
 * written) → save atomically → float vs quantized fidelity check when data is given → summary.
 */
export async function quantize(source: string | Model, input: QuantizeOptionsInput = {}, callbacks: QuantizeCallbacks = {}): Promise<QuantizeResult> {
  const opts = parseQuantizeOptions(input);
  const progress = callbacks.onProgress ?? (() => {});
  if (opts.data && opts.calib) throw new UsageError('E_OPTION_CONFLICT', '--data and --calib are alternatives: give one');
  const model = typeof source === 'string' ? loadModel(source) : source;
  const plan = opts.plan ? readDocument(opts.plan, PlanSchema) : uniformPlan({ bits: opts.bits, mode: resolveMode(opts), blockSize: opts.blockSize, groupSize: opts.groupSize, symmetric: opts.symmetric, weightClip: opts.weightClip });
  if (plan.mode === 'static' && !opts.data && !opts.calib) {
    throw new UsageError('E_OPTION_CONFLICT', 'static quantization needs calibration data: give --data or --calib, or use --mode dynamic');
  }
  if (!opts.output && (model.file === '<bytes>' || !model.file.endsWith('.onnx'))) {
    if (model.file === '<bytes>') throw new UsageError('E_FLAG', 'a model given as bytes needs an output path (--output)');
  }
  const out = opts.output ?? defaultQuantizedPath(model.file, opts.bits);
  if (path.resolve(out) === path.resolve(model.file)) throw new UsageError('E_OUTPUT_EXISTS', `${out}: output would overwrite the input model`);
  checkOutputPath(out, { force: Boolean(opts.force) });

  const rewriteOpts: ApplyPlanOptions = {
    activationType: opts.activationType,
    int4Format: opts.format,
    accuracyLevel: opts.accuracyLevel,
    excludeOps: opts.excludeOps,
    excludeNodes: opts.excludeNodes,
    includeNodes: opts.includeNodes,
    foldActivations: opts.foldActivations,
  };
  if (opts.maxDrop === undefined && (opts.eval || opts.evalLabels || opts.metric)) {
    throw new UsageError('E_FLAG', `${opts.eval ? '--eval' : opts.evalLabels ? '--eval-labels' : '--metric'}: expected --max-drop (the budget it measures), got none`);
  }
  const budget = opts.maxDrop !== undefined ? await prepareBudget(model, opts, plan) : undefined;
  const calibSamples = budget?.calibSamples ?? opts.samples;
  let table: CalibrationTable | undefined;
  let calibration: QuantizeSummary['calibration'];
  if (plan.mode === 'static') {
    if (opts.calib) {
      table = readDocument(opts.calib, CalibrationTableSchema);
      checkTableCovers(table, opts.calib, model, plan, rewriteOpts);
      calibration = { source: opts.calib, method: table.method, samples: table.samples };
    } else {
      // Only the ranges this plan reads are observed (declare statistics, collect once).
      const dataset = await openDataset(opts.data!, model, { maxSamples: calibSamples });
      table = await calibrate(model, dataset, {
        method: opts.method,
        batchSize: opts.batchSize,
        maxSamples: calibSamples,
        tensors: planCalibrationTensors(model, plan, rewriteOpts),
        tensorsFrom: 'plan',
        onProgress: (p) => progress({ stage: 'calibrate', done: p.done, total: p.total }),
      });
      calibration = { source: opts.data!, method: table.method, samples: table.samples };
    }
  }

  let finalPlan = plan;
  let budgetSummary: QuantizeBudget | undefined;
  if (budget) ({ plan: finalPlan, summary: budgetSummary } = await meetBudget(model, opts, plan, table, rewriteOpts, budget, progress));

  progress({ stage: 'rewrite' });
  const rewritten = applyPlan(model, finalPlan, table, rewriteOpts);

  if (budgetSummary) {
    // Layers the budget kept higher say so, instead of the rewriter's "plan: float for this layer".
    const kept = new Map(budgetSummary.kept.map((k, i) => [k.id, `--max-drop: kept at ${k.bits} (${i + 1} of ${budgetSummary!.kept.length}, most sensitive first)`]));
    for (const l of rewritten.summary.layers) if (kept.has(l.id)) l.reason = kept.get(l.id);
  }

  progress({ stage: 'verify' });
  const optimizedOps = await optimizedOpCounts(rewritten.model, out, opts.accuracyLevel);

  progress({ stage: 'save' });
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const saved = saveModel(rewritten.model, out, { externalData: opts.externalData });

  let fidelity: QuantizeSummary['fidelity'];
  if (opts.data && opts.fidelitySamples > 0) {
    progress({ stage: 'fidelity' });
    fidelity = await checkFidelity(model, out, opts.data, opts.fidelitySamples, opts.batchSize);
  }

  const inputBytes = model.file !== '<bytes>' && fs.existsSync(model.file) ? fileBytes(model.file) : 0;
  const outputBytes = fileBytes(out) + saved.externalFiles.reduce((a, f) => a + fileBytes(f), 0);
  const summary: QuantizeSummary = {
    kind: 'qtool.quantize-summary',
    version: 1,
    input: { file: model.file, sizeBytes: inputBytes },
    output: { file: out, sizeBytes: outputBytes, externalFiles: saved.externalFiles },
    mode: plan.mode,
    bits: opts.bits,
    sizeRatio: inputBytes > 0 ? outputBytes / inputBytes : 0,
    byOpType: byOpType(rewritten.summary.layers),
    layers: rewritten.summary.layers,
    notes: rewritten.summary.notes,
    ...(calibration ? { calibration } : {}),
    runtime: { loaded: true, optimizedOps },
    ...(fidelity ? { fidelity } : {}),
    ...(budgetSummary ? { budget: budgetSummary } : {}),
  };
  return { summary, file: out, plan: finalPlan, table };
}

/**
 * The main-graph tensors calibration must observe for `applyPlan(model, plan, table, opts)`: the
 * ranges the rewrite reads (rangesNeeded) that calibration can observe (main graph, float), in
 * topological order.
 */
export function planCalibrationTensors(model: Model, plan: Plan, opts: ApplyPlanOptions = {}): string[] {
  const needed = new Set(rangesNeeded(model, plan, opts));
  return calibrationTensors(model).filter((t) => needed.has(t));
}

/**
 * The tensors any static plan can read ranges for, whatever its rewrite options: the uniform 8-bit
 * static plan (every layer quantized reads the most) with and without Relu/Clip folding (int8
 * activations read the unfolded set). `qtool calibrate` observes these by default, so its table
 * serves every later `qtool quantize --calib`.
 */
export function staticPlanCalibrationTensors(model: Model): string[] {
  const plan = uniformPlan({ bits: 8, mode: 'static' });
  const needed = new Set([...rangesNeeded(model, plan), ...rangesNeeded(model, plan, { foldActivations: false })]);
  return calibrationTensors(model).filter((t) => needed.has(t));
}

export interface CalibrateModelOptions extends CalibrateFileOptions {
  /** Observe every float tensor of the main graph (settings.tensors 'all') instead of those static plans read ('plans'). */
  allTensors?: boolean;
}

/**
 * `qtool calibrate`: calibrateFile observing only the tensors a static rewrite can read ranges for
 * (staticPlanCalibrationTensors), or every float tensor with `allTensors` or an explicit `tensors` list.
 */
export async function calibrateModelFile(modelPath: string, opts: CalibrateModelOptions, callbacks: CalibrateCallbacks = {}): Promise<{ table: CalibrationTable; summary: CalibrationSummary }> {
  const { allTensors, ...rest } = opts;
  if (allTensors && rest.tensors) throw new UsageError('E_OPTION_CONFLICT', '--all-tensors and a tensor list are alternatives: give one');
  const fileOpts: CalibrateFileOptions = allTensors || rest.tensors ? rest : { ...rest, tensorsFor: (m) => ({ tensors: staticPlanCalibrationTensors(m), from: 'plans' }) };
  return calibrateFile(modelPath, fileOpts, callbacks);
}

/**
 * A table calibrated for a plan ('plan') or for static plans ('plans') must hold every range this
 * rewrite reads; a missing one would silently leave a layer's activations float.
 */
function checkTableCovers(table: CalibrationTable, file: string, model: Model, plan: Plan, opts: ApplyPlanOptions): void {
  const from = table.settings.tensors;
  if (from !== 'plan' && from !== 'plans') return;
  const missing = planCalibrationTensors(model, plan, opts).filter((t) => !table.tensors[t]);
  if (missing.length === 0) return;
  throw new InputError(
    'E_CALIB_INCOMPLETE',
    `calibration table: expected a range for every tensor this plan reads, got none for ${missing.length} (e.g. "${missing[0]}"; the table observed only the tensors its ${from === 'plan' ? 'own plan' : 'static plans'} read): recalibrate with \`qtool calibrate --all-tensors\` or quantize with --data`,
    { file },
  );
}

function resolveMode(opts: QuantizeOptions): Plan['mode'] {
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
 * Open the quantized model in onnxruntime with all optimizations and return the op counts of the
 * graph it will run (fused integer kernels). Throws OrtError when onnxruntime refuses the model.
 */
export async function optimizedOpCounts(model: Model, name: string, accuracyLevel = 4): Promise<Record<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-opt-'));
  try {
    const optimizedModelFilePath = path.join(dir, 'optimized.onnx');
    const s = await Session.open(model, { name, optimizedModelFilePath, config: { 'session.qdq_matmulnbits_accuracy_level': String(accuracyLevel) } });
    await s.release();
    const counts: Record<string, number> = {};
    if (fs.existsSync(optimizedModelFilePath)) {
      const opt = loadModel(optimizedModelFilePath, { checkExternalData: false });
      for (const g of walkGraphs(opt.proto.graph!)) for (const n of g.node) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
    }
    const sorted: Record<string, number> = {};
    for (const k of Object.keys(counts).sort()) sorted[k] = counts[k];
    return sorted;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Run float and quantized models on the first `samples` samples and compare every output. */
export async function checkFidelity(model: Model, quantizedFile: string, data: string, samples: number, batchSize: number): Promise<NonNullable<QuantizeSummary['fidelity']>> {
  const dataset = await openDataset(data, model, { maxSamples: samples });
  const f = await Session.open(model);
  const q = await Session.open(quantizedFile);
  const acc = new Map<string, FidelityAccumulator>();
  let n = 0;
  try {
    for await (const feeds of dataset.batches(batchSize)) {
      const fo = await f.run(feeds as Feeds);
      const qo = await q.run(feeds as Feeds);
      n += dataset.samplesIn(feeds);
      for (const [name, t] of Object.entries(fo)) {
        if (!(name in qo) || !isFloat(t.dtype)) continue;
        const a = acc.get(name) ?? new FidelityAccumulator();
        acc.set(name, a);
        const classes = t.dims.length === 2 && t.dims[1] > 1 ? t.dims[1] : undefined;
        a.update(toFloat32(t), toFloat32(qo[name]), classes);
      }
    }
  } finally {
    await f.release();
    await q.release();
  }
  const outputs = [...acc].map(([name, a]) => {
    const r = a.result();
    return { name, cosine: r.cosine, sqnrDb: Number.isFinite(r.sqnrDb) ? r.sqnrDb : 999, maxAbsError: r.maxAbsError, ...(r.top1Agreement !== undefined ? { top1Agreement: r.top1Agreement } : {}) };
  });
  return { samples: n, outputs };
}

function isFloat(d: string): boolean {
  return d === 'float32' || d === 'float16' || d === 'float64' || d === 'bfloat16';
}

/** The evaluation set of a --max-drop run and how many leading --data samples calibration may use. */
interface BudgetRequest {
  metric: QuantizeBudget['metric'];
  levels: QuantizeBudget['levels'];
  eval: QuantizeBudget['eval'];
  /** Calibration samples: --samples, cut to the samples before the held-out tail. */
  calibSamples: number;
  /** First held-out sample of --data (undefined with --eval). */
  heldOutFrom?: number;
}

/** Samples of --data held out for --max-drop when no --eval is given: the last quarter, at least this many. */
export const MIN_HELD_OUT_SAMPLES = 4;

/**
 * Check the --max-drop options and pick the evaluation set: --eval, or the last 25% of --data (at
 * least MIN_HELD_OUT_SAMPLES) kept out of calibration.
 */
async function prepareBudget(model: Model, opts: QuantizeOptions, plan: Plan): Promise<BudgetRequest> {
  if (opts.plan) throw new UsageError('E_OPTION_CONFLICT', '--max-drop and --plan are alternatives: --max-drop finds the plan');
  const metric = opts.metric ?? (opts.evalLabels ? 'accuracy' : 'cosine');
  const levels: QuantizeBudget['levels'] = opts.bits === 4 ? [8, 4] : ['float', 8];
  if (metric === 'sqnr' && opts.bits === 8) {
    throw new UsageError('E_OPTION_CONFLICT', '--metric sqnr: expected --bits 4 (the sqnr drop is relative to the all-8-bit model, so at --bits 8 it is always 0; float has no finite SQNR): use --metric cosine or agreement');
  }
  if (metric === 'accuracy' && !opts.evalLabels) throw new UsageError('E_FLAG', '--metric accuracy: expected --eval-labels, got none');
  if (opts.eval) {
    const ds = await openDataset(opts.eval, model);
    return { metric, levels, eval: { source: opts.eval, samples: ds.sampleCount, isHeldOut: false }, calibSamples: opts.samples };
  }
  if (!opts.data) throw new UsageError('E_FLAG', `--max-drop: expected evaluation data (--eval, or --data to hold out a part of), got ${opts.calib ? 'only --calib' : 'neither'}`);
  const n = (await openDataset(opts.data, model)).sampleCount;
  const heldOut = Math.max(MIN_HELD_OUT_SAMPLES, Math.floor(n / 4));
  if (n - heldOut < 1) {
    throw new InputError('E_DATA_EMPTY', `--max-drop without --eval: expected at least ${heldOut + 1} samples (${heldOut} held out for evaluation, the rest for calibration), got ${n}: give --eval`, { file: opts.data });
  }
  return {
    metric,
    levels,
    eval: { source: `${opts.data} [${n - heldOut}:${n}]`, samples: heldOut, isHeldOut: true },
    calibSamples: Math.min(opts.samples, n - heldOut),
    heldOutFrom: n - heldOut,
  };
}

/**
 * --max-drop: measure the uniform plan on the evaluation data; when it misses the budget, run the
 * search (searchModel) over {float, 8} (or {8, 4} at --bits 4) with the same table and rewrite options
 * to keep the fewest most sensitive layers at the higher level. Returns the plan to write.
 */
async function meetBudget(
  model: Model,
  opts: QuantizeOptions,
  plan: Plan,
  table: CalibrationTable | undefined,
  rewrite: ApplyPlanOptions,
  req: BudgetRequest,
  progress: NonNullable<QuantizeCallbacks['onProgress']>,
): Promise<{ plan: Plan; summary: QuantizeBudget }> {
  const { metric, levels } = req;
  const maxDrop = opts.maxDrop!;
  const dropUnit = metric === 'accuracy' || metric === 'agreement' ? 'points' : 'percent';
  const notes: string[] = [];
  const layers = quantizableLayers(new GraphIndex(model.proto.graph!, model.file));
  const opTypeOf = new Map(layers.map((l) => [l.id, l.opType]));
  const low = opts.bits;
  // The plan written for a per-layer level assignment: the uniform plan, with the layers the search
  // keeps higher listed (float, or 8-bit per channel at --bits 4).
  const mapPlan = (p: Plan): Plan => {
    const entries: Plan['layers'] = {};
    for (const [id, e] of Object.entries(p.layers)) {
      if (e.bits === low) continue;
      entries[id] = e.bits === 'float' ? { bits: 'float' } : { bits: 8, granularity: 'channel', rounding: plan.defaults.rounding };
    }
    return { ...plan, layers: entries };
  };
  const loadEval = (): Promise<LoadedData> =>
    req.heldOutFrom !== undefined
      ? loadData(opts.data!, model, { labels: opts.evalLabels, from: req.heldOutFrom, batchSize: 256 })
      : loadData(opts.eval!, model, { labels: opts.evalLabels, batchSize: 256 });
  if (req.eval.isHeldOut) notes.push(`evaluated on the last ${req.eval.samples} samples of ${opts.data}, held out${plan.mode === 'static' ? ` of calibration (calibrated on the first ${req.calibSamples})` : ''}; give --eval to choose the evaluation data`);

  progress({ stage: 'budget' });
  const evalData = await loadEval();
  const evaluator = await makeEvaluator(model, evalData, { metric, path: 'rewrite', table, rewrite });
  const known: { plan: Plan; result: EvalResult }[] = [];
  let reference: QuantizeBudget['reference'];
  let uniformValue: number;
  try {
    const measure = async (p: Plan): Promise<number> => {
      const result = await evaluator.evaluate(p);
      known.push({ plan: p, result });
      return result.value;
    };
    if (metric === 'accuracy') reference = { label: 'float', value: await measure({ ...plan, defaults: { bits: 'float' }, layers: {} }) };
    else if (metric === 'sqnr') reference = { label: 'all 8', value: await measure(mapPlan({ ...plan, layers: Object.fromEntries(layers.map((l) => [l.id, { bits: 8 as const }])) })) };
    else reference = { label: 'float', value: 1 };
    uniformValue = await measure(plan);
  } finally {
    await evaluator.close();
  }
  const result = (value: number): QuantizeBudget['uniform'] => {
    const r = reference.value;
    const drop = dropUnit === 'points' ? (r - value) * 100 : ((r - value) / Math.abs(r)) * 100;
    return { value, drop, passes: drop <= maxDrop + 1e-9 };
  };
  const uniform = result(uniformValue);
  const base = { metric, maxDrop, dropUnit, eval: req.eval, reference, levels, uniform } as const;
  // The float reference run (accuracy) is not a candidate: not counted.
  const candidates = (n: number) => n - (metric === 'accuracy' ? 1 : 0);
  if (uniform.passes) {
    return { plan, summary: { ...base, final: uniform, kept: [], evaluations: candidates(known.length), isSearched: false, budgetMet: true, notes } };
  }

  // Search: the same evaluation data, table and rewrite options; the uniform (and reference) results are reused.
  progress({ stage: 'search' });
  const source = { file: model.file, sha256: model.file !== '<bytes>' && fs.existsSync(model.file) ? sha256(fs.readFileSync(model.file)) : '' };
  const loadProbes = (subset: number, seed: number): Promise<LoadedData> =>
    opts.data ? loadData(opts.data, model, { maxSamples: req.calibSamples, subset, seed, batchSize: subset }) : loadEval();
  if (!opts.data) notes.push('sensitivity probes: the evaluation data (no --data given)');
  const core = await searchModel(
    model,
    { source, table, loadProbes, loadEval, rewrite, mapPlan, known },
    {
      mode: plan.mode,
      bits: levels,
      metric,
      maxDrop,
      blockSize: opts.blockSize,
      evaluator: 'auto',
      onProgress: (e) => {
        if (e.phase === 'evaluate') progress({ stage: 'search', done: e.done, total: e.total, label: e.label });
      },
    },
  );
  const report = core.report;
  const chosen = report.evaluations[report.chosen];
  const finalPlan = mapPlan(core.plan);
  let evaluations = candidates(known.length) + core.evaluated;
  let final = result(chosen.value);
  if (core.path !== 'rewrite') {
    // The search measured fake-quantized weights (large model): measure the model actually written.
    const ev = await makeEvaluator(model, evalData, { metric, path: 'rewrite', table, rewrite });
    try {
      final = result((await ev.evaluate(finalPlan)).value);
      evaluations++;
    } finally {
      await ev.close();
    }
    notes.push(`the search measured fake-quantized weights (large model); the written model measured ${final.value.toFixed(5)}`);
  }
  notes.push(...core.notes, ...report.notes);

  // Why each kept layer stays higher: its rank in the step's sensitivity order, and what keeping one fewer measured.
  const kept: QuantizeBudget['kept'] = [];
  const step = report.steps[0];
  const fewer = step ? report.evaluations.find((e) => e.step !== null && e.k === step.k - 1 && e.step === `${step.from}→${step.to}`) : undefined;
  for (const [id, e] of Object.entries(finalPlan.layers)) {
    if (e.bits === low || e.bits === 4 || e.bits === 16) continue;
    const rank = step ? step.candidates.indexOf(id) + 1 : 0;
    const why = [
      rank > 0 ? `rank ${rank} of ${step!.candidates.length} by sensitivity` : 'kept higher by the search',
      fewer ? `keeping ${step!.k - 1} higher measured drop ${result(fewer.value).drop.toPrecision(3)} ${dropUnit} > ${maxDrop}` : '',
      !report.budgetMet ? `every layer at ${levels[0]} still misses the budget` : '',
    ].filter(Boolean);
    kept.push({ id, opType: opTypeOf.get(id) ?? '', bits: e.bits, reason: why.join('; ') });
  }
  kept.sort((a, b) => (step ? step.candidates.indexOf(a.id) - step.candidates.indexOf(b.id) : 0));
  const budgetMet = report.budgetMet && final.passes;
  if (!budgetMet) notes.push(`budget not met: the best configuration found (${chosen.label}) has drop ${final.drop.toPrecision(3)} ${dropUnit} > ${maxDrop}; written anyway`);
  return { plan: finalPlan, summary: { ...base, final, kept, evaluations, isSearched: true, budgetMet, notes } };
}

/** The GateError (exit 4) to raise after writing when --max-drop was not met, else undefined. */
export function quantizeGateError(summary: QuantizeSummary): GateError | undefined {
  const b = summary.budget;
  if (!b || b.budgetMet) return undefined;
  return new GateError(
    'E_BUDGET_NOT_MET',
    `quantize: expected a ${b.metric} drop within ${b.maxDrop} ${b.dropUnit}, got ${b.final.drop.toPrecision(3)} with ${b.kept.length} layer(s) at ${b.levels[0]} (the best found; output written to ${summary.output.file})`,
    { file: summary.input.file },
  );
}
