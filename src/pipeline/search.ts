import * as fs from 'node:fs';
import { parseDocument, readDocument, SensitivityReportSchema, writeDocument, type CalibrationTable, type Plan, type SearchOptions, type SearchReport, type SensitivityOptions, type SensitivityReport } from '../documents/index.js';
import { GateError } from '../errors.js';
import { sha256, writeFileAtomic } from '../files.js';
import { loadModel, saveModel } from '../onnx/index.js';
import { searchHtml, searchMarkdown } from '../report/index.js';
import { applyPlan } from '../rewrite/index.js';
import { searchPlan, type SearchProgress } from '../search/index.js';
import { measureSensitivity, type SensitivityProgress } from '../sensitivity/index.js';
import { autoEvaluatorPath, makeEvaluator } from './evaluator.js';
import { loadData } from './load-data.js';

export interface SearchRunOptions extends SearchOptions {
  /** Calibration data (sensitivity probes). */
  data: string;
  labels?: string;
  /** Evaluation data and labels. */
  eval: string;
  evalLabels?: string;
  /** Use at most the first N evaluation samples. */
  evalSamples?: number;
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
  table?: CalibrationTable;
  planOutput?: string;
  modelOutput?: string;
  reportOutput?: string;
  markdownOutput?: string;
  htmlOutput?: string;
  onProgress?: (e: SearchProgress | SensitivityProgress) => void;
}

export interface SearchRunResult {
  plan: Plan;
  report: SearchReport;
  sensitivity: SensitivityReport;
  markdown: string;
  stats: { sensitivityMs: number; evaluationMs: number; evaluationRuns: number; sensitivityRuns: number };
  /** The evaluator used ('auto' resolved). */
  evaluator: 'weights' | 'rewrite';
  /** The written model's bytes next to the plan's size accounting (the chosen evaluation's sizeBytes). */
  written?: { file: string; sizeBytes: number; plannedBytes: number };
}

/**
 * `qtool search`: sensitivity (or a saved report) → searchPlan with the real evaluator → plan, quantized
 * model and report, always written; GateError (exit 4) afterwards when the budget was not met.
 */
export async function search(modelPath: string, opts: SearchRunOptions): Promise<SearchRunResult> {
  const model = loadModel(modelPath);
  const source = { file: modelPath, sha256: sha256(fs.readFileSync(modelPath)) };
  let t0 = performance.now();
  let sens: SensitivityReport;
  let sensitivityRuns = 0;
  if (opts.sensitivityReport) {
    sens = readDocument(opts.sensitivityReport, SensitivityReportSchema);
  } else {
    const so = { probes: 8, minProbes: 4, stabilityProbes: 1, samples: 32, ...opts.sensitivity };
    const bits = [...new Set<4 | 8 | 16 | "float">(opts.bits ?? [4, 8])].filter((b): b is 4 | 8 | 16 => b !== 'float');
    const calib = await loadData(opts.data, model, { labels: opts.labels, subset: so.samples, seed: so.seed ?? 1234, batchSize: so.samples });
    const r = await measureSensitivity(model, { batches: calib.batches, labels: calib.labels }, { ...so, bits: so.bits ?? bits, samples: calib.samples }, { onProgress: opts.onProgress, source });
    sens = parseDocument(r.report, SensitivityReportSchema);
    sensitivityRuns = r.stats.runs.reference + r.stats.runs.hessian + r.stats.runs.measured;
  }
  const sensitivityMs = performance.now() - t0;
  t0 = performance.now();
  const evalData = await loadData(opts.eval, model, { labels: opts.evalLabels, maxSamples: opts.evalSamples, batchSize: 256 });
  const path = !opts.evaluator || opts.evaluator === 'auto' ? autoEvaluatorPath(model, opts.mode ?? 'weight-only', opts.table) : opts.evaluator;
  const evaluator = await makeEvaluator(model, evalData, { metric: opts.metric ?? 'accuracy', path, table: opts.table, blockSize: opts.blockSize });
  let result;
  try {
    result = await searchPlan(sens, evaluator.evaluate, opts, { onProgress: opts.onProgress, source });
  } finally {
    await evaluator.close();
  }
  const { plan, report } = result;
  const chosen = report.evaluations[report.chosen];
  report.notes.push(`evaluator: ${path === 'rewrite' ? 'rewrite (applyPlan + onnxruntime: the written model is the one measured)' : 'weights (fake-quantized weights through one weights-as-inputs session; activations float)'}`);
  let written: SearchRunResult['written'];
  if (opts.modelOutput) {
    // Written before the report so the report can state the file size next to the plan's accounting.
    saveModel(applyPlan(model, plan, opts.table).model, opts.modelOutput);
    const sizeBytes = fs.statSync(opts.modelOutput).size;
    written = { file: opts.modelOutput, sizeBytes, plannedBytes: chosen.sizeBytes };
    report.notes.push(`written model ${sizeBytes} bytes; plan accounting ${chosen.sizeBytes} bytes (weights + scales + the rest of the model; the file adds names, graph structure and protobuf framing)`);
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
    stats: { sensitivityMs, evaluationMs: performance.now() - t0, evaluationRuns: evaluator.runs(), sensitivityRuns },
    evaluator: path,
    ...(written ? { written } : {}),
  };
}
