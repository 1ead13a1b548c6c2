/** Messages between calibrate() and its observer worker threads (observer-worker.ts). */
import type { CalibrationMethod, TensorRange } from '../documents/index.js';
import type { ObserverSettings } from './observers/make.js';
import type { CleanStats } from './observers/observer.js';

/** One tensor's batch: its values and, when computed inside the graph and clean, its statistics. */
export interface BatchItem {
  /** The tensor's index in the worker's `names`. */
  slot: number;
  x: Float32Array;
  /** Clean in-graph statistics (count, min, max, Σx²), or undefined: the worker scans x itself. */
  stats?: CleanStats;
}

export type ToWorker =
  | { type: 'init'; method: CalibrationMethod; settings: ObserverSettings; names: string[] }
  | { type: 'batch'; seq: number; items: BatchItem[] }
  | { type: 'finish' };

export type FromWorker =
  | { type: 'ack'; seq: number; buffers: ArrayBuffer[] }
  | { type: 'results'; results: (TensorRange | undefined)[] }
  | { type: 'error'; message: string };
