/**
 * Audio folders: WAV files, mixed down to mono, resampled to the model's sample rate, cut into
 * windows and scaled into one model input.
 *
 * The input's last sample axis is time; any other sample axes must be 1 (`[N, L]`, `[N, 1, L]`).
 * Window length: `window`, else the input's fixed length, else the whole file (one sample per file).
 * Hop: `hop`, else the window (no overlap). Windows that would run past the end are dropped; a file
 * shorter than one window gives one zero-padded window. Samples are in [-1, 1]; `scale` (32768 for
 * int16-scale models), `mean` and `std` apply after. int16 inputs get PCM16 values.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { describeFsError } from '../files.js';
import { makeTensor, type DType, type Tensor } from '../tensor/index.js';
import type { Chunk, ChunkSource, Layout } from './dataset.js';
import { convertDtype, isFloatDType } from './convert.js';
import { affineOf, type Preprocess } from './preprocess.js';
import { resample } from './resample.js';
import { formatDims } from './specs.js';
import { readWav, readWavHeader, type WavHeader } from './wav.js';

export interface AudioOptions {
  /** Rate the model expects (Hz); files at other rates are resampled. Default: the files' own rate (all must agree). */
  sampleRate?: number;
  /** Samples per window (default: the input's fixed length, or the whole file). */
  window?: number;
  /** Samples between window starts (default: the window). */
  hop?: number;
  preprocess?: Preprocess;
}

export function isAudioFile(name: string): boolean {
  return !name.startsWith('.') && /\.wave?$/i.test(name);
}

/** WAV files of a folder, sorted by name (or the one file given). */
export function listAudio(source: string, isDir: boolean): string[] {
  if (!isDir) return [source];
  let names: string[];
  try {
    names = fs.readdirSync(source);
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot read data folder'), { file: source, cause: err });
  }
  return names
    .filter(isAudioFile)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => path.join(source, n));
}

export interface AudioPlan {
  readonly files: readonly string[];
  readonly keys: readonly string[];
  readonly rate: number;
  /** Window length, or undefined for whole files. */
  readonly window?: number;
  readonly hop?: number;
  /** Windows per file. */
  readonly counts: readonly number[];
  /** Sample dims of one window (time on the last axis). */
  readonly sampleDims: (w: number) => number[];
  readonly notes: readonly string[];
}

function windowsIn(frames: number, window: number | undefined, hop: number | undefined): number {
  if (window === undefined) return 1;
  if (frames <= window) return 1;
  return Math.floor((frames - window) / hop!) + 1;
}

/** Check the input and the files' headers; decide rate, window and the sample count. */
export function planAudio(files: readonly string[], root: string, layout: Layout, opts: AudioOptions): AudioPlan {
  const spec = layout.spec;
  const sample = layout.sampleSpec;
  if (spec.unknownRank || sample.length === 0) throw new InputError('E_DATA_SHAPE', `input "${spec.name}" ${spec.unknownRank ? 'has no declared shape' : `has shape ${formatDims(spec.dims)}`}: audio feeds an input with a time axis ([N, L] or [N, 1, L])`, { file: root });
  for (let i = 0; i < sample.length - 1; i++) {
    const d = sample[i];
    if (typeof d === 'number' && d !== 1) throw new InputError('E_DATA_SHAPE', `input "${spec.name}" ${formatDims(spec.dims)}: audio is mono with time on the last axis, so other axes must be 1; axis ${i + (layout.batched ? 1 : 0)} is ${d}`, { file: root });
  }
  if (!isFloatDType(spec.dtype) && spec.dtype !== 'int16') throw new InputError('E_DATA_DTYPE', `input "${spec.name}" is ${spec.dtype}: audio feeds float or int16 inputs`, { file: root });
  const fixed = sample[sample.length - 1];
  const notes: string[] = [];
  for (const [k, v] of [['window', opts.window], ['hop', opts.hop], ['sampleRate', opts.sampleRate]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new UsageError('E_FLAG', `--${k === 'sampleRate' ? 'sample-rate' : k}: expected a positive integer, got ${v}`);
  }
  let window = opts.window ?? (typeof fixed === 'number' ? fixed : undefined);
  if (typeof fixed === 'number' && window !== fixed) throw new UsageError('E_FLAG', `--window ${window}: input "${spec.name}" ${formatDims(spec.dims)} fixes ${fixed} samples per window`);
  if (opts.hop !== undefined && window === undefined) throw new UsageError('E_FLAG', '--hop needs a window: pass --window (the input has no fixed length)');
  const hop = window === undefined ? undefined : (opts.hop ?? window);
  const headers: WavHeader[] = files.map((f) => readWavHeader(f));
  let rate = opts.sampleRate;
  if (rate === undefined) {
    rate = headers[0].sampleRate;
    const other = headers.findIndex((h) => h.sampleRate !== rate);
    if (other >= 0) throw new InputError('E_DATA_FORMAT', `sample rate ${headers[other].sampleRate} Hz, ${files[0]} has ${rate} Hz: pass --sample-rate to resample every file to the model's rate`, { file: files[other] });
    notes.push(`audio: no --sample-rate given, using the files' ${rate} Hz (pass --sample-rate to resample to the rate the model was trained at)`);
  }
  const counts = headers.map((h) => windowsIn(Math.ceil((h.frames * rate!) / h.sampleRate), window, hop));
  const resampled = headers.filter((h) => h.sampleRate !== rate).length;
  if (resampled) notes.push(`audio: resampled ${resampled} of ${files.length} files to ${rate} Hz (windowed-sinc, Kaiser β 8.6)`);
  const keys = files.map((f) => path.relative(root, f) || path.basename(f));
  return {
    files,
    keys,
    rate,
    window,
    hop,
    counts,
    sampleDims: (w) => [...sample.slice(0, -1).map(() => 1), w],
    notes,
  };
}

/** Float samples in [-1, 1] → the input's dtype, scaled/normalized by the recipe. */
function toInput(x: Float32Array, dims: number[], dtype: DType, p: Preprocess | undefined, file: string): Tensor {
  if (dtype === 'int16') {
    if (p && (p.mean || p.std)) throw new InputError('E_DATA_DTYPE', 'mean/std apply to float inputs only (the input is int16)', { file });
    const s = p?.scale ?? 32768;
    const out = new Int16Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(x[i] * s)));
    return makeTensor('int16', dims, out);
  }
  let y = x;
  if (p && (p.scale !== undefined || p.mean || p.std)) {
    const { a, b } = affineOf(p, 1, file);
    y = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) y[i] = x[i] * a[0] + b[0];
  }
  const t = makeTensor('float32', dims, y);
  return dtype === 'float32' ? t : convertDtype(t, dtype, { file, input: '' });
}

/** Windows of each file in order, one chunk per file (a stack of its windows). */
export function audioSource(plan: AudioPlan, input: string, dtype: DType, p: Preprocess | undefined): ChunkSource {
  return async function* (_chunkSize, budget) {
    let first = 0;
    for (let f = 0; f < plan.files.length && budget.left > 0; f++) {
      const file = plan.files[f];
      const wav = readWav(file);
      const x = resample(wav.samples, wav.sampleRate, plan.rate);
      const w = plan.window ?? x.length;
      if (w === 0) throw new InputError('E_DATA_EMPTY', 'no audio samples: expected at least one', { file });
      const k = Math.min(plan.counts[f], budget.left);
      const buf = new Float32Array(k * w);
      for (let i = 0; i < k; i++) {
        const start = i * (plan.hop ?? w);
        buf.set(x.subarray(start, Math.min(start + w, x.length)), i * w);
      }
      const dims = [k, ...plan.sampleDims(w)];
      budget.left -= k;
      const chunk: Chunk = { label: file, first, count: k, arrays: new Map([[input, toInput(buf, dims, dtype, p, file)]]) };
      first += k;
      yield chunk;
    }
  };
}
