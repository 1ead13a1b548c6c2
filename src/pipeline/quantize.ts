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
  type QuantizeOptionsInput,
  type QuantizeSummary,
} from '../documents/index.js';
import { InputError, UsageError } from '../errors.js';
import { loadModel, saveModel, walkGraphs, type Model } from '../onnx/index.js';
import { FidelityAccumulator } from '../quant/index.js';
import { applyPlan, rangesNeeded, uniformPlan, type ApplyPlanOptions } from '../rewrite/index.js';
import { Session, type Feeds } from '../runtime/index.js';
import { toFloat32 } from '../tensor/index.js';

export type QuantizeStage = 'calibrate' | 'rewrite' | 'verify' | 'save' | 'fidelity';

export interface QuantizeCallbacks {
  onProgress?: (event: { stage: QuantizeStage; done?: number; total?: number }) => void;
}

export interface QuantizeResult {
  summary: QuantizeSummary;
  /** The written file. */
  file: string;
  /** The plan that was applied (from --plan or built from the options). */
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
  if (fs.existsSync(out) && !opts.force) throw new UsageError('E_OUTPUT_EXISTS', `${out}: file exists: expected a new file, or --force to overwrite`);

  const rewriteOpts: ApplyPlanOptions = {
    activationType: opts.activationType,
    int4Format: opts.format,
    accuracyLevel: opts.accuracyLevel,
    excludeOps: opts.excludeOps,
    excludeNodes: opts.excludeNodes,
    includeNodes: opts.includeNodes,
    foldActivations: opts.foldActivations,
  };
  let table: CalibrationTable | undefined;
  let calibration: QuantizeSummary['calibration'];
  if (plan.mode === 'static') {
    if (opts.calib) {
      table = readDocument(opts.calib, CalibrationTableSchema);
      checkTableCovers(table, opts.calib, model, plan, rewriteOpts);
      calibration = { source: opts.calib, method: table.method, samples: table.samples };
    } else {
      // Only the ranges this plan reads are observed (declare statistics, collect once).
      const dataset = await openDataset(opts.data!, model, { maxSamples: opts.samples });
      table = await calibrate(model, dataset, {
        method: opts.method,
        batchSize: opts.batchSize,
        maxSamples: opts.samples,
        tensors: planCalibrationTensors(model, plan, rewriteOpts),
        tensorsFrom: 'plan',
        onProgress: (p) => progress({ stage: 'calibrate', done: p.done, total: p.total }),
      });
      calibration = { source: opts.data!, method: table.method, samples: table.samples };
    }
  }

  progress({ stage: 'rewrite' });
  const rewritten = applyPlan(model, plan, table, rewriteOpts);

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
  };
  return { summary, file: out, plan, table };
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
