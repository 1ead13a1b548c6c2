/**
 * Preprocessing recipes: how raw samples (images, audio, integer arrays) become the float tensors a
 * model input expects.
 *
 * Written as `--preprocess "resize=224x224,fit=cover,layout=nchw,channels=rgb,scale=1/255,mean=0.485,0.456,0.406,std=0.229,0.224,0.225"`
 * or as the same fields in a JSON/YAML object. Values are applied in one pass per element:
 * `y = (x * scale - mean[c]) / std[c]` with `c` the channel of the element.
 */
import * as fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { InputError, UsageError } from '../errors.js';
import { describeFsError } from '../files.js';
import { makeTensor, type DType, type Tensor } from '../tensor/index.js';
import { convertDtype, isFloatDType, type ConvertContext } from './convert.js';
import { formatDims, hasBatchAxis, type InputSpec } from './specs.js';

export const IMAGE_FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const;
export type ImageFit = (typeof IMAGE_FITS)[number];
export const IMAGE_LAYOUTS = ['nchw', 'nhwc'] as const;
export type ImageLayout = (typeof IMAGE_LAYOUTS)[number];
export const IMAGE_CHANNELS = ['rgb', 'bgr', 'gray'] as const;
export type ImageChannels = (typeof IMAGE_CHANNELS)[number];

/** A preprocessing recipe; every field optional (unset image fields are inferred from the model input). */
export interface Preprocess {
  /** Output width × height in pixels. */
  resize?: { width: number; height: number };
  fit?: ImageFit;
  layout?: ImageLayout;
  channels?: ImageChannels;
  /** Multiplier applied first (1/255 maps 8-bit pixels to [0, 1]; 32768 maps [-1, 1] audio to int16 scale). */
  scale?: number;
  /** Subtracted after scaling: one value, or one per channel. */
  mean?: number[];
  /** Divisor after the mean: one value, or one per channel. */
  std?: number[];
}

const KEYS = ['resize', 'fit', 'layout', 'channels', 'scale', 'mean', 'std'] as const;

function bad(source: string, msg: string): UsageError {
  return new UsageError('E_FLAG', `--preprocess: ${msg}${source ? ` (in "${source}")` : ''}`);
}

/** `1/255`, `0.5`, `32768`: a finite number or a fraction. */
function parseNumber(text: string, key: string, source: string): number {
  const t = text.trim();
  const m = /^([^/]+)\/([^/]+)$/.exec(t);
  const v = m ? Number(m[1]) / Number(m[2]) : Number(t);
  if (t === '' || !Number.isFinite(v)) throw bad(source, `${key}: expected a number or a fraction like 1/255, got "${text}"`);
  return v;
}

function numbers(v: unknown, key: string, source: string): number[] {
  const list = Array.isArray(v) ? v : typeof v === 'number' ? [v] : String(v).split(',');
  if (list.length === 0) throw bad(source, `${key}: expected one value or one per channel, got none`);
  return list.map((x) => (typeof x === 'number' && Number.isFinite(x) ? x : parseNumber(String(x), key, source)));
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], key: string, source: string): T {
  const s = String(v).toLowerCase();
  if (!(allowed as readonly string[]).includes(s)) throw bad(source, `${key}: expected one of ${allowed.join(', ')}, got "${v}"`);
  return s as T;
}

/** Check and normalize a recipe given as an object (from JSON/YAML or the parsed flag). */
export function normalizePreprocess(raw: Readonly<Record<string, unknown>>, source = ''): Preprocess {
  const out: Preprocess = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    switch (k) {
      case 'resize': {
        const dims = typeof v === 'object' && v !== null && !Array.isArray(v) ? [(v as { width?: unknown }).width, (v as { height?: unknown }).height] : Array.isArray(v) ? v : String(v).split(/[x×]/i);
        const [w, h] = dims.map((d) => Number(d));
        if (dims.length !== 2 || !Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) throw bad(source, `resize: expected WIDTHxHEIGHT like 224x224, got "${Array.isArray(v) ? v.join('x') : String(v)}"`);
        out.resize = { width: w, height: h };
        break;
      }
      case 'fit':
        out.fit = oneOf(v, IMAGE_FITS, k, source);
        break;
      case 'layout':
        out.layout = oneOf(v, IMAGE_LAYOUTS, k, source);
        break;
      case 'channels':
        out.channels = oneOf(v === 'grey' || v === 'l' || v === 'L' ? 'gray' : v, IMAGE_CHANNELS, k, source);
        break;
      case 'scale':
        out.scale = typeof v === 'number' ? v : parseNumber(String(v), k, source);
        if (!Number.isFinite(out.scale) || out.scale === 0) throw bad(source, `scale: expected a finite non-zero number, got ${v}`);
        break;
      case 'mean':
        out.mean = numbers(v, k, source);
        break;
      case 'std':
        out.std = numbers(v, k, source);
        if (out.std.some((s) => s === 0)) throw bad(source, 'std: expected non-zero values, got 0');
        break;
      default:
        throw bad(source, `unknown field "${k}": expected ${KEYS.join(', ')}`);
    }
  }
  if (out.mean && out.std && out.mean.length !== out.std.length && out.mean.length !== 1 && out.std.length !== 1) {
    throw bad(source, `mean has ${out.mean.length} values and std ${out.std.length}: expected the same count (one per channel) or one`);
  }
  return out;
}

/**
 * Parse `key=value,key=value`; list values (mean, std) continue over commas until the next `key=`:
 * `scale=1/255,mean=0.485,0.456,0.406,std=0.229,0.224,0.225`.
 */
export function parsePreprocess(text: string): Preprocess {
  const raw: Record<string, string> = {};
  let key: string | undefined;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq >= 0) {
      key = part.slice(0, eq).trim().toLowerCase();
      if (!key) throw bad(text, `expected key=value, got "${part}"`);
      if (key in raw) throw bad(text, `"${key}" is given twice`);
      raw[key] = part.slice(eq + 1).trim();
    } else if (key && (key === 'mean' || key === 'std')) raw[key] += `,${part.trim()}`;
    else if (part.trim()) throw bad(text, `expected key=value, got "${part}"`);
  }
  return normalizePreprocess(raw, text);
}

/**
 * `--preprocess` as given: a recipe file (.json, .yaml, .yml: an object with the recipe's fields, or
 * with them under a `preprocess` key) or the inline `key=value,…` text.
 */
export function loadPreprocess(arg: string): Preprocess {
  if (!/\.(json|ya?ml)$/i.test(arg)) return parsePreprocess(arg);
  let text: string;
  try {
    text = fs.readFileSync(arg, 'utf8');
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot read preprocessing recipe'), { file: arg, cause: err });
  }
  let doc: unknown;
  try {
    doc = /\.json$/i.test(arg) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new InputError('E_DOCUMENT_INVALID', `not valid ${/\.json$/i.test(arg) ? 'JSON' : 'YAML'} (${(err as Error).message.split('\n')[0]})`, { file: arg, cause: err });
  }
  if (doc && typeof doc === 'object' && !Array.isArray(doc) && 'preprocess' in doc) doc = (doc as { preprocess: unknown }).preprocess;
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new InputError('E_DOCUMENT_INVALID', 'expected an object of preprocessing fields (resize, fit, layout, channels, scale, mean, std)', { file: arg });
  try {
    return normalizePreprocess(doc as Record<string, unknown>);
  } catch (err) {
    if (err instanceof UsageError) throw new InputError('E_DOCUMENT_INVALID', err.message.replace(/^--preprocess: /, ''), { file: arg });
    throw err;
  }
}

/** One line: the recipe as `--preprocess` text (what was used or assumed). */
export function formatPreprocess(p: Preprocess): string {
  const parts: string[] = [];
  if (p.resize) parts.push(`resize=${p.resize.width}x${p.resize.height}`);
  if (p.fit) parts.push(`fit=${p.fit}`);
  if (p.layout) parts.push(`layout=${p.layout}`);
  if (p.channels) parts.push(`channels=${p.channels}`);
  if (p.scale !== undefined) parts.push(`scale=${Math.abs(1 / p.scale - Math.round(1 / p.scale)) < 1e-9 && Math.abs(p.scale) < 1 ? `1/${Math.round(1 / p.scale)}` : p.scale}`);
  if (p.mean) parts.push(`mean=${p.mean.join(',')}`);
  if (p.std) parts.push(`std=${p.std.join(',')}`);
  return parts.join(',');
}

export function hasNormalization(p: Preprocess | undefined): boolean {
  return !!p && (p.scale !== undefined || p.mean !== undefined || p.std !== undefined);
}

/**
 * Per-channel affine map `y = x * a[c] + b[c]` equivalent to `(x * scale - mean[c]) / std[c]`, for
 * `channels` channels. A list of one value applies to every channel.
 */
export function affineOf(p: Preprocess, channels: number, where: string): { a: Float64Array; b: Float64Array } {
  const pick = (list: number[] | undefined, dflt: number, name: string) => {
    if (!list) return new Float64Array(channels).fill(dflt);
    if (list.length === 1) return new Float64Array(channels).fill(list[0]);
    if (list.length !== channels) throw new InputError('E_DATA_SHAPE', `${name} has ${list.length} values: expected 1 or ${channels} (one per channel)`, { file: where });
    return Float64Array.from(list);
  };
  const mean = pick(p.mean, 0, 'mean');
  const std = pick(p.std, 1, 'std');
  const scale = p.scale ?? 1;
  const a = new Float64Array(channels);
  const b = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    a[c] = scale / std[c];
    b[c] = -mean[c] / std[c];
  }
  return { a, b };
}

/**
 * The channel axis of a stacked array `[count, ...sample]` for per-channel mean/std: the layout's axis
 * when given (nchw → 1, nhwc → last); otherwise the first sample axis whose size matches the list,
 * then the last. Undefined when every list has one value.
 */
function channelAxis(dims: readonly number[], p: Preprocess, file: string): number | undefined {
  const n = Math.max(p.mean?.length ?? 1, p.std?.length ?? 1);
  if (n === 1) return undefined;
  if (dims.length < 2) throw new InputError('E_DATA_SHAPE', `mean/std list ${n} channels but samples are scalars`, { file });
  const cand = p.layout === 'nchw' ? [1] : p.layout === 'nhwc' ? [dims.length - 1] : [1, dims.length - 1];
  for (const ax of cand) if (dims[ax] === n) return ax;
  throw new InputError('E_DATA_SHAPE', `mean/std list ${n} channels: expected a ${p.layout ? `${p.layout} ` : ''}channel axis of size ${n} in samples ${formatDims(dims.slice(1))}`, { file });
}

/**
 * Convert a stacked array `[count, ...sample]` to `target`, applying scale/mean/std when the recipe has
 * them (integer stacks such as uint8 images or int16 audio then feed float inputs). Without
 * normalization this is convertDtype.
 */
export function normalizeArray(t: Tensor, target: DType, p: Preprocess | undefined, ctx: ConvertContext): Tensor {
  if (!hasNormalization(p) || !isFloatDType(target)) return convertDtype(t, target, ctx);
  const axis = channelAxis(t.dims, p!, ctx.file);
  const channels = axis === undefined ? 1 : t.dims[axis];
  const { a, b } = affineOf(p!, channels, ctx.file);
  let inner = 1;
  if (axis !== undefined) for (let i = axis + 1; i < t.dims.length; i++) inner *= t.dims[i];
  const src = isFloatDType(t.dtype) ? (convertDtype(t, 'float32', { ...ctx, notes: undefined }).data as Float32Array) : (t.data as ArrayLike<number | bigint>);
  const n = src.length;
  const out = new Float32Array(n);
  if (typeof src[0] === 'bigint') {
    for (let i = 0; i < n; i++) {
      const c = axis === undefined ? 0 : Math.floor(i / inner) % channels;
      out[i] = Number(src[i]) * a[c] + b[c];
    }
  } else {
    const s = src as ArrayLike<number>;
    if (channels === 1) {
      const a0 = a[0];
      const b0 = b[0];
      for (let i = 0; i < n; i++) out[i] = s[i] * a0 + b0;
    } else {
      for (let i = 0; i < n; i++) {
        const c = Math.floor(i / inner) % channels;
        out[i] = s[i] * a[c] + b[c];
      }
    }
  }
  const f = makeTensor('float32', t.dims, out);
  return target === 'float32' ? f : convertDtype(f, target, ctx);
}

/** Image preprocessing with every field decided: the recipe given, completed from the model input. */
export interface ImagePlan {
  readonly recipe: Preprocess & { layout: ImageLayout; channels: ImageChannels; fit: ImageFit };
  /** Channels written per pixel (3 for rgb/bgr, 1 for gray). */
  readonly channelCount: number;
  /** Fields that were inferred, not given (printed so the user can check them). */
  readonly assumed: readonly string[];
  readonly dtype: DType;
}

/**
 * Complete an image recipe from the model input: rank 4 (with a batch axis) or 3; the channel axis is
 * the one of size 1 or 3 (axis 1 → nchw, last → nhwc); a fixed H×W becomes the resize; float inputs get
 * scale=1/255 when no scale/mean/std is given (mean/std cannot be inferred and are left unset).
 */
export function planImage(spec: InputSpec, given: Preprocess | undefined, file: string): ImagePlan {
  const p: Preprocess = { ...given };
  const assumed: string[] = [];
  const batched = hasBatchAxis(spec);
  const sample = batched ? spec.dims.slice(1) : spec.dims;
  if (spec.unknownRank || sample.length !== 3) {
    throw new InputError('E_DATA_SHAPE', `input "${spec.name}" ${spec.unknownRank ? 'has no declared shape' : `has shape ${formatDims(spec.dims)}`}: images feed an input of shape [N, C, H, W] or [N, H, W, C]`, { file });
  }
  const isC = (d: number | string | null) => d === 1 || d === 3;
  let layout = p.layout;
  if (!layout) {
    layout = isC(sample[0]) && !isC(sample[2]) ? 'nchw' : isC(sample[2]) && !isC(sample[0]) ? 'nhwc' : isC(sample[0]) ? 'nchw' : 'nchw';
    assumed.push(`layout=${layout}`);
  }
  const cDim = layout === 'nchw' ? sample[0] : sample[2];
  const [hDim, wDim] = layout === 'nchw' ? [sample[1], sample[2]] : [sample[0], sample[1]];
  if (typeof cDim === 'number' && cDim !== 1 && cDim !== 3) {
    throw new InputError('E_DATA_SHAPE', `input "${spec.name}" ${formatDims(spec.dims)}: expected 1 or 3 channels on the ${layout} channel axis, got ${cDim}`, { file });
  }
  let channels = p.channels;
  if (!channels) {
    channels = cDim === 1 ? 'gray' : 'rgb';
    assumed.push(`channels=${channels}`);
  }
  const channelCount = channels === 'gray' ? 1 : 3;
  if (typeof cDim === 'number' && cDim !== channelCount) throw new InputError('E_DATA_SHAPE', `input "${spec.name}" ${formatDims(spec.dims)} has ${cDim} channels: channels=${channels} gives ${channelCount}`, { file });
  if (!p.resize && typeof hDim === 'number' && typeof wDim === 'number') {
    p.resize = { width: wDim, height: hDim };
    assumed.push(`resize=${wDim}x${hDim}`);
  } else if (p.resize && ((typeof hDim === 'number' && hDim !== p.resize.height) || (typeof wDim === 'number' && wDim !== p.resize.width))) {
    throw new InputError('E_DATA_SHAPE', `input "${spec.name}" ${formatDims(spec.dims)} fixes H×W: resize=${p.resize.width}x${p.resize.height} does not match`, { file });
  }
  let fit = p.fit;
  if (!fit) {
    fit = 'cover';
    if (p.resize) assumed.push('fit=cover');
  }
  if (isFloatDType(spec.dtype)) {
    if (!hasNormalization(p)) {
      p.scale = 1 / 255;
      assumed.push('scale=1/255 (no mean/std: pass mean=…,std=… if the model was trained normalized)');
    }
  } else if (hasNormalization(p)) {
    throw new InputError('E_DATA_DTYPE', `input "${spec.name}" is ${spec.dtype}: scale/mean/std apply to float inputs only`, { file });
  } else if (spec.dtype !== 'uint8') {
    throw new InputError('E_DATA_DTYPE', `input "${spec.name}" is ${spec.dtype}: images feed float or uint8 inputs`, { file });
  }
  return { recipe: { ...p, layout, channels, fit }, channelCount, assumed, dtype: spec.dtype };
}
