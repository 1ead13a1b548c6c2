/**
 * The search on an already loaded model: sensitivity (or a saved report) → searchPlan with the real
 * evaluator. Shared by `qtool search` (search.ts) and `qtool quantize --max-drop` (budget.ts).
 */
import {
  flattenIssues,
  parseDocument,
  readDocument,
  SearchOptionsSchema,
  SensitivityOptionsSchema,
  SensitivityReportSchema,
  type CalibrationTable,
  type EvalResult,
  type LayerBits,
  type Plan,
  type SearchOptions,
  type SearchReport,
  type SearchSettings,
  type SensitivityOptions,
  type SensitivityReport,
} from '../documents/index.js';
import { UsageError } from '../errors.js';
import type { GraphIndex, Model } from '../onnx/index.js';
import type { ApplyPlanOptions } from '../rewrite/index.js';
import { applyPlan } from '../rewrite/index.js';
import { layerPlan, searchPlan, type SearchLatencyHooks, type SearchProgress } from '../search/index.js';
import { measureSensitivity, type SensitivityProgress } from '../sensitivity/index.js';
import { staticPlan } from './calibration-plan.js';
import { autoEvaluatorPath, makeEvaluator, rewriteOutputs, type Evaluator } from './evaluator.js';
import type { LoadedData } from './load-data.js';
import { searchLatencyHooks, type SearchLatencyOptions } from './search-latency.js';

/** Progress of the one calibration pass of a static-mode search. */
export interface SearchCalibrationProgress {
  phase: 'calibrate';
  done: number;
  total: number;
}

/** How the search measures, besides its settings: sensitivity (or a saved report), the evaluator, progress. */
export interface SearchMeasureOptions {
  /** Reuse a sensitivity report instead of measuring. */
  sensitivityReport?: string;
  /** Sensitivity settings (few probes by default: the search only needs the order). */
  sensitivity?: SensitivityOptions;
  /**
   * 'rewrite': applyPlan + onnxruntime per evaluation (the model the search writes); 'weights':
   * fake-quantized weights in one weights-as-inputs session; 'auto' (default): rewrite unless the model
   * is large or static mode has no table (autoEvaluatorPath).
   */
  evaluator?: 'weights' | 'rewrite' | 'auto';
  onProgress?: (e: SearchProgress | SensitivityProgress | SearchCalibrationProgress) => void;
}

/** Options of searchModel: the parsed search settings (SearchOptionsSchema, parsed once by the door) and how to measure. */
export interface SearchModelOptions extends SearchMeasureOptions {
  settings: SearchSettings;
}

/** Parse the search options once (the doors of `qtool search` and `quantize --max-drop`); a bad value is a UsageError. */
export function parseSearchOptions(options: SearchOptions): SearchSettings {
  const r = SearchOptionsSchema.safeParse(options);
  if (!r.success) throw new UsageError('E_FLAG', `invalid search options: ${flattenIssues(r.error)}`);
  const isLatency = r.data.objective === 'latency' || r.data.maxLatencyMs !== undefined;
  if (new Set(isLatency ? ['float', ...r.data.bits] : r.data.bits).size < 2) throw new UsageError('E_FLAG', 'invalid search options: bits: expected at least two distinct levels (with --objective latency float is always one)');
  return r.data;
}

/** What searchModel needs besides the model: its identity, the table and the data as loaders. */
export interface SearchModelInputs {
  source: { file: string; sha256: string };
  /** The model's GraphIndex (ModelContext.index), shared with the evaluator and every applyPlan. */
  index?: GraphIndex;
  /** Static mode: the calibration table every evaluation uses. */
  table?: CalibrationTable;
  /** The sensitivity probes: a seeded subset of `subset` calibration samples. */
  loadProbes: (subset: number, seed: number) => Promise<LoadedData>;
  /** The evaluation data (read after sensitivity). */
  loadEval: () => Promise<LoadedData>;
  /** Rewrite options every evaluated plan is applied with (`qtool quantize` passes its flags). */
  rewrite?: ApplyPlanOptions;
  /** The plan actually rewritten for each plan the search considers (default: itself). */
  mapPlan?: (plan: Plan) => Plan;
  /** Evaluations already made on the same evaluation data, by (mapped) plan: not run again. */
  known?: ReadonlyArray<{ plan: Plan; result: EvalResult }>;
  /** Profile per-layer latency costs and time every evaluated configuration (objective latency needs it). */
  latency?: SearchLatencyOptions;
}

export interface SearchModelResult {
  /** searchPlan's plan (per-layer levels, before mapPlan) and report. */
  plan: Plan;
  report: SearchReport;
  sens: SensitivityReport;
  path: 'weights' | 'rewrite';
  evaluator: Evaluator;
  /** Evaluations run (cache hits from `known` excluded). */
  evaluated: number;
  sensitivityRuns: number;
  sensitivityMs: number;
  evaluationStart: number;
  /** How the layers were ordered (for the report). */
  notes: string[];
}

/**
 * The search on an already loaded model and table: sensitivity (or a saved report) → searchPlan with
 * the real evaluator. Writes nothing and never throws for a missed budget (report.budgetMet says).
 * `search()` and `quantize({ maxDrop })` both call it.
 */
export async function searchModel(model: Model, inputs: SearchModelInputs, opts: SearchModelOptions): Promise<SearchModelResult> {
  const { settings } = opts;
  const mode = settings.mode;
  const { source, table } = inputs;
  const mapPlan = inputs.mapPlan ?? ((p: Plan) => p);
  const notes: string[] = [];
  const path = !opts.evaluator || opts.evaluator === 'auto' ? autoEvaluatorPath(model, mode, table) : opts.evaluator;
  // Static mode with the real evaluator: the measured single-layer terms are real static rewrites of
  // layer i alone (its input activation quantized too), and they alone order the layers.
  const isStaticMeasured = mode === 'static' && path === 'rewrite';

  let t0 = performance.now();
  let sens: SensitivityReport;
  let sensitivityRuns = 0;
  if (opts.sensitivityReport) {
    sens = readDocument(opts.sensitivityReport, SensitivityReportSchema);
  } else {
    // Few probes: the search needs only the order. Static mode with measured static losses uses Ω only
    // for the report and the knapsack, so the Hessian gets the minimum (PaddleOCR det: 16.5 s → 3.9 s).
    const probeDefaults = isStaticMeasured ? { probes: 2, minProbes: 2, stabilityProbes: 0 } : { probes: 8, minProbes: 4, stabilityProbes: 1 };
    const bits = [...new Set<LayerBits>(settings.bits)].filter((b): b is 4 | 8 | 16 => b !== 'float');
    // The search's own sensitivity defaults over the schema's, then one parse.
    const parsed = SensitivityOptionsSchema.safeParse({ ...probeDefaults, samples: 32, ...opts.sensitivity, bits: opts.sensitivity?.bits ?? bits });
    if (!parsed.success) throw new UsageError('E_FLAG', `invalid sensitivity options: ${flattenIssues(parsed.error)}`);
    const so = parsed.data;
    const calib = await inputs.loadProbes(so.samples, so.seed);
    const output = model.proto.graph!.output[0].name;
    const blockSize = settings.blockSize;
    const assignmentOutputs = isStaticMeasured
      ? async (a: Readonly<Record<string, LayerBits>>) => (await rewriteOutputs(model, mapPlan(staticPlan(a, blockSize)), table, calib.batches, output, { ...inputs.rewrite, index: inputs.index })).outputs
      : undefined;
    const r = await measureSensitivity(model, { batches: calib.batches, labels: calib.labels }, { ...so, samples: calib.samples }, { onProgress: opts.onProgress, source, assignmentOutputs });
    sens = parseDocument(r.report, SensitivityReportSchema);
    sensitivityRuns = r.stats.runs.reference + r.stats.runs.hessian + r.stats.runs.measured;
  }
  const orderBy = isStaticMeasured && sens.measuredPath === 'rewrite' ? 'measured' : 'combined';
  if (mode === 'static') {
    notes.push(
      orderBy === 'measured'
        ? 'static: layers ordered by measured single-layer losses of real static rewrites (layer i alone at each bit width, its input activation quantized) and leave-one-out; Omega (weights only) not used for the order'
        : `static: layers ordered by the combined score of a sensitivity report measured through ${sens.measuredPath === 'rewrite' ? 'real rewrites' : 'fake-quantized weights (activation quantization not seen)'}`,
    );
  }
  const sensitivityMs = performance.now() - t0;
  const evaluationStart = performance.now();
  const evalData = await inputs.loadEval();
  const evaluator = await makeEvaluator(model, evalData, { metric: settings.metric, path, table, blockSize: settings.blockSize, rewrite: inputs.rewrite, index: inputs.index });
  const known = new Map((inputs.known ?? []).map((k) => [planKey(k.plan), k.result]));
  let evaluated = 0;
  const evaluate = async (plan: Plan): Promise<EvalResult> => {
    const p = mapPlan(plan);
    const hit = known.get(planKey(p));
    if (hit) return hit;
    evaluated++;
    return evaluator.evaluate(p);
  };
  let latency: SearchLatencyHooks | undefined;
  if (inputs.latency) {
    if (mode === 'static' && !table) throw new UsageError('E_OPTION_CONFLICT', 'search: measuring latency in static mode needs a calibration table');
    const ids = sens.layers.map((l) => l.id);
    const uniformPlan = (b: LayerBits): Plan => ({ kind: 'qtool.plan', version: 1, mode, defaults: { bits: 'float' }, layers: Object.fromEntries(ids.map((id) => [id, layerPlan(b, settings.blockSize)])) });
    const build = (p: Plan) => applyPlan(model, mapPlan(p), table, { ...inputs.rewrite, index: inputs.index }).model;
    opts.onProgress?.({ phase: 'evaluate', done: 0, total: 1, label: 'latency profile' });
    const h = await searchLatencyHooks(model, [...new Set<LayerBits>(['float', ...settings.bits])], uniformPlan, build, inputs.latency);
    latency = { profile: h.profile, measure: h.measure };
    notes.push(...h.notes);
    notes.push(
      `latency: per-layer costs from onnxruntime's profiler at batch ${h.profile.batchSize} (${h.profile.source === 'cache' ? 'from the latency cache' : 'float and each uniform level profiled'}; ${h.profile.layers.length} of ${ids.length} layers matched); every evaluated configuration timed against float in one interleaved run (${inputs.latency.seconds} s, 1 thread)`,
    );
  }
  let result;
  try {
    result = await searchPlan(sens, evaluate, settings, { onProgress: opts.onProgress, source, orderBy, latency });
  } finally {
    await evaluator.close();
  }
  return { plan: result.plan, report: result.report, sens, path, evaluator, evaluated, sensitivityRuns, sensitivityMs, evaluationStart, notes };
}

/** Identity of a plan for the `known` cache: everything the rewrite reads. */
function planKey(p: Plan): string {
  return JSON.stringify([p.mode, p.defaults, p.layers]);
}

