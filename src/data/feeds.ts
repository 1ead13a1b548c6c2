/**
 * In-memory data: the feeds a Node app already builds for inference, as a calibration/evaluation
 * source (the equivalent of onnxruntime's CalibrationDataReader).
 *
 * A feed is `{ [inputName]: ort.Tensor | { data: TypedArray, dims: number[] } }`. ort.Tensor is
 * duck-typed by its fields (`type`, `dims`, `data`), so this module does not import onnxruntime. A plain
 * `{ data, dims }` takes its dtype from the TypedArray (Uint16Array is uint16; say `type: 'float16'`
 * for half floats); `data` may also be a number[] (untyped, like JSON numbers).
 *
 * Sources: an array of feeds, a sync or async iterable (e.g. a generator object), or a function
 * returning one (e.g. an async generator function). Feeds are pulled one at a time and copied into
 * batches: memory is bounded as for files. A one-shot iterable (a generator object) can be read once;
 * stages that read the data twice need an array or a function.
 */
import { InputError } from '../errors.js';
import { isFeedSource, makeTensor, numElements, type DType, type FeedLike, type FeedSource, type LabelSource, type Tensor, type TensorLike, type TypedArrayLike } from '../tensor/index.js';
import type { Chunk, ChunkSource, Layout } from './dataset.js';
import { formatDims } from './specs.js';

export type { FeedLike, FeedSource, LabelSource, TensorLike, TypedArrayLike } from '../tensor/index.js';
export { isFeedSource } from '../tensor/index.js';

const CTOR_DTYPES: readonly (readonly [new (n: number) => unknown, DType])[] = [
  [Float32Array, 'float32'],
  [Float64Array, 'float64'],
  [Int8Array, 'int8'],
  [Uint8Array, 'uint8'],
  [Int16Array, 'int16'],
  [Uint16Array, 'uint16'],
  [Int32Array, 'int32'],
  [Uint32Array, 'uint32'],
  [BigInt64Array, 'int64'],
  [BigUint64Array, 'uint64'],
];

const NAMED_DTYPES: ReadonlySet<string> = new Set(['float32', 'float64', 'float16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool']);

/**
 * A TensorLike as a qtool Tensor (a view, no copy). `untyped` is set for number[] data, converted like
 * JSON numbers (integral values may feed integer inputs).
 */
export function tensorFromLike(t: unknown, where: string, input: string): { tensor: Tensor; untyped: boolean } {
  const fail = (msg: string) => new InputError('E_DATA_FORMAT', `input "${input}": ${msg}`, { file: where });
  if (!t || typeof t !== 'object') throw fail(`expected an ort.Tensor or { data, dims }, got ${t === null ? 'null' : typeof t}`);
  const o = t as Partial<TensorLike> & { location?: string };
  if (o.location !== undefined && o.location !== 'cpu' && o.location !== 'cpu-pinned') throw fail(`the tensor lives on ${o.location}: expected CPU data (call tensor.getData() first)`);
  const dims = o.dims;
  if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && d >= 0)) throw fail(`expected dims as an array of non-negative integers, got ${JSON.stringify(dims)}`);
  const data = o.data as unknown;
  const named = o.type ?? o.dtype;
  if (named === 'string') throw fail('string tensors cannot be fed by qtool');
  if (named !== undefined && !NAMED_DTYPES.has(named)) throw fail(`unsupported tensor type "${named}"`);
  let dtype: DType | undefined;
  let untyped = false;
  let values: Tensor['data'];
  if (Array.isArray(data)) {
    untyped = named === undefined;
    dtype = (named as DType | undefined) ?? 'float64';
    if (dtype === 'int64') values = BigInt64Array.from(data as number[], (x) => BigInt(x));
    else if (dtype === 'uint64') values = BigUint64Array.from(data as number[], (x) => BigInt(x));
    else values = untyped ? Float64Array.from(data as number[]) : convertPlain(Float64Array.from(data as number[]), dtype);
  } else if (ArrayBuffer.isView(data)) {
    const ctor = CTOR_DTYPES.find(([c]) => data instanceof c);
    if (!ctor) throw fail(`unsupported data type ${(data as object).constructor.name}`);
    dtype = ctor[1];
    if (named === 'float16' && dtype === 'uint16') dtype = 'float16';
    else if (named === 'bool' && dtype === 'uint8') dtype = 'bool';
    else if (named !== undefined && named !== dtype) throw fail(`type "${named}" does not match its ${(data as object).constructor.name} data`);
    values = data as Tensor['data'];
  } else throw fail(`expected data as a TypedArray or number[], got ${data === null ? 'null' : typeof data}`);
  const n = numElements(dims);
  if (values.length !== n) throw fail(`dims ${formatDims(dims)} hold ${n} elements, data has ${values.length}`);
  return { tensor: makeTensor(dtype, dims, values as never), untyped };
}

function convertPlain(v: Float64Array, dtype: DType): Tensor['data'] {
  if (dtype === 'float64') return v;
  if (dtype === 'float16') throw new InputError('E_DATA_FORMAT', 'float16 data given as number[]: expected a Uint16Array of half-float bits');
  const C = { float32: Float32Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array }[dtype as 'float32'];
  return C.from(v);
}

/** A label for messages about the i-th feed of an in-memory source. */
export function feedLabel(i: number): string {
  return `data[${i}]`;
}

/** The iterable behind a FeedSource for one pass, or an error for a one-shot iterable read twice. */
async function openPass(source: FeedSource, used: { once: boolean }): Promise<Iterable<FeedLike> | AsyncIterable<FeedLike>> {
  if (typeof source === 'function') {
    const it = await source();
    if (!it || (typeof (it as Iterable<FeedLike>)[Symbol.iterator] !== 'function' && typeof (it as AsyncIterable<FeedLike>)[Symbol.asyncIterator] !== 'function')) {
      throw new InputError('E_DATA_FORMAT', 'the data function returned no iterable: expected an array, an iterable or an async generator of feeds', { file: 'data' });
    }
    return it;
  }
  if (Array.isArray(source)) return source;
  const it = source as Iterable<FeedLike> | AsyncIterable<FeedLike>;
  // An iterator (generator object) returns itself from [Symbol.iterator]: it can be read once.
  const self = it as unknown as Record<symbol, (() => unknown) | undefined>;
  const isOneShot = self[Symbol.iterator]?.call(it) === it || self[Symbol.asyncIterator]?.call(it) === it;
  if (isOneShot) {
    if (used.once) throw new InputError('E_DATA_ONESHOT', 'the data iterator was already read once and this stage reads the data again: pass an array or a function returning a fresh iterable (e.g. an async generator function)', { file: 'data' });
    used.once = true;
  }
  return it;
}

/**
 * Chunks from in-memory feeds. Each feed is checked against the model inputs (names, fixed dims, dtype
 * rules of convert.ts) and may hold one sample or a stack along the batch axis; `convert` applies the
 * dtype rules and any normalization.
 */
export function feedSource(source: FeedSource, layouts: readonly Layout[], convert: (t: Tensor, layout: Layout, where: string, untyped: boolean, notes: Set<string>) => Tensor, stack: (dims: readonly number[], layout: Layout, where: string) => { count: number; sampleDims: number[] }): ChunkSource {
  const used = { once: false };
  const known = new Set(layouts.map((l) => l.spec.name));
  return async function* (_chunkSize, budget, notes) {
    const it = await openPass(source, used);
    let i = 0;
    let first = 0;
    for await (const feed of it as AsyncIterable<FeedLike>) {
      if (budget.left <= 0) break;
      const where = feedLabel(i++);
      if (!feed || typeof feed !== 'object') throw new InputError('E_DATA_FORMAT', `expected a feed object { [inputName]: tensor }, got ${feed === null ? 'null' : typeof feed}`, { file: where });
      for (const k of Object.keys(feed)) if (!known.has(k)) throw new InputError('E_DATA_EXTRA', `"${k}" is not a model input: expected only ${[...known].map((n) => `"${n}"`).join(', ')}`, { file: where });
      const arrays = new Map<string, Tensor>();
      let count: number | undefined;
      for (const l of layouts) {
        const t = feed[l.spec.name];
        if (t === undefined) throw new InputError('E_DATA_MISSING', `input "${l.spec.name}" is missing: expected a tensor for every model input`, { file: where });
        const { tensor, untyped } = tensorFromLike(t, where, l.spec.name);
        const info = stack(tensor.dims, l, where);
        if (count !== undefined && info.count !== count) throw new InputError('E_DATA_SHAPE', `input "${l.spec.name}" holds ${info.count} samples, another input ${count}: expected the same count`, { file: where });
        count = info.count;
        const shaped = tensor.dims.length === info.sampleDims.length + 1 ? tensor : makeTensor(tensor.dtype, [1, ...info.sampleDims], tensor.data as never);
        arrays.set(l.spec.name, convert(shaped, l, where, untyped, notes));
      }
      let k = count ?? 0;
      if (k === 0) continue;
      if (k > budget.left) {
        k = budget.left;
        for (const [name, t] of arrays) arrays.set(name, makeTensor(t.dtype, [k, ...t.dims.slice(1)], t.data.subarray(0, (t.data.length / t.dims[0]) * k) as never));
      }
      budget.left -= k;
      const chunk: Chunk = { label: where, first, count: k, arrays };
      first += k;
      yield chunk;
    }
  };
}

/** In-memory labels as one int64 tensor ([samples], or [samples, …] from a TensorLike). */
export async function labelsFromSource(source: LabelSource): Promise<Tensor> {
  const where = 'labels';
  const src = typeof source === 'function' ? source() : source;
  if (src && typeof src === 'object' && 'dims' in src && 'data' in src) {
    const { tensor } = tensorFromLike(src, where, 'labels');
    return toInt64(tensor.data as ArrayLike<number | bigint>, tensor.dims, where);
  }
  if (ArrayBuffer.isView(src) || Array.isArray(src)) {
    const a = src as ArrayLike<number | bigint>;
    return toInt64(a, [a.length], where);
  }
  const vals: (number | bigint)[] = [];
  for await (const v of src as AsyncIterable<number | bigint>) vals.push(v);
  return toInt64(vals, [vals.length], where);
}

function toInt64(a: ArrayLike<number | bigint>, dims: readonly number[], where: string): Tensor {
  const out = new BigInt64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (typeof v === 'bigint') out[i] = v;
    else if (Number.isInteger(v)) out[i] = BigInt(v);
    else throw new InputError('E_LABELS', `labels: expected integer class ids, got ${v} at ${i}`, { file: where });
  }
  return makeTensor('int64', dims, out);
}
