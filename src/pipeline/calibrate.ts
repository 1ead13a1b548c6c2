/**
 * The door of `qtool calibrate`: load the model, open the data, calibrate the tensors static plans
 * read (staticPlanCalibrationTensors) or the ones asked for, write the table atomically.
 */
import * as path from 'node:path';
import { calibrate, type CalibrateCallbacks } from '../calibrate/index.js';
import { RANDOM_DEFAULT_SAMPLES, openDataset, type FeedSource } from '../data/index.js';
import { readOptionsOf, withoutDataOptions } from './data-read.js';
import { CalibrateOptionsSchema, writeDocument, type CalibrateOptions, type CalibrationSummary, type CalibrationTable } from '../documents/index.js';
import { checkOutputPaths } from '../files.js';
import { loadModel, modelFiles, type Model } from '../onnx/index.js';
import { UsageError } from '../errors.js';
import { staticPlanCalibrationTensors } from './calibration-plan.js';

export interface CalibrateFileOptions extends CalibrateOptions {
  /** .npy / .npz / .jsonl, a folder of arrays, images or WAV files, 'random', or feeds in memory. */
  data: string | FeedSource;
  /**
   * Table file (default: `<model without .onnx>.calib.json` next to the model); null: write no file, only
   * return the table (the summary's output is then '-', as `qtool calibrate -o -` prints it on stdout).
   */
  output?: string | null;
  /** Overwrite an existing output file. */
  force?: boolean;
  /** Dynamic dim values for random data, by symbolic name. */
  randomDims?: Readonly<Record<string, number>>;
  /** Samples generated for random data (default: maxSamples, else 32). */
  randomSamples?: number;
  /**
   * The tensors to observe, chosen once the model is loaded (overrides `tensors`); `from` is recorded
   * as the table's settings.tensors. The pipeline passes the ranges a rewrite will read.
   */
  tensorsFor?: (model: Model) => { tensors: string[]; from: string };
}

/**
 * Samples `qtool calibrate` reads when --samples is not given (the schema's default, 2,048). Ranges
 * settle within a few hundred samples; the cap bounds time on a huge or hostile data set (a 4 MB
 * deflated .npz can expand to 1.4 M samples).
 */
export const DEFAULT_CALIBRATION_SAMPLES: number = CalibrateOptionsSchema.parse({}).maxSamples;

/** Default table path: next to the model, `.onnx` replaced by `.calib.json`. */
export function defaultCalibrationPath(modelPath: string): string {
  const dir = path.dirname(modelPath);
  const base = path.basename(modelPath).replace(/\.onnx$/i, '');
  return path.join(dir, `${base}.calib.json`);
}

/**
 * `qtool calibrate`: load the model, open the data, calibrate, write the table atomically (refusing to
 * overwrite without `force`), and return the table with a summary (plus the dataset's warnings).
 */
export async function calibrateFile(modelPath: string, opts: CalibrateFileOptions, callbacks: CalibrateCallbacks = {}): Promise<{ table: CalibrationTable; summary: CalibrationSummary }> {
  const { data, output, force, randomDims, randomSamples, tensorsFor, ...withData } = opts;
  const read = readOptionsOf(withData);
  const calibOpts = withoutDataOptions(withData);
  const out = output === null ? null : (output ?? defaultCalibrationPath(modelPath));
  const model = loadModel(modelPath);
  checkOutputPaths(out === null ? [] : [out], { force: Boolean(force), inputs: [...modelFiles(model), ...(typeof data === 'string' ? [data] : [])] });
  const maxSamples = calibOpts.maxSamples ?? DEFAULT_CALIBRATION_SAMPLES;
  const dataset = await openDataset(data, model, { ...read, maxSamples, seed: calibOpts.seed, skipNonfinite: calibOpts.skipNonfinite, randomDims: randomDims ?? read.randomDims, randomSamples: randomSamples ?? calibOpts.maxSamples ?? RANDOM_DEFAULT_SAMPLES });
  const chosen = tensorsFor?.(model);
  const table = await calibrate(model, dataset, { ...calibOpts, maxSamples, ...callbacks, ...(chosen ? { tensors: chosen.tensors, tensorsFrom: chosen.from } : {}) });
  if (out !== null) writeDocument(out, table);
  const entries = Object.entries(table.tensors);
  const summary: CalibrationSummary = {
    kind: 'qtool.calibration-summary',
    version: 1,
    model: modelPath,
    output: out ?? '-',
    data: dataset.description,
    method: table.method,
    samples: table.samples,
    skipped: dataset.skipped,
    tensorCount: entries.length,
    nonFiniteTensors: entries.filter(([, e]) => e.nonFinite).map(([n]) => n),
    warnings: [...dataset.warnings],
    ranges: Object.fromEntries(entries.map(([n, e]) => [n, e.range])),
  };
  if (calibOpts.maxSamples === undefined && /\(first \d+ of \d+\)$/.test(dataset.description)) {
    summary.warnings.push(`used the first ${DEFAULT_CALIBRATION_SAMPLES} samples (the default cap); pass --samples N to use more`);
  }
  if (dataset.skipped > 0) summary.warnings.push(`skipped ${dataset.skipped} samples holding NaN or Inf values`);
  if (summary.nonFiniteTensors.length > 0) {
    summary.warnings.push(`${summary.nonFiniteTensors.length} tensors hold NaN/Inf or |x| ≥ 2⁶⁴ (where x² overflows float32) values (e.g. attention masks); they are flagged nonFinite and stay float: ${summary.nonFiniteTensors.slice(0, 5).join(', ')}${summary.nonFiniteTensors.length > 5 ? ', …' : ''}`);
  }
  return { table, summary };
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
