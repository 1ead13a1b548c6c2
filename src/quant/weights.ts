import { affineParams, quantRange, quantizeValue, type QuantRange, type QuantType } from './affine.js';

/**
 * Weight quantization over a tensor viewed as [outer, channels, inner] around `axis`
 * (per-channel) or as blocks of `blockSize` consecutive elements along `axis` (block-wise).
 * All loops are over typed arrays.
 */
export interface WeightQuantSpec {
  bits: 4 | 8 | 16;
  /** Symmetric signed (zero point 0) or asymmetric unsigned with zero points. */
  symmetric: boolean;
  /** 'channel': one scale per index of `axis`; 'block': blocks of `blockSize` along `axis`; 'tensor': one scale. */
  granularity: 'tensor' | 'channel' | 'block';
  axis: number;
  blockSize?: number;
  /** Per-group clip ratio in (0, 1] applied to the range (from a clip search); default 1. */
  clip?: Float32Array;
}

export interface QuantizedWeight {
  /** Quantized integers, same layout as the float weight. */
  q: Int32Array;
  /** Scales, shaped as `scaleDims`. */
  scales: Float32Array;
  zeroPoints: Int32Array;
  /** Shape of scales/zero points: [] (tensor), [C] (channel) or the weight dims with ceil(D/B) on `axis` (block). */
  scaleDims: number[];
  type: QuantType;
  range: QuantRange;
}

export function weightQuantType(bits: 4 | 8 | 16, symmetric: boolean): QuantType {
  if (bits === 4) return symmetric ? 'int4' : 'uint4';
  if (bits === 16) return symmetric ? 'int16' : 'uint16';
  return symmetric ? 'int8' : 'uint8';
}

/** Group index of each element: tensor → 0, channel → index on axis, block → (outer, block, inner) index. */
export function groupLayout(dims: readonly number[], spec: Pick<WeightQuantSpec, 'granularity' | 'axis' | 'blockSize'>): { groups: number; groupOf: (i: number) => number; scaleDims: number[] } {
  const axis = spec.axis < 0 ? spec.axis + dims.length : spec.axis;
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const dim = dims[axis] ?? 1;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  if (spec.granularity === 'tensor') return { groups: 1, groupOf: () => 0, scaleDims: [] };
  if (spec.granularity === 'channel') {
    return { groups: dim, groupOf: (i) => Math.floor(i / inner) % dim, scaleDims: [dim] };
  }
  const b = spec.blockSize ?? 32;
  const nb = Math.ceil(dim / b);
  const scaleDims = [...dims];
  scaleDims[axis] = nb;
  return {
    groups: outer * nb * inner,
    groupOf: (i) => {
      const o = Math.floor(i / (dim * inner));
      const d = Math.floor(i / inner) % dim;
      const r = i % inner;
      return (o * nb + Math.floor(d / b)) * inner + r;
    },
    scaleDims,
  };
}

/** Quantize a float weight (round to nearest even) with the given granularity. */
export function quantizeWeight(w: Float32Array, dims: readonly number[], spec: WeightQuantSpec): QuantizedWeight {
  const type = weightQuantType(spec.bits, spec.symmetric);
  const range = quantRange(type, spec.symmetric && spec.bits !== 4 ? true : false);
  const { groups, groupOf, scaleDims } = groupLayout(dims, spec);
  const gmin = new Float32Array(groups).fill(Infinity);
  const gmax = new Float32Array(groups).fill(-Infinity);
  const gid = new Int32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const g = groupOf(i);
    gid[i] = g;
    const v = w[i];
    if (v < gmin[g]) gmin[g] = v;
    if (v > gmax[g]) gmax[g] = v;
  }
  const scales = new Float32Array(groups);
  const zeroPoints = new Int32Array(groups);
  for (let g = 0; g < groups; g++) {
    const c = spec.clip ? spec.clip[g] : 1;
    const lo = Number.isFinite(gmin[g]) ? gmin[g] * c : 0;
    const hi = Number.isFinite(gmax[g]) ? gmax[g] * c : 0;
    // 4-bit symmetric: onnxruntime's signed-scale rule (the extreme value maps exactly to -8).
    const p = spec.bits === 4 && spec.symmetric ? int4SymmetricParams(lo, hi) : affineParams(lo, hi, range, spec.symmetric);
    scales[g] = p.scale;
    zeroPoints[g] = p.zeroPoint;
  }
  const q = new Int32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const g = gid[i];
    q[i] = quantizeValue(w[i], scales[g], zeroPoints[g], range);
  }
  return { q, scales, zeroPoints, scaleDims, type, range };
}

/**
 * onnxruntime's symmetric 4-bit rule (matmul_4bits_quantizer.py `quant_slice_symmetric`): absMax is
 * the min or the max, whichever has the larger magnitude, with its sign (the min on a tie);
 * scale = absMax / -8, q = round(x / scale) clipped to [-8, 7], zero point 0. The extreme value maps
 * exactly to -8 instead of being clipped to 7/8 of itself, and the scale is negative whenever that
 * extreme is positive (MatMulNBits and DequantizeLinear take negative scales). A zero group gets scale 1.
 */
export function int4SymmetricParams(lo: number, hi: number): { scale: number; zeroPoint: number } {
  const absMax = Math.abs(hi) > Math.abs(lo) ? hi : lo;
  const scale = Math.fround(absMax / -8);
  return scale !== 0 && Number.isFinite(scale) ? { scale, zeroPoint: 0 } : { scale: 1, zeroPoint: 0 };
}

/** Dequantize back to float32 (x̂ = (q − z)·s per group). */
export function dequantizeWeight(qw: QuantizedWeight, dims: readonly number[], spec: Pick<WeightQuantSpec, 'granularity' | 'axis' | 'blockSize'>): Float32Array {
  const { groupOf } = groupLayout(dims, spec);
  const out = new Float32Array(qw.q.length);
  for (let i = 0; i < out.length; i++) {
    const g = groupOf(i);
    out[i] = Math.fround((qw.q[i] - qw.zeroPoints[g]) * qw.scales[g]);
  }
  return out;
}

/** Quantize then dequantize: the weight the quantized model effectively uses. */
export function fakeQuantizeWeight(w: Float32Array, dims: readonly number[], spec: WeightQuantSpec): Float32Array {
  return dequantizeWeight(quantizeWeight(w, dims, spec), dims, spec);
}

/** ‖Q(W) − W‖² */
export function quantErrorSq(w: Float32Array, wq: Float32Array): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) {
    const d = wq[i] - w[i];
    s += d * d;
  }
  return s;
}
