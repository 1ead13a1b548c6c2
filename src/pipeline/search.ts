/**
 * The door of `qtool search`: load, calibrate once (static), searchModel, write plan, model and reports.
 */
import * as fs from 'node:fs';
import { calibrate } from '../calibrate/index.js';
import { CalibrationTableSchema, SearchRunOptionsSchema, readDocument, writeDocument, type CalibrateOptions, type CalibrationTable, type Plan, type SearchOptions, type SearchReport, type SearchSettings, type SensitivityReport } from '../documents/index.js';
import { GateError, UsageError } from '../errors.js';
import { checkOutputPaths, sha256, writeFileAtomic } from '../files.js';
import { modelFiles, saveModel, saveTargets } from '../onnx/index.js';
import { searchHtml, searchMarkdown } from '../report/index.js';
import { applyPlan } from '../rewrite/index.js';
import { allInt8Plan, checkTableCovers, planCalibrationTensors } from './calibration-plan.js';
import type { FeedSource, LabelSource } from '../data/index.js';
import { readOptionsOf } from './data-read.js';
import { loadData } from './load-data.js';
import { modelContext, type ModelContext } from './model-context.js';
import { parseSearchOptions, searchModel, type SearchMeasureOptions } from './search-model.js';
import { fusedKernels, optimizedOpCounts } from './verify.js';
import { latencyBatches, type MeasureLatency } from './formats.js';
import type { ProfileLatency, SearchLatencyOptions } from './search-latency.js';
import { latencyCacheDir } from '../bench/index.js';

/**
 * Options of `search()`: the search options (SearchOptionsSchema), how to measure, and the command's
 * files; the fields `qtool search` sets are described (help text, defaults) in SearchRunOptionsSchema.
 */
export interface SearchRunOptions extends SearchOptions, SearchMeasureOptions {
  /** Calibration data (sensitivity probes): a path, or feeds in memory. */
  data: string | FeedSource;
  /** Labels file (.npy/.csv) or in memory (default: the data's own, e.g. image class folders). */
  labels?: string | LabelSource;
  /** Evaluation data and labels. */
  eval: string | FeedSource;
  evalLabels?: string | LabelSource;
  /** Use at most the first N evaluation samples. */
  evalSamples?: number;
  /** Static mode: a calibration table to use instead of calibrating (in memory, or a file from `qtool calibrate`). */
  table?: CalibrationTable;
  calib?: string;
  /** Static mode: settings of the one calibration pass over `data` (default minmax over every sample). */
  calibration?: Omit<CalibrateOptions, 'tensors'>;
  planOutput?: string;
  modelOutput?: string;
  reportOutput?: string;
  markdownOutput?: string;
  htmlOutput?: string;
  /** Overwrite existing output files (without it an existing output is refused: E_OUTPUT_EXISTS, exit 2). */
  force?: boolean;
  /** Time float and every evaluated configuration (default: on with objective latency or maxLatencyMs). */
  measureLatency?: boolean;
  /** Seconds of the interleaved timing (default 3). */
  tuneSeconds?: number;
  /** Batch size of the latency profile and measurement, samples from `eval` (default 1). */
  latencyBatch?: number;
  /** Reuse cached per-layer profiles (default true). */
  latencyCache?: boolean;
  /** Injected by tests (no timing): the interleaved measurement and the profiler. */
  latencyMeasure?: MeasureLatency;
  latencyProfile?: ProfileLatency;
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
  const settings = parseSearchOptions(opts);
  const ctx = modelContext(modelPath, readOptionsOf(settings));
  const { model, source } = ctx;
  // One guard: no output may be an input (model, its data files, data, labels, table), none may repeat.
  checkOutputPaths([opts.planOutput, opts.reportOutput, opts.markdownOutput, opts.htmlOutput, ...(opts.modelOutput ? saveTargets(model, opts.modelOutput) : [])], {
    force: opts.force === true,
    inputs: [...modelFiles(model), opts.data, opts.labels, opts.eval, opts.evalLabels, opts.calib].filter((f): f is string => typeof f === 'string'),
  });
  const mode = settings.mode;
  if (opts.table && opts.calib) throw new UsageError('E_OPTION_CONFLICT', 'search: table and --calib are alternatives: give one');
  const notes: string[] = [];
  const t0 = performance.now();
  // Static mode: one calibration pass; every evaluation and every measured sensitivity term reuses it.
  let table = opts.table ?? (opts.calib ? readDocument(opts.calib, CalibrationTableSchema) : undefined);
  if (mode === 'static' && !table) {
    table = await calibrateOnce(ctx, opts, settings);
    notes.push(`static: calibrated once on ${opts.data} (${table.samples} samples, ${table.method}, the ${Object.keys(table.tensors).length} tensors the all-8-bit static plan reads); every evaluation is applyPlan with this table`);
  } else if (mode === 'static') {
    checkTableCovers(table!, opts.calib ?? modelPath, model, {
      plan: allInt8Plan(ctx.index, settings.blockSize),
      check: 'always',
      fix: 'recalibrate with `qtool calibrate` (default tensors) or let search calibrate on --data',
    });
    notes.push(`static: calibration table ${opts.calib ?? '(given)'} (${table!.samples} samples, ${table!.method})`);
  }
  const calibrationMs = performance.now() - t0;
  const latency = await latencyOptions(ctx, opts, settings, table);
  const core = await searchModel(
    model,
    {
      source,
      index: ctx.index,
      table,
      loadProbes: (subset, seed) => loadData(opts.data, model, { labels: opts.labels, subset, seed, batchSize: subset, read: ctx.dataOptions }),
      loadEval: () => loadData(opts.eval, model, { labels: opts.evalLabels, maxSamples: opts.evalSamples, batchSize: 256, read: ctx.dataOptions }),
      latency,
    },
    { settings, sensitivityReport: opts.sensitivityReport, sensitivity: opts.sensitivity, evaluator: opts.evaluator, onProgress: opts.onProgress },
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
    const q = applyPlan(model, plan, table, { index: ctx.index }).model;
    const optimizedOps = await optimizedOpCounts(q, opts.modelOutput);
    saveModel(q, opts.modelOutput);
    const sizeBytes = fs.statSync(opts.modelOutput).size;
    written = { file: opts.modelOutput, sizeBytes, plannedBytes: chosen.sizeBytes, optimizedOps };
    report.notes.push(`written model ${sizeBytes} bytes; plan accounting ${chosen.sizeBytes} bytes (weights + scales + the rest of the model; the file adds names, graph structure and protobuf framing)`);
    const fused = fusedKernels(optimizedOps);
    if (fused.length > 0) report.notes.push(`onnxruntime runs the written model with ${fused.map(([op, n]) => `${n} ${op}`).join(', ')}`);
  }
  const markdown = searchMarkdown(report);
  if (opts.planOutput) writeDocument(opts.planOutput, plan);
  if (opts.reportOutput) writeDocument(opts.reportOutput, report);
  if (opts.markdownOutput) writeFileAtomic(opts.markdownOutput, markdown);
  if (opts.htmlOutput) writeFileAtomic(opts.htmlOutput, searchHtml(report));
  if (!report.budgetMet) {
    const c = chosen;
    const lat = report.maxLatencyMs !== null ? ` and ${report.maxLatencyMs} ms` : '';
    const got = c.latencyMs !== null && report.maxLatencyMs !== null ? `, ${c.latencyMs.toFixed(3)} ms measured (profile predicted ${c.predictedLatencyMs?.toFixed(3)} ms)` : '';
    throw new GateError('E_BUDGET_NOT_MET', `search: expected a configuration within ${report.maxDrop} ${report.dropUnit}${report.maxSizeBytes !== null ? ` and ${report.maxSizeBytes} bytes` : ''}${lat}, got best "${c.label}" with drop ${c.drop.toFixed(3)}${got} (outputs written)`, { file: modelPath });
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

/** The latency measurement of a search, when asked for (objective latency, --max-latency or measureLatency). */
async function latencyOptions(ctx: ModelContext, opts: SearchRunOptions, settings: SearchSettings, table: CalibrationTable | undefined): Promise<SearchLatencyOptions | undefined> {
  const isLatency = settings.objective === 'latency' || settings.maxLatencyMs !== undefined;
  if (!(opts.measureLatency ?? isLatency)) return undefined;
  const d = SearchRunOptionsSchema.shape;
  const batchSize = opts.latencyBatch ?? d.latencyBatch.parse(undefined);
  const batches = await latencyBatches(ctx.model, opts.eval, batchSize, ctx.dataOptions);
  const batch = batches.find((b) => b.batchSize === batchSize) ?? batches[batches.length - 1];
  const useCache = opts.latencyCache ?? d.latencyCache.parse(undefined);
  return {
    seconds: opts.tuneSeconds ?? d.tuneSeconds.parse(undefined),
    batch,
    ...(useCache ? { cache: { dir: latencyCacheDir(), modelSha256: ctx.source.sha256, variant: { mode: settings.mode, blockSize: settings.blockSize, table: table ? sha256(JSON.stringify(table.tensors)) : null } } } : {}),
    ...(opts.latencyMeasure ? { measure: opts.latencyMeasure } : {}),
    ...(opts.latencyProfile ? { profile: opts.latencyProfile } : {}),
  };
}

/**
 * The one calibration pass of a static search, over the calibration data (`data`). It observes only
 * the tensors whose ranges the rewrite reads for the static plan with every layer at 8 bits
 * (planCalibrationTensors): every plan the search evaluates quantizes a subset of those layers (the
 * rest float or weight-only int4, which read no ranges), so it reads a subset of those ranges.
 */
async function calibrateOnce(ctx: ModelContext, opts: SearchRunOptions, settings: SearchSettings): Promise<CalibrationTable> {
  const { model } = ctx;
  const tensors = planCalibrationTensors(model, allInt8Plan(ctx.index, settings.blockSize));
  const dataset = await ctx.dataset(opts.data, { maxSamples: opts.calibration?.maxSamples });
  return calibrate(model, dataset, {
    ...opts.calibration,
    tensors,
    tensorsFrom: 'plan',
    onProgress: (p) => opts.onProgress?.({ phase: 'calibrate', done: p.done, total: p.total ?? p.done }),
  });
}

