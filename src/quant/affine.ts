/**
 * Affine quantization arithmetic shared by every stage: q = clamp(roundHalfEven(x / s) + z, qmin, qmax),
 * x̂ = (q − z) · s. Rules follow onnxruntime's quantizer (onnx-facts.md §2.4).
 */

/** Round half to even, as onnxruntime's QuantizeLinear and numpy do (Math.round rounds halves up). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round(x) = floor(x + 0.5); at an exact .5 tie choose the even neighbour.
  if (r - x === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

export interface QuantRange {
  readonly qmin: number;
  readonly qmax: number;
}

export type QuantType = 'int8' | 'uint8' | 'int4' | 'uint4' | 'int16' | 'uint16';

/** Integer range of a quantized type; `symmetric` uses the restricted signed range ([-127,127] for int8). */
export function quantRange(type: QuantType, symmetric = false): QuantRange {
  switch (type) {
    case 'int8':
      return symmetric ? { qmin: -127, qmax: 127 } : { qmin: -128, qmax: 127 };
    case 'uint8':
      return symmetric ? { qmin: 0, qmax: 254 } : { qmin: 0, qmax: 255 };
    case 'int4':
      return symmetric ? { qmin: -7, qmax: 7 } : { qmin: -8, qmax: 7 };
    case 'uint4':
      return { qmin: 0, qmax: 15 };
    case 'int16':
      return symmetric ? { qmin: -32767, qmax: 32767 } : { qmin: -32768, qmax: 32767 };
    case 'uint16':
      return { qmin: 0, qmax: 65535 };
  }
}

export interface AffineParams {
  scale: number;
  zeroPoint: number;
}

/** Smallest positive normal float32: below this a scale is treated as zero range. */
export const FLOAT32_TINY = 1.1754943508222875e-38;

/**
 * Scale and zero point for a real range: the range is widened to include 0; symmetric uses
 * ±max|x| with the middle zero point; a zero (or non-finite) range gives scale 1, zp at 0.
 */
export function affineParams(rmin: number, rmax: number, range: QuantRange, symmetric: boolean): AffineParams {
  if (!Number.isFinite(rmin) || !Number.isFinite(rmax)) {
    throw new RangeError(`non-finite range [${rmin}, ${rmax}]`);
  }
  let lo = Math.min(rmin, 0);
  let hi = Math.max(rmax, 0);
  const { qmin, qmax } = range;
  if (symmetric) {
    const absmax = Math.max(Math.abs(lo), Math.abs(hi));
    lo = -absmax;
    hi = absmax;
  }
  const scale = Math.fround((hi - lo) / (qmax - qmin));
  if (!(scale >= FLOAT32_TINY)) return { scale: 1, zeroPoint: Math.max(qmin, Math.min(qmax, 0)) };
  let zeroPoint = symmetric ? roundHalfEven((qmin + qmax) / 2) : roundHalfEven(qmin - lo / scale);
  zeroPoint = Math.max(qmin, Math.min(qmax, zeroPoint));
  return { scale, zeroPoint };
}

/** Quantize one value (float32 arithmetic as onnxruntime does it). */
export function quantizeValue(x: number, scale: number, zeroPoint: number, range: QuantRange): number {
  const q = roundHalfEven(Math.fround(x / scale)) + zeroPoint;
  return q < range.qmin ? range.qmin : q > range.qmax ? range.qmax : q;
}

export function dequantizeValue(q: number, scale: number, zeroPoint: number): number {
  return Math.fround((q - zeroPoint) * scale);
}
