import { InternalError } from '../errors.js';
import { DTYPES, type DType, type DTypeMap } from './dtypes.js';

export interface Tensor<T extends DType = DType> {
  readonly dtype: T;
  readonly dims: readonly number[];
  readonly data: DTypeMap[T];
}

/** Named input (or output) tensors of one model run. */
export type Feeds = Readonly<Record<string, Tensor>>;

/** Most dims a message or report prints before eliding the rest ("…, (5000 dims)"). */
export const MAX_PRINTED_DIMS = 16;

/**
 * Dims as "a, b, c" for messages: at most MAX_PRINTED_DIMS, then "…" and the rank, so a hostile
 * 5,000-deep shape cannot flood a terminal or a one-line error.
 */
export function formatShape(dims: readonly (number | string | bigint | null)[]): string {
  const show = (d: number | string | bigint | null) => (d === null ? '?' : String(d));
  if (dims.length <= MAX_PRINTED_DIMS) return dims.map(show).join(', ');
  return `${dims.slice(0, MAX_PRINTED_DIMS).map(show).join(', ')}, … (${dims.length} dims)`;
}

export function numElements(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function makeTensor<T extends DType>(dtype: T, dims: readonly number[], data?: DTypeMap[T]): Tensor<T> {
  const n = numElements(dims);
  const arr = data ?? (new DTYPES[dtype].ctor(n) as DTypeMap[T]);
  if (arr.length !== n) {
    throw new InternalError(`tensor data has ${arr.length} elements, dims [${dims.join(',')}] need ${n}`);
  }
  return { dtype, dims: [...dims], data: arr };
}

/** Copy any numeric tensor into float32 (float16/bfloat16 decoded, int64 converted). */
export function toFloat32(t: Tensor): Float32Array {
  const n = t.data.length;
  const out = new Float32Array(n);
  switch (t.dtype) {
    case 'float32':
      out.set(t.data as Float32Array);
      break;
    case 'float16': {
      const d = t.data as Uint16Array;
      for (let i = 0; i < n; i++) out[i] = float16ToFloat32(d[i]);
      break;
    }
    case 'bfloat16': {
      const d = t.data as Uint16Array;
      for (let i = 0; i < n; i++) out[i] = bfloat16ToFloat32(d[i]);
      break;
    }
    case 'int64':
    case 'uint64': {
      const d = t.data as BigInt64Array | BigUint64Array;
      for (let i = 0; i < n; i++) out[i] = Number(d[i]);
      break;
    }
    default: {
      const d = t.data as Exclude<DTypeMap[DType], BigInt64Array | BigUint64Array>;
      for (let i = 0; i < n; i++) out[i] = d[i];
    }
  }
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half → float32 (exact). */
export function float16ToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** float32 → IEEE half, round to nearest even, with overflow to ±Inf and subnormals. */
export function float32ToFloat16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

export function bfloat16ToFloat32(b: number): number {
  u32[0] = b << 16;
  return f32[0];
}

/** float32 → bfloat16, round to nearest even; NaN stays NaN. */
export function float32ToBfloat16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) return ((x >>> 16) | 0x40) & 0xffff;
  const rounding = 0x7fff + ((x >>> 16) & 1);
  return ((x + rounding) >>> 16) & 0xffff;
}
