import { getIntAttr, getIntsAttr, getStringAttr, type QuantizableLayer } from '../onnx/index.js';
import { Rng, toFloat32, type Tensor } from '../tensor/index.js';

/**
 * The layer-wise reconstruction view of a linear layer y = W x: x is the reduction vector of one
 * output row (the activation row for Gemm/MatMul, the im2col patch of one group for Conv), and the
 * reconstruction-loss Hessian is H = 2·E[x xᵀ], the same for every output row of a group.
 */
export type LayerwiseView =
  | { kind: 'linear'; dim: number; groups: 1; transA: boolean; transB: boolean; outputs: number }
  | {
      kind: 'conv';
      dim: number;
      groups: number;
      outputs: number;
      channelsPerGroup: number;
      kernel: [number, number];
      strides: [number, number];
      dilations: [number, number];
      /** [top, left, bottom, right]; SAME_* auto_pad is resolved per input size. */
      pads: [number, number, number, number];
      autoPad: string;
    };

/** The view of a layer, or undefined when qtool has no im2col view for it (ConvTranspose, 3-D conv, batched MatMul weights). */
export function layerwiseView(layer: QuantizableLayer, dims: readonly number[]): LayerwiseView | undefined {
  if (layer.opType === 'Gemm' || layer.opType === 'MatMul') {
    if (dims.length !== 2) return undefined;
    const transB = layer.opType === 'Gemm' && getIntAttr(layer.node, 'transB', 0) === 1;
    const transA = layer.opType === 'Gemm' && getIntAttr(layer.node, 'transA', 0) === 1;
    return { kind: 'linear', dim: transB ? dims[1] : dims[0], outputs: transB ? dims[0] : dims[1], groups: 1, transA, transB };
  }
  if (layer.opType !== 'Conv' || (dims.length !== 4 && dims.length !== 3)) return undefined;
  const is1d = dims.length === 3;
  const groups = getIntAttr(layer.node, 'group', 1);
  const kernel: [number, number] = is1d ? [1, dims[2]] : [dims[2], dims[3]];
  const s = getIntsAttr(layer.node, 'strides') ?? [];
  const d = getIntsAttr(layer.node, 'dilations') ?? [];
  const p = getIntsAttr(layer.node, 'pads') ?? [];
  const pads: [number, number, number, number] = is1d ? [0, p[0] ?? 0, 0, p[1] ?? 0] : [p[0] ?? 0, p[1] ?? 0, p[2] ?? 0, p[3] ?? 0];
  return {
    kind: 'conv',
    dim: dims[1] * kernel[0] * kernel[1],
    groups,
    outputs: dims[0],
    channelsPerGroup: dims[1],
    kernel,
    strides: is1d ? [1, s[0] ?? 1] : [s[0] ?? 1, s[1] ?? 1],
    dilations: is1d ? [1, d[0] ?? 1] : [d[0] ?? 1, d[1] ?? 1],
    pads,
    autoPad: getStringAttr(layer.node, 'auto_pad') ?? 'NOTSET',
  };
}

export interface ActivationStatsOptions {
  /** Rows (activation rows or patches) to sample for E[x xᵀ]. */
  maxRows: number;
  /** Above this reduction size, keep only the diagonal. */
  maxDim: number;
  /** Samples that will be fed in total (to pick the sampling rate). */
  totalSamples: number;
  seed: number;
}

export interface ActivationStatsResult {
  /** 2·E‖x‖² (averaged over groups). */
  traceH: number;
  rows: number;
  covarianceRows: number;
  covariance: 'full' | 'diagonal';
  /** Per group: E[x xᵀ] (dim×dim, full) or its diagonal (dim). */
  second: Float64Array[];
  /** Per group: E[x] over every row (exact, not sampled). */
  mean: Float64Array[];
}

/** Online E‖x‖² (exact) and E[x xᵀ] (on a seeded sample of rows) of one layer's reduction vectors. */
export class ActivationStats {
  private readonly full: boolean;
  private readonly sums: Float64Array[];
  private readonly sq: Float64Array;
  private readonly firstSums: Float64Array[];
  private rowCount = 0;
  private sampledRows = 0;
  private readonly rng: Rng;
  private readonly row: Float64Array;

  constructor(
    readonly view: LayerwiseView,
    private readonly opts: ActivationStatsOptions,
  ) {
    this.full = view.dim <= opts.maxDim;
    const size = this.full ? view.dim * view.dim : view.dim;
    this.sums = Array.from({ length: view.groups }, () => new Float64Array(size));
    this.sq = new Float64Array(view.groups);
    this.firstSums = Array.from({ length: view.groups }, () => new Float64Array(view.dim));
    this.rng = new Rng(opts.seed);
    this.row = new Float64Array(view.dim);
  }

  update(x: Tensor): void {
    const data = toFloat32(x);
    if (this.view.kind === 'linear') this.updateLinear(data, x.dims);
    else this.updateConv(data, x.dims);
  }

  private rate(rowsPerSample: number): number {
    return Math.min(1, this.opts.maxRows / Math.max(1, rowsPerSample * this.opts.totalSamples));
  }

  private updateLinear(x: Float32Array, dims: readonly number[]): void {
    const v = this.view as Extract<LayerwiseView, { kind: 'linear' }>;
    const k = v.dim;
    const rows = x.length / k;
    const samples = v.transA ? 1 : dims.length > 1 ? dims[0] : 1;
    const p = this.rate(rows / Math.max(1, samples));
    const row = this.row;
    const first = this.firstSums[0];
    for (let r = 0; r < rows; r++) {
      // transA: x is [K, M], the row is a column.
      let s = 0;
      for (let j = 0; j < k; j++) {
        const val = v.transA ? x[j * rows + r] : x[r * k + j];
        row[j] = val;
        first[j] += val;
        s += val * val;
      }
      this.sq[0] += s;
      if (p >= 1 || this.rng.next() < p) this.accumulate(0, row);
    }
    this.rowCount += rows;
  }

  private updateConv(x: Float32Array, dims: readonly number[]): void {
    const v = this.view as Extract<LayerwiseView, { kind: 'conv' }>;
    const is1d = dims.length === 3;
    const n = dims[0];
    const c = dims[1];
    const h = is1d ? 1 : dims[2];
    const w = is1d ? dims[2] : dims[3];
    const [kh, kw] = v.kernel;
    const [sh, sw] = v.strides;
    const [dh, dw] = v.dilations;
    let [pt, pl, pb, pr] = v.pads;
    const extH = dh * (kh - 1) + 1;
    const extW = dw * (kw - 1) + 1;
    let ho: number;
    let wo: number;
    if (v.autoPad === 'SAME_UPPER' || v.autoPad === 'SAME_LOWER') {
      ho = Math.ceil(h / sh);
      wo = Math.ceil(w / sw);
      const th = Math.max(0, (ho - 1) * sh + extH - h);
      const tw = Math.max(0, (wo - 1) * sw + extW - w);
      const upper = v.autoPad === 'SAME_UPPER';
      pt = upper ? Math.floor(th / 2) : Math.ceil(th / 2);
      pb = th - pt;
      pl = upper ? Math.floor(tw / 2) : Math.ceil(tw / 2);
      pr = tw - pl;
    } else {
      if (v.autoPad === 'VALID') pt = pl = pb = pr = 0;
      ho = Math.floor((h + pt + pb - extH) / sh) + 1;
      wo = Math.floor((w + pl + pr - extW) / sw) + 1;
    }
    const cg = v.channelsPerGroup;
    const positions = ho * wo;
    const p = this.rate(positions);
    const row = this.row;
    for (let s = 0; s < n; s++) {
      for (let oy = 0; oy < ho; oy++) {
        for (let ox = 0; ox < wo; ox++) {
          const take = p >= 1 || this.rng.next() < p;
          for (let g = 0; g < v.groups; g++) {
            const first = this.firstSums[g];
            let sum = 0;
            let j = 0;
            for (let ci = 0; ci < cg; ci++) {
              const base = (s * c + g * cg + ci) * h * w;
              for (let ky = 0; ky < kh; ky++) {
                const iy = oy * sh - pt + ky * dh;
                for (let kx = 0; kx < kw; kx++, j++) {
                  const ix = ox * sw - pl + kx * dw;
                  const val = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[base + iy * w + ix] : 0;
                  row[j] = val;
                  first[j] += val;
                  sum += val * val;
                }
              }
            }
            this.sq[g] += sum;
            if (take) this.accumulate(g, row);
          }
        }
      }
    }
    this.rowCount += n * positions;
  }

  private accumulate(g: number, row: Float64Array): void {
    const k = this.view.dim;
    const acc = this.sums[g];
    if (g === 0) this.sampledRows++;
    if (!this.full) {
      for (let i = 0; i < k; i++) acc[i] += row[i] * row[i];
      return;
    }
    for (let i = 0; i < k; i++) {
      const ri = row[i];
      if (ri === 0) continue;
      const off = i * k;
      for (let j = i; j < k; j++) acc[off + j] += ri * row[j];
    }
  }

  result(): ActivationStatsResult {
    const k = this.view.dim;
    const m = Math.max(1, this.sampledRows);
    const second = this.sums.map((acc) => {
      const out = new Float64Array(acc.length);
      if (!this.full) {
        for (let i = 0; i < k; i++) out[i] = acc[i] / m;
        return out;
      }
      for (let i = 0; i < k; i++) {
        for (let j = i; j < k; j++) {
          const val = acc[i * k + j] / m;
          out[i * k + j] = val;
          out[j * k + i] = val;
        }
      }
      return out;
    });
    let sq = 0;
    for (let g = 0; g < this.view.groups; g++) sq += this.sq[g];
    const rows = Math.max(1, this.rowCount);
    return {
      traceH: (2 * sq) / rows / this.view.groups,
      rows: this.rowCount,
      covarianceRows: this.sampledRows,
      covariance: this.full ? 'full' : 'diagonal',
      second,
      mean: this.firstSums.map((f) => f.map((v) => v / rows)),
    };
  }
}

/**
 * Σ_rows Δwᵀ E[x xᵀ] Δw for Δw = wq − w (the GPTQ/OBC objective), with the weight laid out as the view says:
 * Gemm transB [N, K], Gemm/MatMul [K, N] (rows are columns), Conv [O, C/g, kh, kw] (row o in group o·g/O).
 */
export function reconstructionError(view: LayerwiseView, stats: ActivationStatsResult, w: Float32Array, wq: Float32Array): number {
  const k = view.dim;
  const outputs = view.outputs;
  const perGroup = outputs / view.groups;
  const dw = new Float64Array(k);
  let total = 0;
  for (let o = 0; o < outputs; o++) {
    const columnLayout = view.kind === 'linear' && !view.transB;
    for (let j = 0; j < k; j++) {
      const idx = columnLayout ? j * outputs + o : o * k + j;
      dw[j] = wq[idx] - w[idx];
    }
    const c = stats.second[Math.floor(o / perGroup)];
    if (stats.covariance === 'diagonal') {
      for (let j = 0; j < k; j++) total += dw[j] * dw[j] * c[j];
      continue;
    }
    for (let i = 0; i < k; i++) {
      const di = dw[i];
      if (di === 0) continue;
      const off = i * k;
      let s = 0;
      for (let j = 0; j < k; j++) s += c[off + j] * dw[j];
      total += di * s;
    }
  }
  return total;
}
