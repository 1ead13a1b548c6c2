import type { WeightQuantSpec } from './weights.js';

/** Axes of a layer weight: the output-channel axis (per-channel scales) and the reduction axis (INT4 blocks). */
export interface WeightAxes {
  channelAxis: number;
  reductionAxis: number;
  /** Conv / ConvTranspose weight (4-bit layout: see int4ConvGranularity). */
  isConv?: boolean;
}

/**
 * Weight axes by op type. Conv [O, I/g, kh, kw]: channel 0, reduction 1; ConvTranspose [I, O/g, kh, kw]:
 * channel 1, reduction 0; MatMul [..., K, N]: channel last, reduction second to last; Gemm: [N, K] with
 * transB = 1, else [K, N].
 */
export function weightAxes(opType: string, rank: number, transB = 0): WeightAxes {
  switch (opType) {
    case 'Conv':
      return { channelAxis: 0, reductionAxis: 1, isConv: true };
    case 'ConvTranspose':
      return { channelAxis: 1, reductionAxis: 0, isConv: true };
    case 'Gemm':
      return transB ? { channelAxis: 0, reductionAxis: 1 } : { channelAxis: 1, reductionAxis: 0 };
    default:
      return { channelAxis: Math.max(0, rank - 1), reductionAxis: Math.max(0, rank - 2) };
  }
}

/**
 * 4-bit convolution weights (weight-only: int4 DequantizeLinear → float Conv): blocks of `blockSize`
 * input channels at each (output channel, kernel position) when there are at least `blockSize` input
 * channels (opset-21 DequantizeLinear `block_size` along the input-channel axis); otherwise one scale
 * per output channel. A stem conv with 1 or 3 input channels would otherwise get a 4-byte scale for
 * every 1-3 weights, more than the float weight itself.
 */
export function int4ConvGranularity(dims: readonly number[], axes: WeightAxes, blockSize = 32): 'block' | 'channel' {
  return (dims[axes.reductionAxis] ?? 1) >= blockSize ? 'block' : 'channel';
}

/**
 * The default weight quantization of a layer at `bits`: 8 (and 16) bits symmetric per output channel;
 * 4 bits symmetric, blocks of `blockSize` along the reduction axis (convolutions: int4ConvGranularity).
 */
export function defaultWeightSpec(axes: WeightAxes, bits: 4 | 8 | 16, blockSize: number | undefined, dims: readonly number[]): WeightQuantSpec {
  const b = blockSize ?? 32;
  if (bits === 4) {
    if (axes.isConv && int4ConvGranularity(dims, axes, b) === 'channel') return { bits, symmetric: true, granularity: 'channel', axis: axes.channelAxis };
    return { bits, symmetric: true, granularity: 'block', axis: axes.reductionAxis, blockSize: b };
  }
  return { bits, symmetric: true, granularity: 'channel', axis: axes.channelAxis };
}

/**
 * Stored bytes of a weight (design.md size accounting): float32 4 B/weight; int8/int16 1 or 2 B/weight
 * plus a 4-byte scale per channel; int4 block B: 0.5 B/weight plus a 4-byte scale per block (a conv
 * with fewer than B input channels: per output channel).
 */
export function weightSizeBytes(dims: readonly number[], bits: 4 | 8 | 16 | 'float', axes: WeightAxes, blockSize = 32): number {
  const n = dims.reduce((a, b) => a * b, 1);
  if (bits === 'float') return 4 * n;
  if (bits === 4) {
    if (axes.isConv && int4ConvGranularity(dims, axes, blockSize) === 'channel') return Math.ceil(n / 2) + 4 * (dims[axes.channelAxis] ?? 1);
    const d = dims[axes.reductionAxis] ?? 1;
    const blocks = (n / d) * Math.ceil(d / blockSize);
    return Math.ceil(n / 2) + 4 * blocks;
  }
  const channels = dims[axes.channelAxis] ?? 1;
  return (bits / 8) * n + 4 * channels;
}

/**
 * Combine per-layer sensitivity terms (each an array over the same layers, e.g. Ω, measured loss,
 * leave-one-out recovery) into one score: negatives clipped to 0, each term divided by its sum over
 * the layers, then averaged over the terms that have any mass. Higher = more sensitive.
 */
export function combineScores(terms: readonly (readonly number[])[]): number[] {
  const n = terms[0]?.length ?? 0;
  const score = new Array<number>(n).fill(0);
  let used = 0;
  for (const t of terms) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += Math.max(0, t[i] || 0);
    if (!(sum > 0) || !Number.isFinite(sum)) continue;
    used++;
    for (let i = 0; i < n; i++) score[i] += Math.max(0, t[i] || 0) / sum;
  }
  return used > 0 ? score.map((s) => s / used) : score;
}
