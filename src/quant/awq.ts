import { pairedRowErrors } from './gptq.js';
import { fakeQuantizeWeight, type WeightQuantSpec } from './weights.js';

/**
 * AWQ (activation-aware weight quantization, Lin et al. 2023): scale each input channel j of a linear
 * layer by s_j, y = (W·diag(s)) (diag(s)⁻¹ x), so the channels that carry large activations get finer
 * weight steps. s_j = rms(x_j)^α / normaliser (RMS over the calibration data stands in for AWQ's
 * mean |x_j|: both come from one streaming pass, and the RMS is E[x xᵀ]'s diagonal), α chosen on a grid
 * to minimise the layer output error Σ_rows Δ_rᵀ E[x xᵀ] Δ_r of Δ = Q(W·diag(s))·diag(s)⁻¹ − W, summed
 * over every layer that reads the same activation (they must share s). The error needs no activations:
 * it is a quadratic form in the layer-input second moment the GPTQ statistics already hold.
 */
export interface AwqLayer {
  /** Canonical weight [rows, cols] (rows = output channels, cols = the scaled input channels). */
  w: Float32Array;
  rows: number;
  cols: number;
  /** How the layer's weight will be quantized, in the canonical layout [rows, cols] (axis 1 = reduction). */
  spec: WeightQuantSpec;
}

export interface AwqResult {
  alpha: number;
  /** Exponent of the weight term (0 = plain AWQ). */
  beta: number;
  /** s per input channel (multiply the weight's input rows, divide the activation). */
  scales: Float64Array;
  /** Σ over the layers of Δᵀ E[xxᵀ] Δ at α = 0 (plain round-to-nearest) and at the chosen α (row-sampled). */
  errorBefore: number;
  errorAfter: number;
}

export const AWQ_GRID: readonly number[] = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
/**
 * Exponents of a weight term max_rows|W_{·j}|^(−β) also searched (β = 0 is AWQ as published): input
 * channels whose weights are outliers get s < 1, so they stop setting their blocks' scales. Kept only
 * when it measures lower error.
 */
export const AWQ_WEIGHT_GRID: readonly number[] = [0, 0.5];

/** Q(W·diag(s))·diag(s)⁻¹ in the canonical layout. */
function scaledQuantized(l: AwqLayer, s: Float64Array): Float32Array {
  const { w, rows, cols } = l;
  const ws = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) ws[r * cols + c] = w[r * cols + c] * s[c];
  const q = fakeQuantizeWeight(ws, [rows, cols], l.spec);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) q[r * cols + c] = q[r * cols + c] / s[c];
  return q;
}

/** Layer output errors of two scalings at once (one pass over E[xxᵀ] per row pair; rows sampled with `stride`). */
function scaledErrors(l: AwqLayer, s1: Float64Array, s2: Float64Array, second: Float64Array, stride: number): [number, number] {
  const [e1, e2] = pairedRowErrors(l.w, scaledQuantized(l, s1), scaledQuantized(l, s2), l.rows, l.cols, [second], stride);
  let a = 0;
  let b = 0;
  for (let i = 0; i < e1.length; i++) {
    a += e1[i];
    b += e2[i];
  }
  return [(a * l.rows) / e1.length, (b * l.rows) / e1.length];
}

/** Search α for a group of layers sharing one input activation with second moment `second` (cols×cols). */
export function awqSearch(layers: readonly AwqLayer[], second: Float64Array, opts: { grid?: readonly number[]; weightGrid?: readonly number[]; errorRows?: number } = {}): AwqResult {
  const cols = layers[0].cols;
  const wmax = new Float64Array(cols);
  for (const l of layers) for (let r = 0; r < l.rows; r++) for (let c = 0; c < cols; c++) wmax[c] = Math.max(wmax[c], Math.abs(l.w[r * cols + c]));
  const rms = new Float64Array(cols);
  for (let j = 0; j < cols; j++) rms[j] = Math.sqrt(Math.max(0, second[j * cols + j]));
  // Dead channels: scale 1 (nothing to protect).
  let positiveMin = Infinity;
  for (const v of rms) if (v > 0 && v < positiveMin) positiveMin = v;
  const scalesAt = (alpha: number, beta = 0): Float64Array => {
    const s = new Float64Array(cols);
    let lo = Infinity;
    let hi = 0;
    for (let j = 0; j < cols; j++) {
      s[j] = (rms[j] > 0 ? Math.pow(rms[j], alpha) : Math.pow(positiveMin, alpha)) / (beta > 0 && wmax[j] > 0 ? Math.pow(wmax[j], beta) : 1);
      lo = Math.min(lo, s[j]);
      hi = Math.max(hi, s[j]);
    }
    // Normalise to geometric mid-range 1, as AWQ does (keeps the weights' magnitude in range).
    const norm = Math.sqrt(lo * hi) || 1;
    for (let j = 0; j < cols; j++) s[j] /= norm;
    return s;
  };
  // Rows sampled for the errors: fewer for wide inputs (each row costs cols² per candidate).
  const sampleRows = opts.errorRows ?? (cols > 1024 ? 8 : 32);
  const strides = layers.map((l) => Math.max(1, Math.floor(l.rows / sampleRows)));
  const candidates: { alpha: number; beta: number; s: Float64Array }[] = [];
  for (const beta of opts.weightGrid ?? AWQ_WEIGHT_GRID) for (const alpha of opts.grid ?? AWQ_GRID) if (!(alpha === 0 && beta > 0)) candidates.push({ alpha, beta, s: scalesAt(alpha, beta) });
  if (!candidates.some((c) => c.alpha === 0 && c.beta === 0)) candidates.unshift({ alpha: 0, beta: 0, s: scalesAt(0) });
  const errors = new Float64Array(candidates.length);
  for (let i = 0; i < candidates.length; i += 2) {
    const j = Math.min(i + 1, candidates.length - 1);
    for (const [li, l] of layers.entries()) {
      const [a, b] = scaledErrors(l, candidates[i].s, candidates[j].s, second, strides[li]);
      errors[i] += a;
      if (j !== i) errors[j] += b;
    }
  }
  let bi = 0;
  for (let i = 1; i < candidates.length; i++) if (errors[i] < errors[bi]) bi = i;
  const errorBefore = errors[candidates.findIndex((c) => c.alpha === 0 && c.beta === 0)];
  const best = { alpha: candidates[bi].alpha, beta: candidates[bi].beta, scales: candidates[bi].s, error: errors[bi] };
  return { alpha: best.alpha, beta: best.beta, scales: best.scales, errorBefore, errorAfter: best.error };
}

/**
 * SmoothQuant (Xiao et al. 2023) scales for W8A8: s_j = max|X_j|^α / max|W_j|^(1−α) over the layers
 * sharing the activation (max|W_j| over their input channel j), so activation outliers move into the
 * weights before per-tensor activation quantization. Channels with a zero maximum get s = 1.
 */
export function smoothQuantScales(actMaxAbs: Float64Array, weightMaxAbs: Float64Array, alpha: number): Float64Array {
  const s = new Float64Array(actMaxAbs.length);
  for (let j = 0; j < s.length; j++) {
    const a = actMaxAbs[j];
    const w = weightMaxAbs[j];
    s[j] = a > 0 && w > 0 ? Math.pow(a, alpha) / Math.pow(w, 1 - alpha) : 1;
    if (!Number.isFinite(s[j]) || !(s[j] > 0)) s[j] = 1;
  }
  return s;
}
