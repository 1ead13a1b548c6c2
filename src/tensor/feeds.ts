/**
 * The shapes of in-memory data a Node app hands qtool: feeds as onnxruntime takes them (ort.Tensor is
 * matched by its fields, so nothing here imports onnxruntime), and sources of feeds and labels. The
 * reading lives in data/feeds.ts; the types live here so option schemas (documents/) can name them.
 */
/** A typed array as onnxruntime-node accepts it. */
export type TypedArrayLike = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

/** A tensor as an app holds it: an ort.Tensor, a qtool Tensor, or a plain `{ data, dims }`. */
export interface TensorLike {
  readonly data: TypedArrayLike | readonly number[] | readonly bigint[];
  readonly dims: readonly number[];
  /** onnxruntime's dtype field (ort.Tensor.type). */
  readonly type?: string;
  /** qtool's dtype field (Tensor.dtype). */
  readonly dtype?: string;
}

/** One model run's inputs by name. */
export type FeedLike = Readonly<Record<string, TensorLike>>;

/** Feeds in memory or streamed: an array, a sync/async iterable, or a function returning one. */
export type FeedSource = readonly FeedLike[] | Iterable<FeedLike> | AsyncIterable<FeedLike> | (() => Iterable<FeedLike> | AsyncIterable<FeedLike> | Promise<Iterable<FeedLike> | AsyncIterable<FeedLike>>);

/** Labels in memory: an array/typed array of class ids, a TensorLike, or an iterable/function of ids. */
export type LabelSource = ArrayLike<number | bigint> | TensorLike | Iterable<number | bigint> | AsyncIterable<number | bigint> | (() => Iterable<number | bigint> | AsyncIterable<number | bigint>);

/** True when `v` is a FeedSource rather than a path. */
export function isFeedSource(v: unknown): v is FeedSource {
  if (typeof v === 'string' || v === null || v === undefined) return false;
  return typeof v === 'function' || Array.isArray(v) || typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function' || typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

