import * as fs from 'node:fs';
import type { Dataset } from '../data/index.js';
import { CalibrateOptionsSchema, flattenIssues, type CalibrateOptionsInput, type CalibrationTable, type TensorRange } from '../documents/index.js';
import { UsageError } from '../errors.js';
import { sha256 } from '../files.js';
import type { Model } from '../onnx/index.js';
import { Session, modelBytesForRuntime } from '../runtime/index.js';
import { toFloat32, type Tensor } from '../tensor/index.js';
import { calibrationTensors, withOutputs } from './augment.js';
import { makeObserver, type Observer } from './observers/index.js';

export interface CalibrateProgress {
  /** Samples processed so far. */
  done: number;
  /** Samples the dataset will provide. */
  total: number;
}

export interface CalibrateCallbacks {
  onProgress?: (p: CalibrateProgress) => void;
  signal?: AbortSignal;
}

function floatView(t: Tensor): Float32Array | undefined {
  switch (t.dtype) {
    case 'float32':
      return t.data as Float32Array;
    case 'float16':
    case 'bfloat16':
    case 'float64':
      return toFloat32(t);
    default:
      return undefined;
  }
}

function modelHash(model: Model): string {
  try {
    if (fs.statSync(model.file).isFile()) return sha256(fs.readFileSync(model.file));
  } catch {
    // not a file on disk (built in memory): hash the serialized model
  }
  return sha256(modelBytesForRuntime(model));
}

/**
 * Collect activation statistics and ranges. A copy of the model that outputs every observed tensor runs
 * through onnxruntime (graph optimizations off, so every tensor exists) batch by batch; each batch
 * updates one constant-memory observer per tensor and is dropped before the next.
 */
export async function calibrate(model: Model, dataset: Dataset, options: CalibrateOptionsInput & CalibrateCallbacks = {}): Promise<CalibrationTable> {
  const { onProgress, signal, ...rest } = options;
  const parsed = CalibrateOptionsSchema.safeParse(rest);
  if (!parsed.success) throw new UsageError('E_FLAG', `invalid calibration options: ${flattenIssues(parsed.error)}`);
  const opts = parsed.data;
  const tensors = calibrationTensors(model, opts.tensors);
  const inputNames = new Set(dataset.inputs.map((i) => i.name));
  const fetches = tensors.filter((t) => !inputNames.has(t));
  const observers = new Map<string, Observer>();
  const nonFloat = new Set<string>();
  const settings = { percentile: opts.percentile, symmetric: opts.symmetric, bins: opts.bins, movingAverage: opts.movingAverage };

  const session = await Session.open(withOutputs(model, fetches), { optimization: 'disabled', name: model.file });
  let done = 0;
  try {
    onProgress?.({ done, total: dataset.sampleCount });
    for await (const feeds of dataset.batches(opts.batchSize)) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const out = await session.run(feeds, fetches);
      for (const name of tensors) {
        if (nonFloat.has(name)) continue;
        const t = out[name] ?? feeds[name];
        if (!t) continue;
        const x = floatView(t);
        if (!x) {
          nonFloat.add(name);
          observers.delete(name);
          continue;
        }
        let obs = observers.get(name);
        if (!obs) observers.set(name, (obs = makeObserver(opts.method, settings)));
        obs.update(x);
      }
      done += dataset.samplesIn(feeds);
      onProgress?.({ done, total: dataset.sampleCount });
    }
  } finally {
    await session.release();
  }

  const entries: Record<string, TensorRange> = {};
  for (const name of tensors) {
    const obs = observers.get(name);
    if (obs) entries[name] = obs.result();
  }
  const tableSettings: CalibrationTable['settings'] = { batchSize: opts.batchSize, bins: opts.bins, data: dataset.description };
  if (opts.method === 'percentile') tableSettings.percentile = opts.percentile;
  if (opts.method !== 'minmax') tableSettings.symmetric = opts.symmetric;
  if (opts.method === 'minmax') tableSettings.movingAverage = opts.movingAverage;
  if (dataset.skipped > 0) tableSettings.skippedNonfinite = dataset.skipped;
  return {
    kind: 'qtool.calibration',
    version: 1,
    model: { file: model.file, sha256: modelHash(model) },
    method: opts.method,
    settings: tableSettings,
    samples: done,
    tensors: entries,
  };
}
