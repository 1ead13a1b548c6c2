/**
 * `--max-drop` of `qtool quantize`: pick the evaluation set (prepareBudget), measure the uniform plan
 * and, when it misses the budget, search per-layer levels (meetBudget → searchModel). Imports point
 * one way: quantize → budget → search-model → shared rooms.
 */
import type { CalibrationTable, EvalResult, Plan, QuantizeBudget, QuantizeSettings } from '../documents/index.js';
import { InputError, UsageError } from '../errors.js';
import { quantizableLayers } from '../onnx/index.js';
import { metricDrop } from '../quant/index.js';
import type { ApplyPlanOptions } from '../rewrite/index.js';
import { makeEvaluator } from './evaluator.js';
import { countSamples } from '../data/index.js';
import { sourceName } from './data-read.js';
import { loadData, type LoadedData } from './load-data.js';
import type { ModelContext } from './model-context.js';
import { parseSearchOptions, searchModel } from './search-model.js';

/** One progress event of `quantize()`. */
export type QuantizeStage = 'calibrate' | 'layer-stats' | 'smooth' | 'awq' | 'gptq' | 'bias-correction' | 'budget' | 'search' | 'rewrite' | 'latency' | 'verify' | 'save' | 'fidelity';
export interface QuantizeProgress {
  stage: QuantizeStage;
  done?: number;
  total?: number;
  label?: string;
}

/** The evaluation set of a --max-drop run and how many leading --data samples calibration may use. */
export interface BudgetRequest {
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
export async function prepareBudget(ctx: ModelContext, opts: QuantizeSettings, plan: Plan): Promise<BudgetRequest> {
  if (opts.plan) throw new UsageError('E_OPTION_CONFLICT', '--max-drop and --plan are alternatives: --max-drop finds the plan');
  // Labels: --eval-labels, or the evaluation data's own (image class folders, text "label").
  const evalData = opts.eval ?? opts.data;
  const hasLabels = opts.evalLabels !== undefined || (evalData !== undefined && (await ctx.dataset(evalData)).labels !== undefined);
  const metric = opts.metric ?? (hasLabels ? 'accuracy' : 'cosine');
  const levels: QuantizeBudget['levels'] = opts.bits === 4 ? [8, 4] : ['float', 8];
  if (metric === 'sqnr' && opts.bits === 8) {
    throw new UsageError('E_OPTION_CONFLICT', '--metric sqnr: expected --bits 4 (the sqnr drop is relative to the all-8-bit model, so at --bits 8 it is always 0; float has no finite SQNR): use --metric cosine or agreement');
  }
  if (metric === 'accuracy' && !hasLabels) throw new UsageError('E_FLAG', '--metric accuracy: expected --eval-labels, got none');
  if (opts.eval) {
    const ds = await ctx.dataset(opts.eval);
    return { metric, levels, eval: { source: sourceName(opts.eval, ds), samples: await countSamples(ds), isHeldOut: false }, calibSamples: opts.samples };
  }
  if (!opts.data) throw new UsageError('E_FLAG', `--max-drop: expected evaluation data (--eval, or --data to hold out a part of), got ${opts.calib ? 'only --calib' : 'neither'}`);
  const dataDs = await ctx.dataset(opts.data);
  const n = await countSamples(dataDs);
  const dataName = sourceName(opts.data, dataDs);
  const heldOut = Math.max(MIN_HELD_OUT_SAMPLES, Math.floor(n / 4));
  if (n - heldOut < 1) {
    throw new InputError('E_DATA_EMPTY', `--max-drop without --eval: expected at least ${heldOut + 1} samples (${heldOut} held out for evaluation, the rest for calibration), got ${n}: give --eval`, { file: dataName });
  }
  return {
    metric,
    levels,
    eval: { source: `${dataName} [${n - heldOut}:${n}]`, samples: heldOut, isHeldOut: true },
    calibSamples: Math.min(opts.samples, n - heldOut),
    heldOutFrom: n - heldOut,
  };
}

/** What meetBudget works from: the parsed quantize settings, the uniform plan, its table and rewrite options, the budget request. */
export interface MeetBudgetOptions {
  opts: QuantizeSettings;
  /** The uniform plan the options describe. */
  plan: Plan;
  /** Static mode: the calibration table every evaluation uses. */
  table: CalibrationTable | undefined;
  rewrite: ApplyPlanOptions;
  req: BudgetRequest;
  progress: (event: QuantizeProgress) => void;
}

/**
 * --max-drop: measure the uniform plan on the evaluation data; when it misses the budget, run the
 * search (searchModel) over {float, 8} (or {8, 4} at --bits 4) with the same table and rewrite options
 * to keep the fewest most sensitive layers at the higher level. Returns the plan to write.
 */
export async function meetBudget(ctx: ModelContext, { opts, plan, table, rewrite, req, progress }: MeetBudgetOptions): Promise<{ plan: Plan; summary: QuantizeBudget }> {
  const { model } = ctx;
  const { metric, levels } = req;
  const maxDrop = opts.maxDrop!;
  const dropUnit = metric === 'accuracy' || metric === 'agreement' ? 'points' : 'percent';
  const notes: string[] = [];
  const layers = quantizableLayers(ctx.index);
  const opTypeOf = new Map(layers.map((l) => [l.id, l.opType]));
  const low = opts.bits;
  // The plan written for a per-layer level assignment: the uniform plan, with the layers the search
  // keeps higher listed (float, or 8-bit per channel at --bits 4).
  // Layers p does not list take p's defaults (a single-layer sensitivity plan lists one layer over
  // float defaults: the others must stay float, not take the uniform plan's bits).
  const mapPlan = (p: Plan): Plan => {
    const entries: Plan['layers'] = {};
    for (const { id } of layers) {
      const e = p.layers[id] ?? p.defaults;
      if (e.bits === low) continue;
      entries[id] = e.bits === 'float' ? { bits: 'float' } : { bits: 8, granularity: 'channel', rounding: plan.defaults.rounding };
    }
    return { ...plan, layers: entries };
  };
  const loadEval = (): Promise<LoadedData> =>
    req.heldOutFrom !== undefined
      ? loadData(opts.data!, model, { labels: opts.evalLabels, from: req.heldOutFrom, batchSize: 256, read: ctx.dataOptions })
      : loadData(opts.eval!, model, { labels: opts.evalLabels, batchSize: 256, read: ctx.dataOptions });
  if (req.eval.isHeldOut) notes.push(`evaluated on the last ${req.eval.samples} samples of ${sourceName(opts.data!)}, held out${plan.mode === 'static' ? ` of calibration (calibrated on the first ${req.calibSamples})` : ''}; give --eval to choose the evaluation data`);

  progress({ stage: 'budget' });
  const evalData = await loadEval();
  const evaluator = await makeEvaluator(model, evalData, { metric, path: 'rewrite', table, rewrite, index: ctx.index });
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
    const drop = metricDrop(reference.value, value, dropUnit);
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
  const source = ctx.source;
  const loadProbes = (subset: number, seed: number): Promise<LoadedData> =>
    opts.data ? loadData(opts.data, model, { maxSamples: req.calibSamples, subset, seed, batchSize: subset, read: ctx.dataOptions }) : loadEval();
  if (!opts.data) notes.push('sensitivity probes: the evaluation data (no --data given)');
  const core = await searchModel(
    model,
    { source, index: ctx.index, table, loadProbes, loadEval, rewrite, mapPlan, known },
    {
      // The search settings of this budget, parsed once here (the door of --max-drop's search).
      settings: parseSearchOptions({ mode: plan.mode, bits: levels, metric, maxDrop, blockSize: opts.blockSize }),
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
    const ev = await makeEvaluator(model, evalData, { metric, path: 'rewrite', table, rewrite, index: ctx.index });
    try {
      final = result((await ev.evaluate(finalPlan)).value);
      evaluations++;
    } finally {
      await ev.close();
    }
    notes.push(`the search measured fake-quantized weights (large model); the written model measured ${final.value.toFixed(5)}`);
  }
  notes.push(...core.notes, ...report.notes);

  // A plan that quantizes nothing is the input model again: never "budget met" (issue 11).
  const quantizesNothing = layers.length > 0 && layers.every((l) => (finalPlan.layers[l.id] ?? finalPlan.defaults).bits === 'float');
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
      !report.budgetMet && !quantizesNothing ? `every layer at ${levels[0]} still misses the budget` : '',
    ].filter(Boolean);
    kept.push({ id, opType: opTypeOf.get(id) ?? '', bits: e.bits, reason: why.join('; ') });
  }
  kept.sort((a, b) => (step ? step.candidates.indexOf(a.id) - step.candidates.indexOf(b.id) : 0));
  const budgetMet = report.budgetMet && final.passes && !quantizesNothing;
  if (quantizesNothing) notes.push('budget not met: only keeping every layer float passes, which writes the input model unchanged (quantizes nothing); loosen --max-drop or check the calibration data');
  else if (!budgetMet) notes.push(`budget not met: the best configuration found (${chosen.label}) has drop ${final.drop.toPrecision(3)} ${dropUnit} > ${maxDrop}; written anyway`);
  return { plan: finalPlan, summary: { ...base, final, kept, evaluations, isSearched: true, budgetMet, notes } };
}

