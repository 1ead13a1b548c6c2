/**
 * Calibration/evaluation data as a stream of model feeds.
 *
 * Sources: one .npy (single-input models), one .npz (array names = input names), a directory of
 * .npy/.npz files (one sample or a stack of samples each, sorted by name), a JSON Lines file
 * (one `{input: nested array}` sample per line), or `random` (seeded, from the declared shapes).
 *
 * Samples and batches. An input whose first axis is a batch axis (see hasBatchAxis) has samples of
 * shape dims[1:]; other inputs' samples are the whole input, fed one per run. A data array holds one
 * sample (rank = sample rank) or a stack of samples along its first axis (rank = sample rank + 1).
 * Batches stack up to `batchSize` consecutive samples; a batch ends early where the samples' dynamic
 * dims change. Fixed dims are checked against the model; dynamic dims come from the data.
 *
 * Streaming: arrays are read `batchSize` samples at a time (positioned reads, or a streaming inflater
 * for deflated .npz entries), copied into a fresh batch and dropped by the caller: memory does not grow
 * with the number of samples. `maxSamples` takes the first N samples.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { InputError, ModelError, UsageError } from '../errors.js';
import { describeFsError, kindOf, type PipeReadOptions } from '../files.js';
import { inheritedFd, spoolPipe } from './spool.js';
import type { Model } from '../onnx/index.js';
import { DTYPES, Rng, formatShape, makeTensor, numElements, type DType, type Feeds, type Tensor } from '../tensor/index.js';
import { convertDtype, isFiniteRange, isFloatDType } from './convert.js';
import { typedFromBytes } from './npy.js';
import { npyArray, npzArrays, type StoredArray } from './npz.js';
import { formatDims, hasBatchAxis, modelInputSpecs, type InputSpec } from './specs.js';
import { audioSource, isAudioFile, listAudio, planAudio } from './audio.js';
import { feedLabel, feedSource, isFeedSource, labelsFromSource, type FeedLike, type FeedSource, type LabelSource } from './feeds.js';
import { imageSource, isImageFile, listImageFolder } from './images.js';
import { formatPreprocess, hasNormalization, normalizeArray, planImage, type Preprocess } from './preprocess.js';
import { looksLikeText, planText, scanTextFile, textSource, type TextPadding } from './text.js';

export interface OpenDatasetOptions {
  /** Use at most the first N samples. */
  maxSamples?: number;
  /** Seed for `random` data (default 0). */
  seed?: number;
  /** Skip samples holding NaN/Inf (counted in `skipped`) instead of failing with E_DATA_NONFINITE. */
  skipNonfinite?: boolean;
  /** Number of samples `random` generates (default 32). */
  randomSamples?: number;
  /**
   * Values for dynamic dims of `random` data, by symbolic dim name (e.g. { sequence: 64 }). Unnamed or
   * unlisted dynamic dims are RANDOM_DYNAMIC_DIM (32); a batch axis always gets one sample per row.
   */
  randomDims?: Readonly<Record<string, number>>;
  /** Images: resize/fit/layout/channels; images, audio and .npy/.npz arrays: scale/mean/std (see preprocess.ts). */
  preprocess?: Preprocess;
  /** Audio: the model's sample rate, window and hop (see audio.ts). */
  sampleRate?: number;
  window?: number;
  hop?: number;
  /** Text: a Hugging Face tokenizer.json for JSON Lines of {"text": …} (see text.ts). */
  tokenizer?: string;
  maxLength?: number;
  padding?: TextPadding;
  /** In-memory labels for an in-memory data source. */
  labels?: LabelSource;
  /** Data from a pipe: how long to wait for a writer and the size cap (see spool.ts). */
  pipe?: PipeReadOptions;
}

/**
 * Values one generated random sample may hold (4 M, e.g. 3×1024×1024 or 32×131072): declared shapes
 * are not trusted, and onnxruntime's activations grow with the input (fuzz: a CNN input declared
 * 65535 wide took 4 GB).
 */
export const MAX_RANDOM_SAMPLE_VALUES = 1 << 22;

/** Default size of a dynamic (non-batch) dim in `random` data. */
export const RANDOM_DYNAMIC_DIM = 32;
export const RANDOM_DEFAULT_SAMPLES = 32;
export const RANDOM_DATA_WARNING = 'calibrating on random data: ranges from random inputs are not representative of real data; use real samples for a model you ship';

export interface Dataset {
  readonly inputs: readonly InputSpec[];
  /**
   * Samples that batches() will read (after maxSamples), before any non-finite samples are skipped;
   * undefined for a stream (an iterable or function of feeds) until a batches() pass has finished.
   */
  readonly sampleCount: number | undefined;
  /** One line: where the data comes from and what it holds. */
  readonly description: string;
  /** Notes the caller should show (random data, rounding, dropped samples). */
  readonly warnings: string[];
  /** Samples skipped for NaN/Inf during the last batches() pass. */
  readonly skipped: number;
  /** Samples per feed for a requested batch size (1 when an input has no batch axis; a fixed batch dim wins). */
  effectiveBatchSize(requested: number): number;
  /** Samples in a feed produced by batches(). */
  samplesIn(feeds: Feeds): number;
  /** Feeds of up to `batchSize` samples, produced lazily; each call starts from the first sample. */
  batches(batchSize: number): AsyncIterable<Feeds>;
  /** Class ids per sample (int64 [samples]) when the data carries them: ImageFolder class sub-folders. */
  readonly labels?: Tensor;
  /** Per sample, its file relative to the data folder (image/audio folders): the keys of CSV labels. */
  readonly sampleKeys?: readonly string[];
  /** Class names by id (ImageFolder sub-folders, sorted). */
  readonly classes?: readonly string[];
}

/** Labels and keys a source knows up front, cut to the samples read. */
export interface SampleInfo {
  labels?: Tensor;
  sampleKeys?: readonly string[];
  classes?: readonly string[];
}

export interface Layout {
  readonly spec: InputSpec;
  readonly batched: boolean;
  /** Declared dims of one sample (without the batch axis). */
  readonly sampleSpec: readonly (number | string | null)[];
}

/** A run of consecutive samples, converted to the inputs' dtypes, each array shaped [count, ...sample]. */
export interface Chunk {
  readonly label: string;
  readonly first: number;
  readonly count: number;
  readonly arrays: ReadonlyMap<string, Tensor>;
  /** Values known finite (decoded pixels, audio, token ids): the NaN/Inf scan is skipped. */
  readonly isFinite?: boolean;
}

export type ChunkSource = (chunkSize: number, budget: { left: number }, notes: Set<string>) => AsyncGenerator<Chunk>;

interface StackInfo {
  stacked: boolean;
  count: number;
  sampleDims: number[];
}

export function layoutOf(spec: InputSpec): Layout {
  const batched = hasBatchAxis(spec);
  return { spec, batched, sampleSpec: batched ? spec.dims.slice(1) : spec.dims };
}

function shapeError(file: string, input: string, msg: string): InputError {
  return new InputError('E_DATA_SHAPE', `input "${input}": ${msg}`, { file });
}

/** How an array of `dims` maps onto samples of `layout`, with fixed dims checked. */
function stackInfo(dims: readonly number[], layout: Layout, file: string, allowStack = true): StackInfo {
  const name = layout.spec.name;
  if (layout.spec.unknownRank) return dims.length === 0 ? { stacked: false, count: 1, sampleDims: [] } : { stacked: true, count: dims[0], sampleDims: dims.slice(1) };
  const r = layout.sampleSpec.length;
  let info: StackInfo;
  if (dims.length === r + 1 && (allowStack || dims[0] === 1)) info = { stacked: true, count: dims[0], sampleDims: dims.slice(1) };
  else if (dims.length === r) info = { stacked: false, count: 1, sampleDims: [...dims] };
  else {
    const want = layout.batched ? formatDims(layout.spec.dims) : `${formatDims(['samples', ...layout.spec.dims])} or ${formatDims(layout.spec.dims)}`;
    throw shapeError(file, name, `expected shape ${want}, got ${formatDims(dims)}`);
  }
  layout.sampleSpec.forEach((d, i) => {
    if (typeof d === 'number' && info.sampleDims[i] !== d) {
      throw shapeError(file, name, `expected shape ${formatDims(layout.spec.dims)}, got ${formatDims(dims)} (axis ${info.stacked || layout.batched ? i + 1 : i} must be ${d})`);
    }
  });
  return info;
}

/** A set of arrays (one per input) with the same number of samples: one .npy, one .npz. */
interface ArraySet {
  readonly file: string;
  readonly count: number;
  readonly arrays: ReadonlyMap<string, { arr: StoredArray; info: StackInfo }>;
}

function arraySet(file: string, arrays: readonly StoredArray[], layouts: readonly Layout[], isNpy: boolean): ArraySet {
  const byName = new Map<string, StoredArray>();
  if (isNpy) {
    if (layouts.length !== 1) {
      throw new InputError('E_DATA_MISSING', `an .npy file holds one array, the model has ${layouts.length} inputs (${layouts.map((l) => l.spec.name).join(', ')}): expected an .npz with one array per input`, { file });
    }
    byName.set(layouts[0].spec.name, arrays[0]);
  } else {
    const known = new Set(layouts.map((l) => l.spec.name));
    for (const a of arrays) {
      if (!known.has(a.name)) throw new InputError('E_DATA_EXTRA', `array "${a.name}" is not a model input: expected only ${[...known].map((n) => `"${n}"`).join(', ')}`, { file });
      byName.set(a.name, a);
    }
    for (const l of layouts) {
      if (!byName.has(l.spec.name)) throw new InputError('E_DATA_MISSING', `input "${l.spec.name}" is missing: expected an array named "${l.spec.name}" (arrays: ${arrays.map((a) => a.name).join(', ') || 'none'})`, { file });
    }
  }
  const out = new Map<string, { arr: StoredArray; info: StackInfo }>();
  let count = -1;
  let first = '';
  for (const l of layouts) {
    const arr = byName.get(l.spec.name)!;
    const info = stackInfo(arr.header.dims, l, file);
    if (count >= 0 && info.count !== count) throw shapeError(file, l.spec.name, `expected ${count} samples (as input "${first}" has), got ${info.count}`);
    if (count < 0) (count = info.count), (first = l.spec.name);
    out.set(l.spec.name, { arr, info });
  }
  return { file, count: Math.max(count, 0), arrays: out };
}

function arraySetSource(set: ArraySet, layouts: readonly Layout[], pre?: Preprocess): ChunkSource {
  return async function* (chunkSize, budget, notes) {
    const readers = new Map<string, ReturnType<StoredArray['open']>>();
    try {
      for (const [name, { arr }] of set.arrays) readers.set(name, arr.open());
      for (let s = 0; s < set.count && budget.left > 0; ) {
        const k = Math.min(chunkSize, set.count - s, budget.left);
        const arrays = new Map<string, Tensor>();
        for (const l of layouts) {
          const { arr, info } = set.arrays.get(l.spec.name)!;
          const per = numElements(info.sampleDims);
          const bytes = await readers.get(l.spec.name)!.read(k * per * (DTYPES[arr.header.dtype].bits / 8));
          const raw = makeTensor(arr.header.dtype, [k, ...info.sampleDims], typedFromBytes(arr.header.dtype, bytes));
          arrays.set(l.spec.name, normalizeArray(raw, l.spec.dtype, pre, { file: set.file, input: l.spec.name, notes }));
        }
        budget.left -= k;
        yield { label: set.file, first: s, count: k, arrays };
        s += k;
      }
    } finally {
      for (const r of readers.values()) r.close();
    }
  };
}

function nestedShape(v: unknown): number[] {
  const dims: number[] = [];
  let cur = v;
  while (Array.isArray(cur)) {
    dims.push(cur.length);
    cur = cur[0];
  }
  return dims;
}

/**
 * Flatten a nested JSON array of `dims` (row-major) with an explicit stack: a line nested 8,000 deep
 * must not overflow the call stack. Booleans are accepted only for a bool input (true → 1, false → 0);
 * for a numeric input they are refused, never silently turned into numbers.
 */
function flattenNested(v: unknown, dims: readonly number[], file: string, input: string, isBoolInput: boolean): Float64Array {
  const n = numElements(dims);
  if (!Number.isSafeInteger(n) || n > MAX_JSONL_SAMPLE_VALUES) throw shapeError(file, input, `nested array of shape [${formatShape(dims)}] holds ${n} values: expected at most ${MAX_JSONL_SAMPLE_VALUES} per line`);
  const out = new Float64Array(n);
  let k = 0;
  const stack: { arr: unknown[]; depth: number; next: number }[] = [];
  const visit = (x: unknown, depth: number): void => {
    if (depth === dims.length) {
      if (typeof x === 'number') out[k++] = x;
      else if (typeof x === 'boolean' && isBoolInput) out[k++] = x ? 1 : 0;
      else if (typeof x === 'boolean') throw new InputError('E_DATA_DTYPE', `input "${input}": expected numbers, got a boolean (booleans are accepted only for bool inputs)`, { file });
      else throw new InputError('E_DATA_DTYPE', `input "${input}": expected numbers, got ${x === null ? 'null' : Array.isArray(x) ? 'an array' : typeof x}`, { file });
      return;
    }
    if (!Array.isArray(x) || x.length !== dims[depth]) throw shapeError(file, input, `ragged nested array: expected ${dims[depth]} elements at depth ${depth}, got ${Array.isArray(x) ? x.length : 'a scalar'}`);
    stack.push({ arr: x, depth, next: 0 });
  };
  visit(v, 0);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next === top.arr.length) {
      stack.pop();
      continue;
    }
    visit(top.arr[top.next++], top.depth + 1);
  }
  return out;
}

/** Values one JSON Lines sample may hold (64 M): a line is parsed whole, so it is bounded. */
export const MAX_JSONL_SAMPLE_VALUES = 1 << 26;

async function countJsonlRecords(file: string): Promise<number> {
  let n = 0;
  for await (const line of readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity })) if (line.trim()) n++;
  return n;
}

function jsonlSource(file: string, layouts: readonly Layout[]): ChunkSource {
  return async function* (_chunkSize, budget, notes) {
    const stream = fs.createReadStream(file);
    const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
    let lineNo = 0;
    let index = 0;
    try {
      for await (const line of rl) {
        lineNo++;
        if (!line.trim()) continue;
        if (budget.left <= 0) break;
        const label = `${file}:${lineNo}`;
        let rec: unknown;
        try {
          rec = JSON.parse(line);
        } catch (err) {
          throw new InputError('E_DATA_FORMAT', `not valid JSON (${(err as Error).message})`, { file: label, cause: err });
        }
        if (!rec || typeof rec !== 'object' || Array.isArray(rec)) throw new InputError('E_DATA_FORMAT', `expected a JSON object {inputName: nested array}, got ${Array.isArray(rec) ? 'an array' : typeof rec}`, { file: label });
        const obj = rec as Record<string, unknown>;
        const known = new Set(layouts.map((l) => l.spec.name));
        for (const k of Object.keys(obj)) if (!known.has(k)) throw new InputError('E_DATA_EXTRA', `key "${k}" is not a model input: expected only ${[...known].map((n) => `"${n}"`).join(', ')}`, { file: label });
        const arrays = new Map<string, Tensor>();
        for (const l of layouts) {
          if (!(l.spec.name in obj)) throw new InputError('E_DATA_MISSING', `input "${l.spec.name}" is missing: expected a key "${l.spec.name}"`, { file: label });
          const v = obj[l.spec.name];
          const dims = nestedShape(v);
          const values = flattenNested(v, dims, label, l.spec.name, l.spec.dtype === 'bool');
          const info = stackInfo(dims, l, label, false);
          const raw = makeTensor('float64', [1, ...info.sampleDims], values);
          arrays.set(l.spec.name, convertDtype(raw, l.spec.dtype, { file: label, input: l.spec.name, untyped: true, notes }));
        }
        budget.left -= 1;
        yield { label, first: index++, count: 1, arrays };
      }
    } finally {
      rl.close();
      stream.destroy();
    }
  };
}

function randomSource(layouts: readonly Layout[], count: number, seed: number, dimsByName: Readonly<Record<string, number>>): ChunkSource {
  const sampleDims = new Map(
    layouts.map((l) => [l.spec.name, l.sampleSpec.map((d) => (typeof d === 'number' ? d : typeof d === 'string' && dimsByName[d] !== undefined ? dimsByName[d] : RANDOM_DYNAMIC_DIM))]),
  );
  for (const l of layouts) {
    const dims = sampleDims.get(l.spec.name)!;
    const n = numElements(dims);
    if (dims.some((d) => !Number.isSafeInteger(d) || d < 0) || !(n <= MAX_RANDOM_SAMPLE_VALUES)) {
      throw new ModelError('E_FEED_SHAPE', `input "${l.spec.name}": random data for the declared sample shape [${formatShape(dims)}] would hold ${n} values: expected at most ${MAX_RANDOM_SAMPLE_VALUES} per sample (give real data)`);
    }
  }
  return async function* (chunkSize, budget) {
    const rng = new Rng(seed);
    for (let s = 0; s < count && budget.left > 0; ) {
      const k = Math.min(chunkSize, count - s, budget.left);
      const arrays = new Map<string, Tensor>();
      for (const l of layouts) {
        const dims = [k, ...sampleDims.get(l.spec.name)!];
        arrays.set(l.spec.name, randomTensor(l.spec, dims, rng));
      }
      budget.left -= k;
      yield { label: 'random', first: s, count: k, arrays };
      s += k;
    }
  };
}

/** Floats ~ N(0, 1); integers uniform in 0..9 (1 for inputs named like a mask); bool true. */
function randomTensor(spec: InputSpec, dims: number[], rng: Rng): Tensor {
  const n = numElements(dims);
  const dt = spec.dtype;
  if (dt === 'float32' || dt === 'float64') {
    const f = rng.fillNormal(new Float32Array(n));
    return makeTensor(dt, dims, (dt === 'float32' ? f : Float64Array.from(f)) as never);
  }
  if (dt === 'float16') return convertDtype(makeTensor('float32', dims, rng.fillNormal(new Float32Array(n))), 'float16', { file: 'random', input: spec.name });
  const isMask = /mask/i.test(spec.name);
  const out = new DTYPES[dt].ctor(n);
  for (let i = 0; i < n; i++) {
    const v = dt === 'bool' || isMask ? 1 : rng.int(10);
    if (out instanceof BigInt64Array || out instanceof BigUint64Array) out[i] = BigInt(v);
    else out[i] = v;
  }
  return makeTensor(dt, dims, out as never);
}

class StreamDataset implements Dataset {
  readonly warnings: string[] = [];
  skipped = 0;
  private readonly layouts: readonly Layout[];

  constructor(
    readonly inputs: readonly InputSpec[],
    private count: number | undefined,
    readonly description: string,
    private readonly sources: readonly ChunkSource[],
    private readonly label: string,
    private readonly skipNonfinite: boolean,
    warnings: readonly string[],
    info: SampleInfo = {},
    /** Samples to read at most when the count is not known up front (streams). */
    private readonly limit = Infinity,
  ) {
    this.layouts = inputs.map(layoutOf);
    this.warnings.push(...warnings);
    const n = count ?? Infinity;
    const l = info.labels;
    if (l) this.labels = l.dims[0] > n ? makeTensor(l.dtype, [n, ...l.dims.slice(1)], l.data.slice(0, (l.data.length / l.dims[0]) * n) as never) : l;
    if (info.sampleKeys) this.sampleKeys = info.sampleKeys.slice(0, n);
    if (info.classes) this.classes = info.classes;
  }

  readonly labels?: Tensor;
  readonly sampleKeys?: readonly string[];
  readonly classes?: readonly string[];

  get sampleCount(): number | undefined {
    return this.count;
  }

  effectiveBatchSize(requested: number): number {
    if (this.layouts.some((l) => !l.batched)) return 1;
    const fixed = [...new Set(this.layouts.map((l) => l.spec.dims[0]).filter((d): d is number => typeof d === 'number'))];
    if (fixed.length > 1) throw new ModelError('E_FEED_SHAPE', `inputs fix different batch sizes (${fixed.join(', ')})`);
    return fixed.length === 1 ? fixed[0] : Math.max(1, Math.floor(requested));
  }

  samplesIn(feeds: Feeds): number {
    const l = this.layouts[0];
    return l.batched ? feeds[l.spec.name].dims[0] : 1;
  }

  async *batches(requested: number): AsyncGenerator<Feeds> {
    const batchSize = this.effectiveBatchSize(requested);
    const fixedBatch = this.layouts.some((l) => typeof l.spec.dims[0] === 'number') && this.layouts.every((l) => l.batched) && batchSize > 1;
    const notes = new Set<string>();
    const budget = { left: this.count ?? this.limit };
    this.skipped = 0;
    let yielded = 0;
    let cur: { sig: string; n: number; dims: Map<string, number[]>; bufs: Map<string, Tensor['data']> } | undefined;
    const flush = (): Feeds => {
      const c = cur!;
      cur = undefined;
      const feeds: Record<string, Tensor> = {};
      for (const l of this.layouts) {
        const sd = c.dims.get(l.spec.name)!;
        const per = numElements(sd);
        const full = c.bufs.get(l.spec.name)!;
        const data = c.n * per === full.length ? full : full.slice(0, c.n * per);
        feeds[l.spec.name] = makeTensor(l.spec.dtype, l.batched ? [c.n, ...sd] : sd, data as never);
      }
      yielded += c.n;
      return feeds;
    };
    for (const source of this.sources) {
      for await (const chunk of source(batchSize, budget, notes)) {
        const dims = new Map<string, number[]>();
        for (const l of this.layouts) dims.set(l.spec.name, chunk.arrays.get(l.spec.name)!.dims.slice(1));
        const sig = this.layouts.map((l) => dims.get(l.spec.name)!.join('x')).join('|');
        for (let s = 0; s < chunk.count; s++) {
          let finite = true;
          for (const l of chunk.isFinite ? [] : this.layouts) {
            const t = chunk.arrays.get(l.spec.name)!;
            if (!isFloatDType(t.dtype)) continue;
            const per = t.data.length / chunk.count;
            if (!isFiniteRange(t.dtype, t.data, s * per, (s + 1) * per)) {
              if (!this.skipNonfinite) {
                throw new InputError('E_DATA_NONFINITE', `input "${l.spec.name}": sample ${chunk.first + s} holds NaN or Inf values: expected finite values (pass --skip-nonfinite to skip such samples)`, {
                  file: chunk.label,
                });
              }
              finite = false;
              break;
            }
          }
          if (!finite) {
            this.skipped++;
            continue;
          }
          if (cur && cur.sig !== sig) yield flush();
          if (!cur) {
            const bufs = new Map<string, Tensor['data']>();
            for (const l of this.layouts) bufs.set(l.spec.name, new DTYPES[l.spec.dtype].ctor(batchSize * numElements(dims.get(l.spec.name)!)));
            cur = { sig, n: 0, dims, bufs };
          }
          for (const l of this.layouts) {
            const t = chunk.arrays.get(l.spec.name)!;
            const per = t.data.length / chunk.count;
            (cur.bufs.get(l.spec.name) as Float32Array).set((t.data as Float32Array).subarray(s * per, (s + 1) * per), cur.n * per);
          }
          cur.n++;
          if (cur.n === batchSize) yield flush();
        }
      }
    }
    if (cur) {
      if (fixedBatch) {
        const w = `dropped the last ${cur.n} samples: the model fixes its batch dimension at ${batchSize}`;
        if (!this.warnings.includes(w)) this.warnings.push(w);
        cur = undefined;
      } else yield flush();
    }
    for (const n of notes) if (!this.warnings.includes(n)) this.warnings.push(n);
    this.count ??= yielded + this.skipped;
    if (yielded === 0) {
      throw new InputError('E_DATA_EMPTY', this.skipped > 0 ? `all ${this.skipped} samples hold NaN or Inf values: expected at least one finite sample` : 'expected at least one sample, got 0', {
        file: this.label,
      });
    }
  }
}

function listDataDir(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot read data folder'), { file: dir, cause: err });
  }
  const picked = names.filter((n) => /\.(npy|npz)$/i.test(n) && !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const n of picked) {
    // A FIFO named x.npy would block open(2) forever; a device would never end.
    const st = fs.statSync(path.join(dir, n), { throwIfNoEntry: false });
    if (st && !st.isFile()) throw new InputError('E_READ', `is ${kindOf(st)}: expected a regular .npy/.npz file`, { file: path.join(dir, n) });
  }
  return picked;
}

function sniffKind(file: string): 'npy' | 'npz' | 'jsonl' | undefined {
  const lower = file.toLowerCase();
  if (lower.endsWith('.npy')) return 'npy';
  if (lower.endsWith('.npz')) return 'npz';
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(6);
    const n = fs.readSync(fd, b, 0, 6, 0);
    if (n >= 6 && b[0] === 0x93 && b.toString('latin1', 1, 6) === 'NUMPY') return 'npy';
    if (n >= 4 && b.readUInt32LE(0) === 0x04034b50) return 'npz';
    if (n >= 1 && b.toString('utf8', 0, n).trimStart().startsWith('{')) return 'jsonl';
  } finally {
    fs.closeSync(fd);
  }
  return undefined;
}

function describeSamples(layouts: readonly Layout[], count: number | undefined): string {
  const parts = layouts.map((l) => `${l.spec.name} ${formatDims(l.batched ? ['batch', ...l.sampleSpec] : l.sampleSpec)} ${l.spec.dtype}`);
  return `${count === undefined ? '' : `${count} `}sample${count === 1 ? '' : 's'} of ${parts.join(', ')}`;
}

/** Samples in one in-memory feed (from its dims only), for the count of an array of feeds. */
function feedCount(feed: FeedLike, layouts: readonly Layout[], i: number): number {
  const l = layouts[0];
  const t = feed?.[l.spec.name];
  if (!t || !Array.isArray(t.dims)) return 0; // reported when read
  return stackInfo(t.dims, l, feedLabel(i)).count;
}

/**
 * Open calibration data for a model: a path to .npy/.npz/.jsonl data or a folder of .npy/.npz files,
 * or the literal 'random'. Headers are read and checked now; values are read lazily by batches().
 */
export async function openDataset(source: string | FeedSource, model: Model, opts: OpenDatasetOptions = {}): Promise<Dataset> {
  const inputs = modelInputSpecs(model);
  if (inputs.length === 0) throw new ModelError('E_FEED_SHAPE', 'the model has no inputs to feed', { file: model.file });
  const layouts = inputs.map(layoutOf);
  const max = opts.maxSamples ?? Infinity;
  if (!(max >= 1)) throw new InputError('E_DATA_EMPTY', `maxSamples must be at least 1, got ${opts.maxSamples}`);
  const skip = opts.skipNonfinite ?? false;

  if (typeof source !== 'string') {
    if (!isFeedSource(source)) throw new InputError('E_DATA_FORMAT', `expected data as a path, "random", an array, an iterable or a function of feeds, got ${source === null ? 'null' : typeof source}`);
    const count = Array.isArray(source) ? Math.min(max, (source as readonly FeedLike[]).reduce((a, f, i) => a + feedCount(f, layouts, i), 0)) : undefined;
    const labels = opts.labels !== undefined ? await labelsFromSource(opts.labels) : undefined;
    const convert = (t: Tensor, l: Layout, where: string, untyped: boolean, notes: Set<string>) => (untyped && !hasNormalization(opts.preprocess) ? convertDtype(t, l.spec.dtype, { file: where, input: l.spec.name, untyped, notes }) : normalizeArray(t, l.spec.dtype, opts.preprocess, { file: where, input: l.spec.name, untyped, notes }));
    const stack = (dims: readonly number[], l: Layout, where: string) => stackInfo(dims, l, where);
    const what = Array.isArray(source) ? `${source.length} feeds in memory` : typeof source === 'function' ? 'feeds from a function' : 'feeds from an iterable';
    return new StreamDataset(inputs, count, `${what}: ${describeSamples(layouts, count)}`, [feedSource(source, layouts, convert, stack)], 'data', skip, [], { labels }, max);
  }

  if (source === 'random') {
    const count = Math.min(opts.randomSamples ?? (Number.isFinite(max) ? max : RANDOM_DEFAULT_SAMPLES), max);
    const desc = `random (seed ${opts.seed ?? 0}): ${describeSamples(layouts, count)}`;
    return new StreamDataset(inputs, count, desc, [randomSource(layouts, count, opts.seed ?? 0, opts.randomDims ?? {})], 'random', skip, [RANDOM_DATA_WARNING]);
  }

  if (source === '-') source = '/dev/stdin';
  let stat: fs.Stats;
  try {
    stat = fs.statSync(source);
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot read data'), { file: source, cause: err });
  }
  if (stat.isFIFO() || (stat.isSocket() && inheritedFd(source) !== undefined)) {
    // A pipe allows no positioned reads: copy it to a temp file first (see spool.ts).
    source = await spoolPipe(source, opts.pipe);
    stat = fs.statSync(source);
  } else if (!stat.isFile() && !stat.isDirectory()) {
    throw new InputError('E_READ', `is ${kindOf(stat)}: expected a data file, a folder or a pipe`, { file: source });
  }
  const finish = (count: number, sources: ChunkSource[], what: string, warnings: string[] = [], info: SampleInfo = {}): Dataset => {
    if (count === 0) throw new InputError('E_DATA_EMPTY', 'expected at least one sample, got 0', { file: source });
    const n = Math.min(count, max);
    return new StreamDataset(inputs, n, `${source} (${what}): ${describeSamples(layouts, n)}${n < count ? ` (first ${n} of ${count})` : ''}`, sources, source, skip, warnings, info);
  };

  const single = (what: string): Layout => {
    if (layouts.length !== 1) throw new InputError('E_DATA_MISSING', `${what} feed one input, the model has ${layouts.length} (${layouts.map((l) => l.spec.name).join(', ')})`, { file: source });
    return layouts[0];
  };
  const images = stat.isDirectory() && listDataDir(source).length === 0 ? listImageFolder(source) : undefined;
  const isImage = !stat.isDirectory() && isImageFile(path.basename(source));
  if (images || isImage) {
    const l = single('images');
    const plan = planImage(l.spec, opts.preprocess, source);
    const files = images ? images.files : [source];
    const keys = images ? images.keys : [path.basename(source)];
    const notes = plan.assumed.length ? [`images: assumed --preprocess ${formatPreprocess(plan.recipe)} (inferred: ${plan.assumed.join(', ')})`] : [];
    const convert = (t: Tensor, file: string) => (t.dtype === l.spec.dtype || l.spec.dtype === 'float32' || l.spec.dtype === 'uint8' ? t : convertDtype(makeTensor('float32', t.dims, t.data as Float32Array), l.spec.dtype, { file, input: l.spec.name }));
    const classes = images?.classes;
    const what = classes ? `${files.length} images in ${classes.length} class folders` : `${files.length} image${files.length === 1 ? '' : 's'}`;
    const labels = images?.labels ? makeTensor('int64', [images.labels.length], BigInt64Array.from(images.labels, (v) => BigInt(v))) : undefined;
    return finish(files.length, [imageSource(files, l.spec.name, plan, convert)], what, notes, { labels, sampleKeys: keys, classes });
  }
  const audio = stat.isDirectory() ? (listDataDir(source).length === 0 ? listAudio(source, true) : []) : isAudioFile(path.basename(source)) ? [source] : [];
  if (audio.length > 0) {
    const l = single('audio files');
    const plan = planAudio(audio, stat.isDirectory() ? source : path.dirname(source), l, opts);
    const count = plan.counts.reduce((a, b) => a + b, 0);
    const keys = plan.keys.flatMap((k, i) => Array.from({ length: plan.counts[i] }, () => k));
    const what = `${audio.length} WAV file${audio.length === 1 ? '' : 's'} at ${plan.rate} Hz, ${plan.window ? `windows of ${plan.window}, hop ${plan.hop}` : 'whole files'}`;
    return finish(count, [audioSource(plan, l.spec.name, l.spec.dtype, opts.preprocess)], what, [...plan.notes], { sampleKeys: keys });
  }

  if (stat.isDirectory()) {
    const names = listDataDir(source);
    if (names.length === 0) throw new InputError('E_DATA_EMPTY', 'folder holds no .npy/.npz, image (PNG/JPEG/WebP, or class sub-folders of them) or .wav files: expected at least one sample', { file: source });
    const sets: ArraySet[] = [];
    for (const name of names) {
      const file = path.join(source, name);
      const isNpy = name.toLowerCase().endsWith('.npy');
      sets.push(arraySet(file, isNpy ? [npyArray(file)] : npzArrays(file), layouts, isNpy));
    }
    const count = sets.reduce((s, x) => s + x.count, 0);
    return finish(
      count,
      sets.map((s) => arraySetSource(s, layouts, opts.preprocess)),
      `folder of ${names.length} files`,
    );
  }
  const kind = sniffKind(source);
  if (kind === 'npy' || kind === 'npz') {
    const set = arraySet(source, kind === 'npy' ? [npyArray(source)] : npzArrays(source), layouts, kind === 'npy');
    return finish(set.count, [arraySetSource(set, layouts, opts.preprocess)], kind);
  }
  if (kind === 'jsonl' && opts.tokenizer) {
    const plan = await planText(model, layouts, { tokenizer: opts.tokenizer, maxLength: opts.maxLength, padding: opts.padding }, source);
    const scan = await scanTextFile(source);
    return finish(scan.count, [textSource(source, layouts, plan)], `JSON Lines text, ${path.basename(opts.tokenizer)}, ${plan.padding === 'max-length' ? `padded to ${plan.maxLength}` : `up to ${plan.maxLength}`} tokens`, [...plan.notes], { labels: scan.labels });
  }
  if (kind === 'jsonl' && !layouts.some((l) => l.spec.name === 'text') && looksLikeText(source)) {
    throw new UsageError('E_FLAG', `${source}: records hold "text": pass --tokenizer tokenizer.json (the model's Hugging Face tokenizer) to tokenize them`);
  }
  if (kind === 'jsonl') return finish(await countJsonlRecords(source), [jsonlSource(source, layouts)], 'JSON Lines');
  throw new InputError('E_DATA_FORMAT', 'unknown data format: expected an .npy, .npz or .jsonl file, a folder of .npy/.npz files, or "random"', { file: source });
}

/**
 * The number of samples a dataset holds: known up front for files, counted with one pass for a stream
 * of feeds (which runs the caller's iterable once more; a one-shot iterator then cannot be read again).
 */
export async function countSamples(ds: Dataset): Promise<number> {
  if (ds.sampleCount !== undefined) return ds.sampleCount;
  let n = 0;
  for await (const f of ds.batches(64)) n += ds.samplesIn(f);
  return ds.sampleCount ?? n;
}
