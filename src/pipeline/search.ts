import * as fs from 'node:fs';
import { calibrate } from '../calibrate/index.js';
import { openDataset } from '../data/index.js';
import {
  CalibrationTableSchema,
  parseDocument,
  readDocument,
  SensitivityReportSchema,
  writeDocument,
  type CalibrateOptionsInput,
  type CalibrationTable,
  type EvalResult,
  type LayerBits,
  type Plan,
  type SearchOptions,
  type SearchReport,
  type SensitivityOptions,
  type SensitivityReport,
} from '../documents/index.js';
import { GateError, InputError, UsageError } from '../errors.js';
import { checkOutputPath, sha256, writeFileAtomic } from '../files.js';
import { GraphIndex, loadModel, quantizableLayers, saveModel, type Model } from '../onnx/index.js';
import { searchHtml, searchMarkdown } from '../report/index.js';
import { applyPlan, type ApplyPlanOptions } from '../rewrite/index.js';
import { layerPlan, searchPlan, type SearchProgress } from '../search/index.js';
import { measureSensitivity, type SensitivityProgress } from '../sensitivity/index.js';
import { autoEvaluatorPath, makeEvaluator, rewriteOutputs, type Evaluator } from './evaluator.js';
import { loadData, type LoadedData } from './load-data.js';
import { optimizedOpCounts, planCalibrationTensors } from './quantize.js';

/** Progress of the one calibration pass of a static-mode search. */
export interface SearchCalibrationProgress {
  phase: 'calibrate';
  done: number;
  total: number;
}

/** Options of the search on a loaded model (searchModel): the search settings, sensitivity and evaluator. */
export interface SearchModelOptions extends SearchOptions {
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

export interface SearchRunOptions extends SearchModelOptions {
  /** Calibration data (sensitivity probes). */
  data: string;
  labels?: string;
  /** Evaluation data and labels. */
  eval: string;
  evalLabels?: string;
  /** Use at most the first N evaluation samples. */
  evalSamples?: number;
  /** Static mode: a calibration table to use instead of calibrating (in memory, or a file from `qtool calibrate`). */
  table?: CalibrationTable;
  calib?: string;
  /** Static mode: settings of the one calibration pass over `data` (default minmax over every sample). */
  calibration?: Omit<CalibrateOptionsInput, 'tensors'>;
  planOutput?: string;
  modelOutput?: string;
  reportOutput?: string;
  markdownOutput?: string;
  htmlOutput?: string;
}

export interface SearchRunResult {
  plan: Plan;
  report: SearchReport;
  sensitivity: SensitivityReport;
  markdown: string;
  stats: { calibrationMs: number; sensitivityMs: number; evaluationMs: number; evaluationRuns: number; sensitivityRuns: number };
  /** The evaluator used ('auto' resolved). */
  evaluator: 'weights' | 'rewrite';
  /** The written model's bytes next to the plan's size accounting (the chosen evaluation's sizeBytes). */
  written?: { file: string; sizeBytes: number; plannedBytes: number; optimizedOps: Record<string, number> };
  /** Static mode: the calibration table every evaluation used. */
  table?: CalibrationTable;
}

/**
 * `qtool search`: sensitivity (or a saved report) → searchPlan with the real evaluator → plan, quantized
 * model and report, always written; GateError (exit 4) afterwards when the budget was not met.
 */
export async function search(modelPath: string, opts: SearchRunOptions): Promise<SearchRunResult> {
  for (const out of [opts.planOutput, opts.reportOutput, opts.markdownOutput, opts.htmlOutput, opts.modelOutput]) if (out) checkOutputPath(out);
  const model = loadModel(modelPath);
  const source = { file: modelPath, sha256: sha256(fs.readFileSync(modelPath)) };
  const mode = opts.mode ?? 'weight-only';
  if (opts.table && opts.calib) throw new UsageError('E_OPTION_CONFLICT', 'search: table and --calib are alternatives: give one');
  const notes: string[] = [];
  const t0 = performance.now();
  // Static mode: one calibration pass; every evaluation and every measured sensitivity term reuses it.
  let table = opts.table ?? (opts.calib ? readDocument(opts.calib, CalibrationTableSchema) : undefined);
  if (mode === 'static' && !table) {
    table = await calibrateOnce(model, opts);
    notes.push(`static: calibrated once on ${opts.data} (${table.samples} samples, ${table.method}, the ${Object.keys(table.tensors).length} tensors the all-8-bit static plan reads); every evaluation is applyPlan with this table`);
  } else if (mode === 'static') {
    checkTableCovers(table!, opts.calib ?? modelPath, model, opts.blockSize ?? 32);
    notes.push(`static: calibration table ${opts.calib ?? '(given)'} (${table!.samples} samples, ${table!.method})`);
  }
  const calibrationMs = performance.now() - t0;
  const core = await searchModel(
    model,
    {
      source,
      table,
      loadProbes: (subset, seed) => loadData(opts.data, model, { labels: opts.labels, subset, seed, batchSize: subset }),
      loadEval: () => loadData(opts.eval, model, { labels: opts.evalLabels, maxSamples: opts.evalSamples, batchSize: 256 }),
    },
    opts,
  );
  const { path, sens, evaluator, sensitivityRuns, sensitivityMs } = core;
  const t0e = core.evaluationStart;
  const { plan, report } = core;
  const chosen = report.evaluations[report.chosen];
  report.notes.push(...notes, ...core.notes);
  report.notes.push(
    `evaluator: ${
      path === 'rewrite'
        ? 'rewrite (applyPlan + onnxruntime: the written model is the one measured)'
        : `weights (fake-quantized weights through one weights-as-inputs session; activations float${mode === 'static' ? ': static activation quantization is not measured' : ''})`
    }`,
  );
  let written: SearchRunResult['written'];
  if (opts.modelOutput) {
    // Written before the report so the report can state the file size next to the plan's accounting.
    const q = applyPlan(model, plan, table).model;
    const optimizedOps = await optimizedOpCounts(q, opts.modelOutput);
    saveModel(q, opts.modelOutput);
    const sizeBytes = fs.statSync(opts.modelOutput).size;
    written = { file: opts.modelOutput, sizeBytes, plannedBytes: chosen.sizeBytes, optimizedOps };
    report.notes.push(`written model ${sizeBytes} bytes; plan accounting ${chosen.sizeBytes} bytes (weights + scales + the rest of the model; the file adds names, graph structure and protobuf framing)`);
    const fused = Object.entries(optimizedOps).filter(([op]) => /^QLinear|^QGemm|MatMulNBits|DynamicQuantize|MatMulIntegerToFloat/.test(op));
    if (fused.length > 0) report.notes.push(`onnxruntime runs the written model with ${fused.map(([op, n]) => `${n} ${op}`).join(', ')}`);
  }
  const markdown = searchMarkdown(report);
  if (opts.planOutput) writeDocument(opts.planOutput, plan);
  if (opts.reportOutput) writeDocument(opts.reportOutput, report);
  if (opts.markdownOutput) writeFileAtomic(opts.markdownOutput, markdown);
  if (opts.htmlOutput) writeFileAtomic(opts.htmlOutput, searchHtml(report));
  if (!report.budgetMet) {
    const c = chosen;
    throw new GateError('E_BUDGET_NOT_MET', `search: expected a configuration within ${report.maxDrop} ${report.dropUnit}${report.maxSizeBytes !== null ? ` and ${report.maxSizeBytes} bytes` : ''}, got best "${c.label}" with drop ${c.drop.toFixed(3)} (outputs written)`, { file: modelPath });
  }
  return {
    plan,
    report,
    sensitivity: sens,
    markdown,
    stats: { calibrationMs, sensitivityMs, evaluationMs: performance.now() - t0e, evaluationRuns: evaluator.runs(), sensitivityRuns },
    evaluator: path,
    ...(written ? { written } : {}),
    ...(mode === 'static' ? { table } : {}),
  };
}

/** What searchModel needs besides the model: its identity, the table and the data as loaders. */
export interface SearchModelInputs {
  source: { file: string; sha256: string };
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
  const mode = opts.mode ?? 'weight-only';
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
    const so = { ...probeDefaults, samples: 32, ...opts.sensitivity };
    const bits = [...new Set<LayerBits>(opts.bits ?? [4, 8])].filter((b): b is 4 | 8 | 16 => b !== 'float');
    const calib = await inputs.loadProbes(so.samples, so.seed ?? 1234);
    const output = model.proto.graph!.output[0].name;
    const blockSize = opts.blockSize ?? 32;
    const assignmentOutputs = isStaticMeasured
      ? async (a: Readonly<Record<string, LayerBits>>) => (await rewriteOutputs(model, mapPlan(staticPlan(a, blockSize)), table, calib.batches, output, inputs.rewrite)).outputs
      : undefined;
    const r = await measureSensitivity(model, { batches: calib.batches, labels: calib.labels }, { ...so, bits: so.bits ?? bits, samples: calib.samples }, { onProgress: opts.onProgress, source, assignmentOutputs });
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
  const evaluator = await makeEvaluator(model, evalData, { metric: opts.metric ?? 'accuracy', path, table, blockSize: opts.blockSize, rewrite: inputs.rewrite });
  const known = new Map((inputs.known ?? []).map((k) => [planKey(k.plan), k.result]));
  let evaluated = 0;
  const evaluate = async (plan: Plan): Promise<EvalResult> => {
    const p = mapPlan(plan);
    const hit = known.get(planKey(p));
    if (hit) return hit;
    evaluated++;
    return evaluator.evaluate(p);
  };
  let result;
  try {
    result = await searchPlan(sens, evaluate, opts, { onProgress: opts.onProgress, source, orderBy });
  } finally {
    await evaluator.close();
  }
  return { plan: result.plan, report: result.report, sens, path, evaluator, evaluated, sensitivityRuns, sensitivityMs, evaluationStart, notes };
}

/** Identity of a plan for the `known` cache: everything the rewrite reads. */
function planKey(p: Plan): string {
  return JSON.stringify([p.mode, p.defaults, p.layers]);
}

/** The static plan of a per-layer assignment (layers not listed stay float), as searchPlan writes plans. */
function staticPlan(a: Readonly<Record<string, LayerBits>>, blockSize: number): Plan {
  const layers = Object.fromEntries(Object.entries(a).map(([id, b]) => [id, layerPlan(b, blockSize)]));
  return { kind: 'qtool.plan', version: 1, mode: 'static', defaults: { bits: 'float' }, layers };
}

/** The static plan with every quantizable layer at 8 bits: it reads every range any plan of the search reads. */
function allInt8Plan(model: Model, blockSize: number): Plan {
  const layers = quantizableLayers(new GraphIndex(model.proto.graph!, model.file));
  return staticPlan(Object.fromEntries(layers.map((l) => [l.id, 8 as const])), blockSize);
}

/**
 * The one calibration pass of a static search, over the calibration data (`data`). It observes only
 * the tensors whose ranges the rewrite reads for the static plan with every layer at 8 bits
 * (planCalibrationTensors): every plan the search evaluates quantizes a subset of those layers (the
 * rest float or weight-only int4, which read no ranges), so it reads a subset of those ranges.
 */
async function calibrateOnce(model: Model, opts: SearchRunOptions): Promise<CalibrationTable> {
  const tensors = planCalibrationTensors(model, allInt8Plan(model, opts.blockSize ?? 32));
  const dataset = await openDataset(opts.data, model, { maxSamples: opts.calibration?.maxSamples });
  return calibrate(model, dataset, {
    ...opts.calibration,
    tensors,
    tensorsFrom: 'plan',
    onProgress: (p) => opts.onProgress?.({ phase: 'calibrate', done: p.done, total: p.total }),
  });
}

/** A given table must hold every range the all-8-bit plan reads; a missing one would silently leave activations float. */
function checkTableCovers(table: CalibrationTable, file: string, model: Model, blockSize: number): void {
  const missing = planCalibrationTensors(model, allInt8Plan(model, blockSize)).filter((t) => !table.tensors[t]);
  if (missing.length === 0) return;
  throw new InputError(
    'E_CALIB_INCOMPLETE',
    `calibration table: expected a range for every tensor a static plan reads, got none for ${missing.length} (e.g. "${missing[0]}"): recalibrate with \`qtool calibrate\` (default tensors) or let search calibrate on --data`,
    { file },
  );
}
