import type { HessianEstimate } from '../documents/index.js';
import { Rng } from '../tensor/index.js';

export interface TraceEstimateInput {
  /** The float weight W₀. */
  w0: Float32Array;
  /** L(W₀). */
  baseLoss: number;
  /** L(W) for a perturbed weight (one onnxruntime run over the probe subset). */
  loss: (w: Float32Array) => Promise<number>;
  seed: number;
  maxProbes: number;
  minProbes: number;
  /** Stop when stderr < relStderr · |mean| (after minProbes). */
  relStderr: number;
  /** ε = epsilonRel · RMS(W₀). */
  epsilonRel: number;
  /** Probes re-run at ε/2 to check the step; 0 skips the check. */
  stabilityProbes: number;
  /** Relative difference below which the step counts as stable (default 0.1). */
  stabilityTolerance?: number;
}

/** RMS of a weight; a tiny floor keeps ε positive for all-zero weights. */
export function rms(w: Float32Array): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i] * w[i];
  const r = Math.sqrt(s / Math.max(1, w.length));
  return r > 0 ? r : 1e-8;
}

/**
 * Hutchinson's estimator of tr(H), forward only: for Rademacher v, the symmetric second difference
 * (L(W₀+εv) + L(W₀−εv) − 2L(W₀)) / ε² estimates vᵀHv, whose mean is tr(H). Two loss runs per probe,
 * plus 2·stabilityProbes runs at ε/2 on the first probes' vectors.
 */
export async function hutchinsonTrace(input: TraceEstimateInput): Promise<HessianEstimate & { runs: number }> {
  const { w0, baseLoss, loss } = input;
  const n = w0.length;
  const rng = new Rng(input.seed);
  const eps = input.epsilonRel * rms(w0);
  const w = new Float32Array(n);
  const signs: Int8Array[] = [];
  const samples: number[] = [];
  let runs = 0;
  const secondDifference = async (v: Int8Array, step: number): Promise<number> => {
    for (let i = 0; i < n; i++) w[i] = w0[i] + step * v[i];
    const lp = await loss(w);
    for (let i = 0; i < n; i++) w[i] = w0[i] - step * v[i];
    const lm = await loss(w);
    runs += 2;
    return (lp + lm - 2 * baseLoss) / (step * step);
  };
  let mean = 0;
  let stderr = 0;
  while (samples.length < input.maxProbes) {
    const v = new Int8Array(n);
    for (let i = 0; i < n; i++) v[i] = rng.next() < 0.5 ? -1 : 1;
    if (signs.length < input.stabilityProbes) signs.push(v);
    samples.push(await secondDifference(v, eps));
    ({ mean, stderr } = meanStderr(samples));
    if (samples.length >= input.minProbes && stderr < input.relStderr * Math.abs(mean)) break;
  }
  let traceHalfEpsilon: number | null = null;
  let traceSameProbes: number | null = null;
  let stabilityRelDiff: number | null = null;
  let isStable: boolean | null = null;
  if (signs.length > 0) {
    let half = 0;
    for (const v of signs) half += await secondDifference(v, eps / 2);
    traceHalfEpsilon = half / signs.length;
    traceSameProbes = samples.slice(0, signs.length).reduce((a, b) => a + b, 0) / signs.length;
    const denom = Math.max(Math.abs(traceSameProbes), 1e-30);
    stabilityRelDiff = Math.abs(traceHalfEpsilon - traceSameProbes) / denom;
    isStable = stabilityRelDiff < (input.stabilityTolerance ?? 0.1);
  }
  return {
    trace: mean,
    stderr,
    probes: samples.length,
    epsilon: eps,
    epsilonRel: input.epsilonRel,
    traceHalfEpsilon,
    traceSameProbes,
    stabilityRelDiff,
    isStable,
    runs,
  };
}

export function meanStderr(x: readonly number[]): { mean: number; stderr: number } {
  const k = x.length;
  if (k === 0) return { mean: 0, stderr: 0 };
  let mean = 0;
  for (const v of x) mean += v;
  mean /= k;
  if (k < 2) return { mean, stderr: Infinity };
  let ss = 0;
  for (const v of x) ss += (v - mean) ** 2;
  return { mean, stderr: Math.sqrt(ss / (k - 1) / k) };
}
