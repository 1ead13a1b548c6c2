import * as fs from 'node:fs';
import type { Dataset } from '../data/index.js';
import { CalibrateOptionsSchema, flattenIssues, type CalibrateOptionsInput, type CalibrationTable, type TensorRange } from '../documents/index.js';
import { UsageError } from '../errors.js';
import { sha256 } from '../files.js';
import { GraphIndex, type Model } from '../onnx/index.js';
import { Session, modelBytesForRuntime } from '../runtime/index.js';
import { toFloat32, type Tensor } from '../tensor/index.js';
import { calibrationTensors, inferDTypes, withOutputs, withReductions } from './augment.js';
import { EXTREME_ABS, makeObserver, type Observer } from './observers/index.js';

/**
 * Graph optimization level of the minmax reduction session. 'all' runs faster (fused and NCHWc
 * kernels: fmnist_cnn 116 ms vs 177 ms 'disabled'), but onnxruntime's optimizer time grows faster than
 * linearly with the added reduction nodes (PaddleOCR det, 330 tensors: 466 ms 'all' vs 364 ms
 * 'disabled', most of it in session creation), so large graphs skip it.
 */
function reductionOptimization(tensorCount: number): 'all' | 'disabled' {
  return tensorCount <= 200 ? 'all' : 'disabled';
}

export interface CalibrateProgress {
  /** Samples processed so far. */
  done: number;
  /** Samples the dataset will provide. */
  total: number;
}

export interface CalibrateCallbacks {
  onProgress?: (p: CalibrateProgress) => void;
  signal?: AbortSignal;
  /**
   * Where `tensors` came from, recorded as the table's `settings.tensors` (default: 'listed' when
   * `tensors` is given, else 'all'); the pipeline writes 'plan' / 'plans' for its rewrite-derived lists.
   */
  tensorsFrom?: string;
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
 * updates one constant-memory observer per tensor and is dropped before the next. minmax instead
 * computes count/min/max/Σx² per tensor inside the graph (withReductions) and fetches a tensor whole
 * only when it is not float32 or its batch holds NaN/Inf/|x| ≥ 1e30 values; its table has no histograms.
 */
export async function calibrate(model: Model, dataset: Dataset, options: CalibrateOptionsInput & CalibrateCallbacks = {}): Promise<CalibrationTable> {
  const { onProgress, signal, tensorsFrom, ...rest } = options;
  const parsed = CalibrateOptionsSchema.safeParse(rest);
  if (!parsed.success) throw new UsageError('E_FLAG', `invalid calibration options: ${flattenIssues(parsed.error)}`);
  const opts = parsed.data;
  const tensors = calibrationTensors(model, opts.tensors);
  const inputNames = new Set(dataset.inputs.map((i) => i.name));
  const fetches = tensors.filter((t) => !inputNames.has(t));
  const observers = new Map<string, Observer>();
  const nonFloat = new Set<string>();
  const settings = { percentile: opts.percentile, symmetric: opts.symmetric, bins: opts.bins, movingAverage: opts.movingAverage };

  // minmax: float32 tensors are reduced inside the graph (4 small outputs per run); the rest (graph
  // inputs aside, which come from the feeds) and any tensor whose batch holds NaN/Inf/|x| ≥ 1e30 values
  // are fetched whole from a second, lazily opened session and observed in JS, so the stats stay exact.
  const types = opts.method === 'minmax' ? inferDTypes(new GraphIndex(model.proto.graph!, model.file)) : undefined;
  const reducedTensors = types ? fetches.filter((t) => types.get(t) === 'float32') : [];
  const reducedSet = new Set(reducedTensors);
  const alwaysFetched = fetches.filter((t) => !reducedSet.has(t));
  const reduced = reducedTensors.length > 0 ? withReductions(model, reducedTensors) : undefined;
  const sessions: Session[] = [];
  const openFull = async () => {
    const s = await Session.open(withOutputs(model, fetches), { optimization: 'disabled', name: model.file });
    sessions.push(s);
    return s;
  };
  let full: Promise<Session> | undefined;
  const fullSession = () => {
    if (!full) {
      full = openFull();
      full.catch(() => undefined); // awaited where used; this only keeps an early rejection from being unhandled
    }
    return full;
  };
  const observer = (name: string) => {
    let obs = observers.get(name);
    if (!obs) observers.set(name, (obs = makeObserver(opts.method, settings)));
    return obs;
  };
  const observe = (name: string, t: Tensor) => {
    if (nonFloat.has(name)) return;
    const x = floatView(t);
    if (!x) {
      nonFloat.add(name);
      observers.delete(name);
      return;
    }
    observer(name).update(x);
  };
  let done = 0;
  try {
    let reduceSession: Session | undefined;
    if (reduced) {
      reduceSession = await Session.open(reduced.model, { optimization: reductionOptimization(reducedTensors.length), name: model.file });
      sessions.push(reduceSession);
    }
    if (!reduced || alwaysFetched.length > 0) void fullSession();
    onProgress?.({ done, total: dataset.sampleCount });
    for await (const feeds of dataset.batches(opts.batchSize)) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const wanted = [...alwaysFetched];
      if (reduceSession && reduced) {
        const o = reduced.outputs;
        const r = await reduceSession.run(feeds, [o.count, o.min, o.max, o.sumSquares]);
        const count = r[o.count].data as BigInt64Array;
        const min = r[o.min].data as Float32Array;
        const max = r[o.max].data as Float32Array;
        const ss = r[o.sumSquares].data as Float32Array;
        reducedTensors.forEach((name, i) => {
          const lo = min[i];
          const hi = max[i];
          const n = Number(count[i]);
          if (n === 0) observer(name).updateStats!(0, Infinity, -Infinity, 0);
          else if (lo > -EXTREME_ABS && hi < EXTREME_ABS && Number.isFinite(ss[i])) observer(name).updateStats!(n, lo, hi, ss[i]);
          else wanted.push(name);
        });
      }
      const out = wanted.length > 0 ? await (await fullSession()).run(feeds, wanted) : {};
      for (const name of tensors) {
        const t = out[name] ?? (inputNames.has(name) ? feeds[name] : undefined);
        if (t) observe(name, t);
      }
      done += dataset.samplesIn(feeds);
      onProgress?.({ done, total: dataset.sampleCount });
    }
  } finally {
    if (full) await full.catch(() => undefined);
    for (const s of sessions) await s.release();
  }

  const entries: Record<string, TensorRange> = {};
  for (const name of tensors) {
    const obs = observers.get(name);
    if (obs) entries[name] = obs.result();
  }
  const tableSettings: CalibrationTable['settings'] = { batchSize: opts.batchSize, bins: opts.bins, data: dataset.description, tensors: tensorsFrom ?? (opts.tensors ? 'listed' : 'all') };
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
