/**
 * Converting data arrays to the dtype a model input declares.
 *
 * Rules (documented in the README):
 * - float → float is allowed; narrowing (float64 → float32, float32 → float16) rounds and adds a note.
 * - int/bool → int/bool is allowed when every value fits the target; otherwise E_DATA_DTYPE names the value.
 * - int/bool → float and float → int/bool are refused (E_DATA_DTYPE): uint8 images for a float input
 *   need a preprocessing recipe (scale/mean/std, see preprocess.ts) or converting first. JSON Lines numbers are untyped, so they may become integers
 *   when every value is integral and in range.
 */
import { InputError } from '../errors.js';
import { DTYPES, bfloat16ToFloat32, float16ToFloat32, float32ToFloat16, makeTensor, type DType, type Tensor } from '../tensor/index.js';

const FLOATS: ReadonlySet<DType> = new Set(['float32', 'float16', 'float64', 'bfloat16']);

export function isFloatDType(d: DType): boolean {
  return FLOATS.has(d);
}

export interface ConvertContext {
  /** File (or file:line) for messages. */
  file: string;
  input: string;
  /** Untyped numbers (JSON): float → integer allowed for integral values. */
  untyped?: boolean;
  /** Collected one-line notes (e.g. narrowing). */
  notes?: Set<string>;
}

function dtypeError(ctx: ConvertContext, msg: string): InputError {
  return new InputError('E_DATA_DTYPE', `input "${ctx.input}": ${msg}`, { file: ctx.file });
}

/** Convert `t` to `target` following the rules above; returns `t` itself when nothing changes. */
export function convertDtype(t: Tensor, target: DType, ctx: ConvertContext): Tensor {
  const src = t.dtype;
  if (src === target) return t;
  if (target === 'bfloat16' || target === 'int4' || target === 'uint4') throw dtypeError(ctx, `qtool cannot feed ${target} inputs`);
  const srcFloat = isFloatDType(src);
  const dstFloat = isFloatDType(target);
  if (srcFloat && dstFloat) {
    if (DTYPES[target].bits < DTYPES[src].bits && !ctx.untyped) ctx.notes?.add(`${ctx.file}: input "${ctx.input}": ${src} data rounded to ${target}`);
    return convertFloat(t, target);
  }
  if (srcFloat !== dstFloat && !(ctx.untyped && srcFloat)) {
    const hint = dstFloat ? ' (pass --preprocess scale=…,mean=…,std=… to convert and normalise it, e.g. scale=1/255 for 8-bit pixels, or convert it first)' : ` (convert it first, e.g. x.astype(np.${target === 'bool' ? 'bool_' : target}))`;
    throw dtypeError(ctx, `expected ${target} data, got ${src}${hint}`);
  }
  // Integer targets (or untyped floats → integers): value by value with an exactness check.
  const n = t.data.length;
  const out = new DTYPES[target].ctor(n);
  const info = DTYPES[target];
  const isBig = target === 'int64' || target === 'uint64';
  const lo = target === 'int64' ? -(2 ** 63) : target === 'uint64' ? 0 : info.min!;
  const hi = target === 'int64' ? 2 ** 63 - 1 : target === 'uint64' ? 2 ** 64 - 1 : info.max!;
  const srcData = t.data as ArrayLike<number | bigint>;
  for (let i = 0; i < n; i++) {
    const raw = srcData[i];
    if (typeof raw === 'bigint') {
      if (isBig) {
        if ((target === 'uint64' && raw < 0n) || (target === 'int64' && raw > 0x7fffffffffffffffn)) throw dtypeError(ctx, `value ${raw} does not fit ${target}`);
        (out as BigInt64Array)[i] = raw;
      } else {
        const v = Number(raw);
        if (v < lo || v > hi) throw dtypeError(ctx, `value ${raw} at element ${i} does not fit ${target} (range ${lo}..${hi})`);
        (out as Int32Array)[i] = v;
      }
      continue;
    }
    const v = src === 'float16' ? float16ToFloat32(raw) : raw;
    if (!Number.isInteger(v)) throw dtypeError(ctx, `expected ${target} values, got ${v} at element ${i}`);
    if (v < lo || v > hi) throw dtypeError(ctx, `value ${v} at element ${i} does not fit ${target} (range ${lo}..${hi})`);
    if (isBig) (out as BigInt64Array)[i] = BigInt(v);
    else (out as Int32Array)[i] = v;
  }
  return makeTensor(target, t.dims, out as never);
}

function convertFloat(t: Tensor, target: DType): Tensor {
  const n = t.data.length;
  const src = t.dtype;
  const read =
    src === 'float16'
      ? (i: number) => float16ToFloat32((t.data as Uint16Array)[i])
      : src === 'bfloat16'
        ? (i: number) => bfloat16ToFloat32((t.data as Uint16Array)[i])
        : (i: number) => (t.data as Float32Array)[i];
  if (target === 'float16') {
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = float32ToFloat16(read(i));
    return makeTensor('float16', t.dims, out);
  }
  if (src !== 'float16' && src !== 'bfloat16') {
    const out = target === 'float64' ? Float64Array.from(t.data as Float32Array) : Float32Array.from(t.data as Float64Array);
    return makeTensor(target, t.dims, out as never);
  }
  const out = new (target === 'float64' ? Float64Array : Float32Array)(n);
  for (let i = 0; i < n; i++) out[i] = read(i);
  return makeTensor(target, t.dims, out as never);
}

/** True when elements [start, end) of a float tensor's data are all finite (int tensors always are). */
export function isFiniteRange(dtype: DType, data: Tensor['data'], start: number, end: number): boolean {
  if (dtype === 'float16' || dtype === 'bfloat16') {
    const d = data as Uint16Array;
    const mask = dtype === 'float16' ? 0x7c00 : 0x7f80;
    for (let i = start; i < end; i++) if ((d[i] & mask) === mask) return false;
    return true;
  }
  if (dtype === 'float32' || dtype === 'float64') {
    const d = data as Float32Array;
    for (let i = start; i < end; i++) {
      const v = d[i];
      // v - v is NaN for ±Inf and NaN: one compare per element.
      if (v - v !== 0) return false;
    }
    return true;
  }
  return true;
}
