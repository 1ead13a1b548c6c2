import { dequantizeWeight, groupLayout, quantizeWeight, type WeightQuantSpec } from './weights.js';

/** Clip ratios tried by `searchWeightClip`, largest first (ties keep the larger ratio). */
export const CLIP_RATIOS: readonly number[] = [1, 0.975, 0.95, 0.925, 0.9, 0.875, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5];

/**
 * Per-group clip search (`--weight-clip mse`): for every channel/block, the ratio r in
 * CLIP_RATIOS whose clipped range [r·min, r·max] minimises Σ (Q(w) − w)² over that group.
 * Returns one ratio per group, ready for WeightQuantSpec.clip.
 */
export function searchWeightClip(w: Float32Array, dims: readonly number[], spec: Omit<WeightQuantSpec, 'clip'>, ratios: readonly number[] = CLIP_RATIOS): Float32Array {
  const { groups, groupOf } = groupLayout(dims, spec);
  const gid = new Int32Array(w.length);
  for (let i = 0; i < w.length; i++) gid[i] = groupOf(i);
  const best = new Float32Array(groups).fill(1);
  const bestErr = new Float64Array(groups).fill(Infinity);
  const err = new Float64Array(groups);
  const clip = new Float32Array(groups);
  for (const r of ratios) {
    clip.fill(r);
    const qw = quantizeWeight(w, dims, { ...spec, clip });
    const wq = dequantizeWeight(qw, dims, spec);
    err.fill(0);
    for (let i = 0; i < w.length; i++) {
      const d = wq[i] - w[i];
      err[gid[i]] += d * d;
    }
    for (let g = 0; g < groups; g++) {
      if (err[g] < bestErr[g]) {
        bestErr[g] = err[g];
        best[g] = r;
      }
    }
  }
  return best;
}
