import type { Dataset } from '../data/index.js';
import { CalibrateOptionsSchema, flattenIssues, type CalibrateSettings, type CalibrateOptions, type CalibrationTable, type TensorRange } from '../documents/index.js';
import { UsageError } from '../errors.js';
import { GraphIndex, type Model } from '../onnx/index.js';
import { Session, modelSha256 } from '../runtime/index.js';
import { toFloat32, type Tensor } from '../tensor/index.js';
import { calibrationTensors, inferDTypes, withOutputs, withReductions, type ReductionOutputs } from './augment.js';
import { ObserverPool, type ObservedBatchItem } from './observer-pool.js';
import { EXTREME_ABS, calibrationKernel, makeObserver, type CleanStats, type Observer, type ObserverSettings } from './observers/index.js';

/**
 * Graph optimization level of the sessions that reduce tensors in-graph (minmax's, and the fetch
 * session of the histogram methods). 'all' runs faster (fused and NCHWc
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
  /** Samples the dataset will provide (undefined for a stream of feeds of unknown length). */
  total: number | undefined;
}

export interface CalibrateCallbacks {
  onProgress?: (p: CalibrateProgress) => void;
  signal?: AbortSignal;
  /**
   * Where `tensors` came from, recorded as the table's `settings.tensors` (default: 'listed' when
   * `tensors` is given, else 'all'); the pipeline writes 'plan' / 'plans' for its rewrite-derived lists.
   */
  tensorsFrom?: string;
  /**
   * Worker threads that bin the activations of percentile/entropy/mse while onnxruntime runs the next
   * batch (default 0: on this thread). The table is the same. On 2 cores they bought no wall time and
   * cost 30-60% more CPU (bench/RESULTS.md), so they are opt-in.
   */
  workers?: number;
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

/**
 * Collect activation statistics and ranges, batch by batch, in constant memory.
 *
 * A copy of the model computes count/min/max/Σx² of every observed float32 tensor inside the graph
 * (withReductions: four small outputs per run). minmax needs nothing else: it fetches a tensor whole
 * only when it is not float32 or its batch holds NaN/Inf/|x| ≥ 2⁶⁴ (where x² overflows float32) values, from a second, lazily
 * opened session; its table has no histograms. percentile/entropy/mse also fetch every observed tensor
 * from the same run and bin it (no second scan for the extremes when the in-graph ones are clean), on
 * this thread or, with `workers`, on worker threads (see ObserverPool).
 */
export async function calibrate(model: Model, dataset: Dataset, options: CalibrateOptions & CalibrateCallbacks = {}): Promise<CalibrationTable> {
  const { onProgress, signal, tensorsFrom, workers, ...rest } = options;
  const parsed = CalibrateOptionsSchema.safeParse(rest);
  if (!parsed.success) throw new UsageError('E_FLAG', `invalid calibration options: ${flattenIssues(parsed.error)}`);
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 0)) throw new UsageError('E_FLAG', `workers: expected a non-negative integer, got ${workers}`);
  const opts = parsed.data;
  const tensors = calibrationTensors(model, opts.tensors);
  const inputNames = new Set(dataset.inputs.map((i) => i.name));
  const fetches = tensors.filter((t) => !inputNames.has(t));
  const types = inferDTypes(GraphIndex.of(model));
  const reducedTensors = fetches.filter((t) => types.get(t) === 'float32');
  // Histogram methods fetch every tensor anyway: with the WebAssembly kernel, its scan of the fetched
  // values is cheaper than onnxruntime's extra in-graph reduction pass (bench/calibrate.mjs), so the
  // statistics come from the kernel; minmax keeps the in-graph reductions (no fetch at all).
  const inGraph = opts.method === 'minmax' || process.env.QTOOL_CALIB_INGRAPH === '1' || !calibrationKernel();
  const reduced = reducedTensors.length > 0 && inGraph ? withReductions(model, reducedTensors) : undefined;
  const settings = { percentile: opts.percentile, symmetric: opts.symmetric, bins: opts.bins, movingAverage: opts.movingAverage };
  const run: RunContext = { model, dataset, opts, settings, tensors, inputNames, fetches, reducedTensors, reduced, onProgress, signal, workers };
  const { entries: observed, samples } = opts.method === 'minmax' ? await runMinmax(run) : await runHistograms(run);

  const entries: Record<string, TensorRange> = {};
  for (const name of tensors) {
    const e = observed.get(name);
    if (e) entries[name] = e;
  }
  const tableSettings: CalibrationTable['settings'] = { batchSize: opts.batchSize, bins: opts.bins, data: dataset.description, tensors: tensorsFrom ?? (opts.tensors ? 'listed' : 'all') };
  if (opts.method === 'percentile') tableSettings.percentile = opts.percentile;
  if (opts.method !== 'minmax') tableSettings.symmetric = opts.symmetric;
  if (opts.method === 'minmax') tableSettings.movingAverage = opts.movingAverage;
  if (dataset.skipped > 0) tableSettings.skippedNonfinite = dataset.skipped;
  return {
    kind: 'qtool.calibration',
    version: 1,
    model: { file: model.file, sha256: modelSha256(model) },
    method: opts.method,
    settings: tableSettings,
    samples,
    tensors: entries,
  };
}

interface RunContext {
  model: Model;
  dataset: Dataset;
  opts: CalibrateSettings;
  settings: ObserverSettings;
  /** Every observed tensor, in table order. */
  tensors: readonly string[];
  inputNames: ReadonlySet<string>;
  /** Observed tensors that are not graph inputs (fetched from the session). */
  fetches: readonly string[];
  /** Fetched float32 tensors whose statistics the graph computes. */
  reducedTensors: readonly string[];
  reduced?: { model: Model; outputs: ReductionOutputs };
  onProgress?: (p: CalibrateProgress) => void;
  signal?: AbortSignal;
  workers?: number;
}

interface RunResult {
  entries: Map<string, TensorRange>;
  samples: number;
}

/** [count, min, max, Σx²] of reduced tensor i when clean (all finite, below EXTREME_ABS), else undefined. */
function cleanStats(r: Record<string, Tensor>, o: ReductionOutputs, i: number): CleanStats | undefined {
  const n = Number((r[o.count].data as BigInt64Array)[i]);
  const lo = (r[o.min].data as Float32Array)[i];
  const hi = (r[o.max].data as Float32Array)[i];
  const ss = (r[o.sumSquares].data as Float32Array)[i];
  if (n === 0) return [0, Infinity, -Infinity, 0];
  return lo > -EXTREME_ABS && hi < EXTREME_ABS && Number.isFinite(ss) ? [n, lo, hi, ss] : undefined;
}

async function runMinmax(c: RunContext): Promise<RunResult> {
  const { model, dataset, opts, settings, tensors, inputNames, fetches, reducedTensors, reduced } = c;
  const observers = new Map<string, Observer>();
  const nonFloat = new Set<string>();
  // Tensors the graph does not reduce (graph inputs aside, which come from the feeds) and any tensor
  // whose batch is not clean are fetched whole from a second, lazily opened session and observed in JS.
  const reducedSet = new Set(reducedTensors);
  const alwaysFetched = fetches.filter((t) => !reducedSet.has(t));
  const sessions: Session[] = [];
  let full: Promise<Session> | undefined;
  const fullSession = () => {
    if (!full) {
      full = Session.open(withOutputs(model, fetches), { optimization: 'disabled', name: model.file }).then((s) => {
        sessions.push(s);
        return s;
      });
      full.catch(() => undefined); // awaited where used; this only keeps an early rejection from being unhandled
    }
    return full;
  };
  const observer = (name: string) => {
    let obs = observers.get(name);
    if (!obs) observers.set(name, (obs = makeObserver(opts.method, settings)));
    return obs;
  };
  let done = 0;
  try {
    let reduceSession: Session | undefined;
    if (reduced) {
      reduceSession = await Session.open(reduced.model, { optimization: reductionOptimization(reducedTensors.length), name: model.file });
      sessions.push(reduceSession);
    }
    if (!reduced || alwaysFetched.length > 0) void fullSession();
    c.onProgress?.({ done, total: dataset.sampleCount });
    for await (const feeds of dataset.batches(opts.batchSize)) {
      if (c.signal?.aborted) throw c.signal.reason ?? new Error('aborted');
      const wanted = [...alwaysFetched];
      if (reduceSession && reduced) {
        const o = reduced.outputs;
        const r = await reduceSession.run(feeds, [o.count, o.min, o.max, o.sumSquares]);
        reducedTensors.forEach((name, i) => {
          const st = cleanStats(r, o, i);
          if (st) observer(name).updateStats!(...st);
          else wanted.push(name);
        });
      }
      const out = wanted.length > 0 ? await (await fullSession()).run(feeds, wanted) : {};
      for (const name of tensors) {
        if (nonFloat.has(name)) continue;
        const t = out[name] ?? (inputNames.has(name) ? feeds[name] : undefined);
        if (!t) continue;
        const x = floatView(t);
        if (x) observer(name).update(x);
        else {
          nonFloat.add(name);
          observers.delete(name);
        }
      }
      done += dataset.samplesIn(feeds);
      c.onProgress?.({ done, total: dataset.sampleCount });
    }
  } finally {
    if (full) await full.catch(() => undefined);
    for (const s of sessions) await s.release();
  }
  return { entries: new Map([...observers].map(([n, o]) => [n, o.result()])), samples: done };
}

async function runHistograms(c: RunContext): Promise<RunResult> {
  const { model, dataset, opts, settings, tensors, inputNames, fetches, reducedTensors, reduced } = c;
  const observers = new Map<string, Observer>();
  const nonFloat = new Set<string>();
  const reducedIndex = new Map(reducedTensors.map((t, i) => [t, i]));
  const statOutputs = reduced ? [reduced.outputs.count, reduced.outputs.min, reduced.outputs.max, reduced.outputs.sumSquares] : [];
  const fetchList = [...fetches, ...statOutputs];
  let session: Session | undefined;
  let pool: ObserverPool | undefined;
  let done = 0;
  try {
    if (fetches.length > 0) session = await Session.open(withOutputs(reduced?.model ?? model, fetches), { optimization: reductionOptimization(fetches.length), name: model.file });
    const threads = Math.min(c.workers ?? 0, tensors.length);
    if (threads > 0) pool = ObserverPool.open(tensors, threads, opts.method, settings);
    c.onProgress?.({ done, total: dataset.sampleCount });
    for await (const feeds of dataset.batches(opts.batchSize)) {
      if (c.signal?.aborted) throw c.signal.reason ?? new Error('aborted');
      const out = session ? await session.run(feeds, fetchList) : {};
      const items: ObservedBatchItem[] = [];
      for (const name of tensors) {
        if (nonFloat.has(name)) continue;
        const fromFeeds = inputNames.has(name);
        const t = out[name] ?? (fromFeeds ? feeds[name] : undefined);
        if (!t) continue;
        const x = floatView(t);
        if (!x) {
          nonFloat.add(name);
          continue;
        }
        const i = reducedIndex.get(name);
        // Feeds may be the dataset's own buffers: the pool gets copies (it takes ownership of what it gets).
        items.push({ name, x: pool && fromFeeds && x === t.data ? x.slice() : x, stats: i === undefined || !reduced ? undefined : cleanStats(out, reduced.outputs, i) });
      }
      if (pool) await pool.post(items);
      else {
        for (const it of items) {
          let obs = observers.get(it.name);
          if (!obs) observers.set(it.name, (obs = makeObserver(opts.method, settings)));
          obs.update(it.x, it.stats);
        }
      }
      done += dataset.samplesIn(feeds);
      c.onProgress?.({ done, total: dataset.sampleCount });
    }
    const entries = pool ? await pool.finish() : new Map([...observers].map(([n, o]) => [n, o.result()]));
    for (const n of nonFloat) entries.delete(n);
    return { entries, samples: done };
  } finally {
    await pool?.close();
    await session?.release();
  }
}
