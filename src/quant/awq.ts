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
  /** s per input channel (multiply the weight's input rows, divide the activation). */
  scales: Float64Array;
  /** Σ over the layers of Δᵀ E[xxᵀ] Δ at α = 0 (plain round-to-nearest) and at the chosen α (row-sampled). */
  errorBefore: number;
  errorAfter: number;
}

export const AWQ_GRID: readonly number[] = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];

/** Layer output error of Q(W·diag(s))·diag(s)⁻¹ against W for E[xxᵀ] = `second` (rows sampled with `stride`). */
function scaledError(l: AwqLayer, s: Float64Array, second: Float64Array, stride: number): number {
  const { w, rows, cols } = l;
  const ws = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) ws[r * cols + c] = w[r * cols + c] * s[c];
  const q = fakeQuantizeWeight(ws, [rows, cols], l.spec);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) q[r * cols + c] = q[r * cols + c] / s[c];
  const [e] = pairedRowErrors(w, q, q, rows, cols, [second], stride);
  let sum = 0;
  for (const v of e) sum += v;
  return (sum * rows) / e.length;
}

/** Search α for a group of layers sharing one input activation with second moment `second` (cols×cols). */
export function awqSearch(layers: readonly AwqLayer[], second: Float64Array, opts: { grid?: readonly number[]; errorRows?: number } = {}): AwqResult {
  const cols = layers[0].cols;
  const rms = new Float64Array(cols);
  for (let j = 0; j < cols; j++) rms[j] = Math.sqrt(Math.max(0, second[j * cols + j]));
  // Dead channels: scale 1 (nothing to protect).
  let positiveMin = Infinity;
  for (const v of rms) if (v > 0 && v < positiveMin) positiveMin = v;
  const scalesAt = (alpha: number): Float64Array => {
    const s = new Float64Array(cols);
    let lo = Infinity;
    let hi = 0;
    for (let j = 0; j < cols; j++) {
      s[j] = rms[j] > 0 ? Math.pow(rms[j], alpha) : Math.pow(positiveMin, alpha);
      lo = Math.min(lo, s[j]);
      hi = Math.max(hi, s[j]);
    }
    // Normalise to geometric mid-range 1, as AWQ does (keeps the weights' magnitude in range).
    const norm = Math.sqrt(lo * hi) || 1;
    for (let j = 0; j < cols; j++) s[j] /= norm;
    return s;
  };
  const strides = layers.map((l) => Math.max(1, Math.floor(l.rows / (opts.errorRows ?? 64))));
  const errorOf = (s: Float64Array) => layers.reduce((a, l, i) => a + scaledError(l, s, second, strides[i]), 0);
  let best = { alpha: 0, scales: scalesAt(0), error: Infinity };
  let errorBefore = NaN;
  for (const alpha of opts.grid ?? AWQ_GRID) {
    const s = scalesAt(alpha);
    const e = errorOf(s);
    if (alpha === 0) errorBefore = e;
    if (e < best.error) best = { alpha, scales: s, error: e };
  }
  if (Number.isNaN(errorBefore)) errorBefore = errorOf(scalesAt(0));
  return { alpha: best.alpha, scales: best.scales, errorBefore, errorAfter: best.error };
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
