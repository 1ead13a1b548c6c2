import { GraphIndex, getIntAttr, quantizableLayers, tensorFromProto, type Model } from '../onnx/index.js';
import { awqSearch, fakeQuantizeWeight, pairedRowErrors, smoothQuantScales, type AwqLayer, type WeightQuantSpec } from '../quant/index.js';
import { toFloat32 } from '../tensor/index.js';
import type { LayerInputStats } from './hessians.js';

/** One activation's AWQ outcome (structurally rewrite's ChannelScaling, plus what the search measured). */
export interface AwqScaling {
  activation: string;
  scales: Float64Array;
  layers: string[];
  alpha: number;
  beta: number;
  /** Σ Δᵀ E[xxᵀ] Δ over the layers: round-to-nearest, and after scaling (row-sampled). */
  errorBefore: number;
  errorAfter: number;
}

export interface AwqOptions {
  bits: 4 | 8;
  blockSize?: number;
  symmetric?: boolean;
  grid?: readonly number[];
  /** Only scale activations whose layers are all listed (default: every MatMul/Gemm with statistics). */
  layers?: readonly string[];
}

/**
 * AWQ over a model: MatMul/Gemm layers grouped by the activation they read (they share s), α searched
 * per group on the layer-input statistics. Groups whose best α is 0 (scaling does not help) are left out.
 */
export function awqScalings(model: Model, stats: ReadonlyMap<string, LayerInputStats>, opts: AwqOptions): AwqScaling[] {
  const index = new GraphIndex(model.proto.graph!, model.file);
  const wanted = opts.layers ? new Set(opts.layers) : undefined;
  const groups = new Map<string, { ids: string[]; layers: AwqLayer[]; second: Float32Array }>();
  for (const l of quantizableLayers(index)) {
    if (l.scope.path !== 'main' || (l.opType !== 'MatMul' && l.opType !== 'Gemm')) continue;
    if (wanted && !wanted.has(l.id)) continue;
    const s = stats.get(l.id);
    if (!s || s.view.kind !== 'linear' || s.view.transA) continue;
    const t = index.constant(l.weight);
    if (!t || t.dataType !== 1 || t.dims.length !== 2) continue;
    const w = toFloat32(tensorFromProto(t));
    const transB = l.opType === 'Gemm' && getIntAttr(l.node, 'transB', 0) === 1;
    const [K, N] = transB ? [Number(t.dims[1]), Number(t.dims[0])] : [Number(t.dims[0]), Number(t.dims[1])];
    const cw = new Float32Array(K * N);
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) cw[n * K + k] = transB ? w[n * K + k] : w[k * N + n];
    const spec: WeightQuantSpec =
      opts.bits === 4
        ? { bits: 4, symmetric: opts.symmetric ?? false, granularity: 'block', axis: 1, blockSize: opts.blockSize ?? 32 }
        : { bits: 8, symmetric: opts.symmetric ?? true, granularity: 'channel', axis: 0 };
    const g = groups.get(s.activation) ?? { ids: [], layers: [], second: s.second[0] };
    g.ids.push(l.id);
    g.layers.push({ w: cw, rows: N, cols: K, spec });
    groups.set(s.activation, g);
  }
  const out: AwqScaling[] = [];
  for (const [activation, g] of groups) {
    const res = awqSearch(g.layers, Float64Array.from(g.second), { grid: opts.grid });
    if ((res.alpha === 0 && res.beta === 0) || !(res.errorAfter < res.errorBefore)) continue;
    out.push({ activation, scales: res.scales, layers: g.ids, alpha: res.alpha, beta: res.beta, errorBefore: res.errorBefore, errorAfter: res.errorAfter });
  }
  return out;
}

/** One activation's SmoothQuant scaling (structurally rewrite's ChannelScaling). */
export interface SmoothScaling {
  activation: string;
  scales: Float64Array;
  layers: string[];
  alpha: number;
}

/**
 * SmoothQuant over a model: MatMul/Gemm layers grouped by the activation they read, s_j = max|X_j|^α /
 * max|W_j|^(1−α) (max |W_j| over every reader's input row j), from the calibrated per-channel max |x|.
 */
export function smoothScalings(model: Model, stats: ReadonlyMap<string, LayerInputStats>, alpha: number): SmoothScaling[] {
  const index = new GraphIndex(model.proto.graph!, model.file);
  const groups = new Map<string, { ids: string[]; wMax: Float64Array; aMax: Float64Array }>();
  for (const l of quantizableLayers(index)) {
    if (l.scope.path !== 'main' || (l.opType !== 'MatMul' && l.opType !== 'Gemm')) continue;
    const s = stats.get(l.id);
    if (!s?.maxAbs || s.view.kind !== 'linear' || s.view.transA) continue;
    const t = index.constant(l.weight);
    if (!t || t.dataType !== 1 || t.dims.length !== 2) continue;
    const w = toFloat32(tensorFromProto(t));
    const transB = l.opType === 'Gemm' && getIntAttr(l.node, 'transB', 0) === 1;
    const [K, N] = transB ? [Number(t.dims[1]), Number(t.dims[0])] : [Number(t.dims[0]), Number(t.dims[1])];
    if (K !== s.maxAbs.length) continue;
    const g = groups.get(s.activation) ?? { ids: [], wMax: new Float64Array(K), aMax: Float64Array.from(s.maxAbs) };
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) g.wMax[k] = Math.max(g.wMax[k], Math.abs(transB ? w[n * K + k] : w[k * N + n]));
    g.ids.push(l.id);
    groups.set(s.activation, g);
  }
  return [...groups].map(([activation, g]) => ({ activation, scales: smoothQuantScales(g.aMax, g.wMax, alpha), layers: g.ids, alpha }));
}

/** The layer statistics of the scaled model: x' = x/s, so E[x'x'ᵀ] = S⁻¹E[xxᵀ]S⁻¹ and E[x'] = E[x]/s. */
export function scaledStats(stats: ReadonlyMap<string, LayerInputStats>, scalings: readonly { activation: string; scales: Float64Array; layers: readonly string[] }[]): Map<string, LayerInputStats> {
  const out = new Map(stats);
  for (const sc of scalings) {
    const k = sc.scales.length;
    const first = stats.get(sc.layers[0]);
    if (!first) continue;
    const s = sc.scales;
    const second = first.second.map((m) => {
      const r = new Float32Array(m.length);
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) r[i * k + j] = m[i * k + j] / (s[i] * s[j]);
      return r;
    });
    const mean = first.mean.map((m) => m.map((v, j) => v / s[j]));
    const scaled: LayerInputStats = { ...first, second, mean };
    for (const id of sc.layers) out.set(id, scaled);
  }
  return out;
}

export interface SymmetryChoice {
  layer: string;
  symmetric: boolean;
  /** Σ Δᵀ E[xxᵀ] Δ of round-to-nearest, symmetric and asymmetric (row-sampled). */
  errorSymmetric: number;
  errorAsymmetric: number;
}

/**
 * INT4 symmetric vs asymmetric blocks, per layer, on data: the round-to-nearest layer output error
 * Σ Δᵀ E[xxᵀ] Δ of both (the asymmetric zero points cost half a byte per block) and the lower wins.
 */
export function chooseInt4Symmetry(model: Model, stats: ReadonlyMap<string, LayerInputStats>, opts: { blockSize?: number; errorRows?: number; layers?: readonly string[] } = {}): SymmetryChoice[] {
  const index = new GraphIndex(model.proto.graph!, model.file);
  const wanted = opts.layers ? new Set(opts.layers) : undefined;
  const out: SymmetryChoice[] = [];
  for (const l of quantizableLayers(index)) {
    if (l.scope.path !== 'main' || (l.opType !== 'MatMul' && l.opType !== 'Gemm') || (wanted && !wanted.has(l.id))) continue;
    const s = stats.get(l.id);
    const t = index.constant(l.weight);
    if (!s || s.view.kind !== 'linear' || s.view.transA || !t || t.dataType !== 1 || t.dims.length !== 2) continue;
    const w = toFloat32(tensorFromProto(t));
    const transB = l.opType === 'Gemm' && getIntAttr(l.node, 'transB', 0) === 1;
    const [K, N] = transB ? [Number(t.dims[1]), Number(t.dims[0])] : [Number(t.dims[0]), Number(t.dims[1])];
    const cw = new Float32Array(K * N);
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) cw[n * K + k] = transB ? w[n * K + k] : w[k * N + n];
    const spec = (symmetric: boolean): WeightQuantSpec => ({ bits: 4, symmetric, granularity: 'block', axis: 1, blockSize: opts.blockSize ?? 32 });
    const qs = fakeQuantizeWeight(cw, [N, K], spec(true));
    const qa = fakeQuantizeWeight(cw, [N, K], spec(false));
    const stride = Math.max(1, Math.floor(N / (opts.errorRows ?? (K > 1024 ? 16 : 64))));
    const [es, ea] = pairedRowErrors(cw, qs, qa, N, K, [Float64Array.from(s.second[0])], stride);
    const sum = (e: Float64Array) => e.reduce((a, b) => a + b, 0) * (N / e.length);
    const errorSymmetric = sum(es);
    const errorAsymmetric = sum(ea);
    out.push({ layer: l.id, symmetric: errorSymmetric <= errorAsymmetric, errorSymmetric, errorAsymmetric });
  }
  return out;
}
