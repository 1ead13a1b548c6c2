import { affineParams, quantRange, quantizeValue, type QuantRange } from './affine.js';
import { upperCholeskyOfInverse, upperCholeskyOfInverseWith, type MatMulEngine } from './linalg.js';
import { groupLayout, int4SymmetricParams, weightQuantType, type QuantizedWeight, type WeightQuantSpec } from './weights.js';

/**
 * GPTQ (Frantar et al. 2022, the Optimal Brain Compression family): quantize a linear layer's weight
 * column by column along its reduction axis and spread each column's rounding error over the columns
 * not yet quantized, weighted by the inverse of the layer-input Hessian H = 2·E[x xᵀ], so that the
 * layer output error Σ_rows Δwᵀ H Δw is (greedily) minimal instead of the weight error.
 *
 * The canonical problem is a row-major weight W [rows, cols] (rows = output channels, cols = the
 * reduction axis, in the order of H) with rows split into `hessians.length` equal row groups (conv
 * groups), each with its own H. Quantization groups are a fixed partition of each row's columns
 * (`colGroup`): one group per row (per channel) or blocks along the reduction axis. A group's scale and
 * zero point are chosen when the sweep reaches its first column, from the group's current (already
 * error-compensated) values, with the same rule as round-to-nearest (`quantizeWeight`).
 */
export interface GptqSettings {
  /** Dampening λ added to H's diagonal, relative to the mean diagonal (default 0.01). */
  dampRel?: number;
  /** Columns per lazy block update (default 128). */
  blockSize?: number;
  /**
   * Quantize columns in decreasing order of H's diagonal (act-order; default true). Groups stay the
   * storage layout's blocks (a group's scale is chosen when its first column comes up), so the model
   * needs no g_idx and runs at the same speed; FMNIST MLP INT4 logit MSE 6.2e-3 → 5.2e-3 with it.
   */
  actOrder?: boolean;
  /** Matrix products for large layers (blocked Cholesky, triangular inverse, lazy updates); default: JS loops. */
  engine?: MatMulEngine;
}

/** A Hessian matrix (float32 is enough: H's scale does not change GPTQ's result, only its reported errors). */
export type HessianMatrix = Float32Array | Float64Array;

export interface GptqProblem {
  /** W [rows, cols] row-major; not modified. */
  w: Float32Array | Float64Array;
  rows: number;
  cols: number;
  /** H (cols×cols, row-major, symmetric) per row group; rows r·hessians.length/rows share one. Not modified. */
  hessians: readonly HessianMatrix[];
  /** Quantization group of each column (0 … colGroups−1); the same partition for every row. */
  colGroup: Int32Array;
  colGroups: number;
  bits: 4 | 8 | 16;
  symmetric: boolean;
}

export interface GptqResult {
  /** Quantized integers [rows, cols] (4 and 8 bits fit int16). */
  q: Int16Array;
  /** Per (row, column group): index row·colGroups + group. */
  scales: Float32Array;
  zeroPoints: Int32Array;
  /** Dead columns (zero Hessian diagonal: the input is always 0 on the calibration data). */
  deadColumns: number;
  /** Whether H needed more dampening than asked to be positive definite (the extra factor applied). */
  dampFactor: number;
}

/** The quantization range and parameter rule shared with quantizeWeight. */
function paramRule(bits: 4 | 8 | 16, symmetric: boolean): { range: QuantRange; params: (lo: number, hi: number) => { scale: number; zeroPoint: number } } {
  const type = weightQuantType(bits, symmetric);
  const range = quantRange(type, symmetric && bits !== 4);
  const params = bits === 4 && symmetric ? int4SymmetricParams : (lo: number, hi: number) => affineParams(lo, hi, range, symmetric);
  return { range, params };
}

/** The dequantized canonical weight of a result: (q − z)·s per (row, column group). */
export function dequantizeGptq(res: GptqResult, problem: Pick<GptqProblem, 'rows' | 'cols' | 'colGroup' | 'colGroups'>): Float32Array {
  const { rows, cols, colGroup, colGroups } = problem;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const g = r * colGroups + colGroup[c];
      out[r * cols + c] = Math.fround((res.q[r * cols + c] - res.zeroPoints[g]) * res.scales[g]);
    }
  }
  return out;
}

/** Above this many multiply-adds per Hessian group, the sweep's lazy updates go through the engine. */
const ENGINE_SWEEP_MADDS = 2 ** 25;

/** Run GPTQ on the canonical problem. */
export async function gptq(problem: GptqProblem, settings: GptqSettings = {}): Promise<GptqResult> {
  if (problem.bits === 16) throw new RangeError('gptq: 4 or 8 bits only');
  const { rows, cols, hessians, colGroup, colGroups } = problem;
  const dampRel = settings.dampRel ?? 0.01;
  const B = Math.max(1, Math.min(cols, settings.blockSize ?? 128));
  const groupsOfRows = hessians.length;
  if (rows % groupsOfRows !== 0) throw new RangeError(`gptq: ${rows} rows do not split into ${groupsOfRows} Hessian groups`);
  const rowsPerH = rows / groupsOfRows;
  const { range, params } = paramRule(problem.bits, problem.symmetric);
  const q = new Int16Array(rows * cols);
  const scales = new Float32Array(rows * colGroups);
  const zeroPoints = new Int32Array(rows * colGroups);
  const engine = settings.engine;
  let deadColumns = 0;
  let dampFactor = 1;

  // Members of each column group (original column indices).
  const members: number[][] = Array.from({ length: colGroups }, () => []);
  for (let j = 0; j < cols; j++) members[colGroup[j]].push(j);

  for (let g = 0; g < groupsOfRows; g++) {
    const h0 = hessians[g];
    if (h0.length !== cols * cols) throw new RangeError(`gptq: Hessian has ${h0.length} entries, expected ${cols}×${cols}`);
    // Column order: natural, or act-order (decreasing diagonal).
    const order = new Int32Array(cols);
    for (let j = 0; j < cols; j++) order[j] = j;
    const diag = new Float64Array(cols);
    for (let j = 0; j < cols; j++) diag[j] = h0[j * cols + j];
    if (settings.actOrder ?? true) {
      const idx = Array.from(order).sort((a, b) => diag[b] - diag[a] || a - b);
      order.set(idx);
    }
    // Permuted, dampened H; dead columns get a unit diagonal (their error is not propagated).
    let meanDiag = 0;
    for (let j = 0; j < cols; j++) meanDiag += diag[j];
    meanDiag /= cols;
    if (!(meanDiag > 0) || !Number.isFinite(meanDiag)) meanDiag = 1;
    let u: Float64Array | undefined;
    for (let attempt = 0; attempt < 8 && !u; attempt++) {
      const lambda = dampRel * meanDiag * dampFactor;
      const hp = new Float64Array(cols * cols);
      let dead = 0;
      for (let a = 0; a < cols; a++) {
        const ja = order[a];
        const isDead = !(diag[ja] > 0);
        if (isDead) dead++;
        const src = ja * cols;
        const dst = a * cols;
        for (let b = 0; b < cols; b++) {
          const jb = order[b];
          hp[dst + b] = isDead || !(diag[jb] > 0) ? 0 : h0[src + jb];
        }
        hp[dst + a] = (isDead ? meanDiag : diag[ja]) + lambda;
      }
      if (g === 0 && attempt === 0) deadColumns = dead;
      u = engine && cols > 256 ? await upperCholeskyOfInverseWith(hp, cols, engine) : upperCholeskyOfInverse(hp, cols);
      if (!u) dampFactor *= 10;
    }
    if (!u) throw new RangeError('gptq: the Hessian is not positive definite even after dampening');
    // Position of each column in the sweep, and the group a column's first visit opens.
    const posOf = new Int32Array(cols);
    for (let a = 0; a < cols; a++) posOf[order[a]] = a;
    const groupCols = members.map((m) => Int32Array.from(m.map((j) => posOf[j])));
    const colGroupPerm = new Int32Array(cols);
    for (let a = 0; a < cols; a++) colGroupPerm[a] = colGroup[order[a]];

    const sweep: Sweep = { problem, u, order, colGroupPerm, groupCols, rowStart: g * rowsPerH, rowEnd: (g + 1) * rowsPerH, B, range, params, out: { q, scales, zeroPoints } };
    if (engine && rowsPerH * cols * cols > ENGINE_SWEEP_MADDS) await sweepRowsEngine(sweep, engine);
    else sweepRows(sweep);
  }
  return { q, scales, zeroPoints, deadColumns, dampFactor };
}

const ROW_CHUNK = 16;
const COL_TILE = 256;

/** One Hessian group's sweep: what both sweep kernels take. */
interface Sweep {
  problem: GptqProblem;
  /** Upper Cholesky factor of H⁻¹ in sweep order. */
  u: Float64Array;
  /** Sweep position → original column. */
  order: Int32Array;
  /** Column group of each sweep position, and the sweep positions of each column group. */
  colGroupPerm: Int32Array;
  groupCols: readonly Int32Array[];
  /** Rows [rowStart, rowEnd) share this H. */
  rowStart: number;
  rowEnd: number;
  /** Columns per lazy block update. */
  B: number;
  range: QuantRange;
  params: (lo: number, hi: number) => { scale: number; zeroPoint: number };
  out: { q: Int16Array; scales: Float32Array; zeroPoints: Int32Array };
}

function sweepRows(sw: Sweep): void {
  const { problem, u, order, colGroupPerm, groupCols, rowStart, rowEnd, B, range, params, out } = sw;
  const { cols, colGroups } = problem;
  const { q, scales, zeroPoints } = out;
  const w = problem.w;
  const chunk = new Float64Array(ROW_CHUNK * cols);
  const err = new Float64Array(ROW_CHUNK * B);
  const opened = new Uint8Array(ROW_CHUNK * colGroups);
  for (let r0 = rowStart; r0 < rowEnd; r0 += ROW_CHUNK) {
    const nr = Math.min(ROW_CHUNK, rowEnd - r0);
    // Load the rows in sweep order.
    for (let r = 0; r < nr; r++) {
      const src = (r0 + r) * cols;
      const dst = r * cols;
      for (let a = 0; a < cols; a++) chunk[dst + a] = w[src + order[a]];
    }
    opened.fill(0);
    for (let i1 = 0; i1 < cols; i1 += B) {
      const i2 = Math.min(cols, i1 + B);
      const nb = i2 - i1;
      // Sweep inside the block, row by row (rows are independent; U is shared).
      for (let r = 0; r < nr; r++) {
        const row = r * cols;
        const gRow = (r0 + r) * colGroups;
        const er = r * B;
        for (let a = i1; a < i2; a++) {
          const cg = colGroupPerm[a];
          if (!opened[r * colGroups + cg]) {
            opened[r * colGroups + cg] = 1;
            let lo = Infinity;
            let hi = -Infinity;
            for (const p of groupCols[cg]) {
              const v = chunk[row + p];
              if (v < lo) lo = v;
              if (v > hi) hi = v;
            }
            const pr = params(Math.fround(lo), Math.fround(hi));
            scales[gRow + cg] = pr.scale;
            zeroPoints[gRow + cg] = pr.zeroPoint;
          }
          const s = scales[gRow + cg];
          const z = zeroPoints[gRow + cg];
          const x = chunk[row + a];
          const qi = quantizeValue(x, s, z, range);
          const deq = Math.fround((qi - z) * s);
          q[(r0 + r) * cols + order[a]] = qi;
          const ua = a * cols;
          const e = (x - deq) / u[ua + a];
          err[er + a - i1] = e;
          for (let b = a + 1; b < i2; b++) chunk[row + b] -= e * u[ua + b];
        }
      }
      if (i2 >= cols) continue;
      // Lazy update of the remaining columns: W[:, i2:] −= Err · U[i1:i2, i2:], tiled over columns.
      for (let t0 = i2; t0 < cols; t0 += COL_TILE) {
        const t1 = Math.min(cols, t0 + COL_TILE);
        for (let r = 0; r < nr; r++) {
          const row = r * cols;
          const er = r * B;
          let b = 0;
          for (; b + 3 < nb; b += 4) {
            const e0 = err[er + b], e1 = err[er + b + 1], e2 = err[er + b + 2], e3 = err[er + b + 3];
            const u0 = (i1 + b) * cols, u1 = u0 + cols, u2 = u1 + cols, u3 = u2 + cols;
            for (let j = t0; j < t1; j++) chunk[row + j] -= e0 * u[u0 + j] + e1 * u[u1 + j] + e2 * u[u2 + j] + e3 * u[u3 + j];
          }
          for (; b < nb; b++) {
            const e0 = err[er + b];
            const u0 = (i1 + b) * cols;
            for (let j = t0; j < t1; j++) chunk[row + j] -= e0 * u[u0 + j];
          }
        }
      }
    }
  }
}

/**
 * The sweep for large layers: every row of the group at once in float32, the in-block sweep in JS, and
 * the lazy update W[:, i2:] −= Err · U[i1:i2, i2:] as one engine product per block.
 */
async function sweepRowsEngine(sw: Sweep, engine: MatMulEngine): Promise<void> {
  const { problem, u, order, colGroupPerm, groupCols, rowStart, rowEnd, B, range, params, out } = sw;
  const { cols, colGroups } = problem;
  const { q, scales, zeroPoints } = out;
  const R = rowEnd - rowStart;
  const w = new Float32Array(R * cols);
  for (let r = 0; r < R; r++) {
    const src = (rowStart + r) * cols;
    for (let a = 0; a < cols; a++) w[r * cols + a] = problem.w[src + order[a]];
  }
  const opened = new Uint8Array(R * colGroups);
  const row = new Float64Array(B);
  for (let i1 = 0; i1 < cols; i1 += B) {
    const i2 = Math.min(cols, i1 + B);
    const nb = i2 - i1;
    const err = new Float32Array(R * nb);
    for (let r = 0; r < R; r++) {
      const o = r * cols;
      const gRow = (rowStart + r) * colGroups;
      for (let b = 0; b < nb; b++) row[b] = w[o + i1 + b];
      for (let a = i1; a < i2; a++) {
        const cg = colGroupPerm[a];
        if (!opened[r * colGroups + cg]) {
          opened[r * colGroups + cg] = 1;
          let lo = Infinity;
          let hi = -Infinity;
          for (const p of groupCols[cg]) {
            const v = p >= i1 && p < i2 ? row[p - i1] : w[o + p];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
          }
          const pr = params(Math.fround(lo), Math.fround(hi));
          scales[gRow + cg] = pr.scale;
          zeroPoints[gRow + cg] = pr.zeroPoint;
        }
        const sc = scales[gRow + cg];
        const z = zeroPoints[gRow + cg];
        const x = row[a - i1];
        const qi = quantizeValue(x, sc, z, range);
        q[(rowStart + r) * cols + order[a]] = qi;
        const ua = a * cols;
        const e = (x - Math.fround((qi - z) * sc)) / u[ua + a];
        err[r * nb + a - i1] = e;
        for (let b = a + 1; b < i2; b++) row[b - i1] -= e * u[ua + b];
      }
    }
    if (i2 >= cols) break;
    const rest = cols - i2;
    const ub = new Float32Array(nb * rest);
    for (let b = 0; b < nb; b++) {
      const o = (i1 + b) * cols + i2;
      for (let j = 0; j < rest; j++) ub[b * rest + j] = u[o + j];
    }
    const upd = await engine(err, ub, R, nb, rest);
    for (let r = 0; r < R; r++) {
      const o = r * cols + i2;
      const ou = r * rest;
      for (let j = 0; j < rest; j++) w[o + j] -= upd[ou + j];
    }
  }
}

/** Σ_rows Δwᵀ H Δw for Δw = wq − w on the canonical layout (optionally on every `stride`-th row, scaled up). */
export function layerOutputError(w: ArrayLike<number>, wq: ArrayLike<number>, rows: number, cols: number, hessians: readonly HessianMatrix[], stride = 1): number {
  const per = rowOutputErrors(w, wq, rows, cols, hessians, stride);
  let total = 0;
  for (const e of per) total += e;
  return per.length > 0 ? (total * rows) / per.length : 0;
}

/** Δw_rᵀ H Δw_r for the rows 0, stride, 2·stride, … */
export function rowOutputErrors(w: ArrayLike<number>, wq: ArrayLike<number>, rows: number, cols: number, hessians: readonly HessianMatrix[], stride = 1): Float64Array {
  return pairedRowErrors(w, wq, wq, rows, cols, hessians, stride)[0];
}

/**
 * Δw_rᵀ H Δw_r for two candidates a, b at once (rows 0, stride, …): each row of H is loaded once for
 * four quadratic forms (two rows × two candidates).
 */
export function pairedRowErrors(w: ArrayLike<number>, a: ArrayLike<number>, b: ArrayLike<number>, rows: number, cols: number, hessians: readonly HessianMatrix[], stride = 1): [Float64Array, Float64Array] {
  const rowsPerH = rows / hessians.length;
  const sel: number[] = [];
  for (let r = 0; r < rows; r += stride) sel.push(r);
  const outA = new Float64Array(sel.length);
  const outB = new Float64Array(sel.length);
  const d = [new Float64Array(cols), new Float64Array(cols), new Float64Array(cols), new Float64Array(cols)];
  for (let n = 0; n < sel.length; n += 2) {
    const r0 = sel[n];
    const r1 = n + 1 < sel.length && Math.floor(sel[n + 1] / rowsPerH) === Math.floor(r0 / rowsPerH) ? sel[n + 1] : -1;
    const h = hessians[Math.floor(r0 / rowsPerH)];
    const [da0, db0, da1, db1] = d;
    for (let j = 0; j < cols; j++) {
      const o = r0 * cols + j;
      da0[j] = a[o] - w[o];
      db0[j] = b[o] - w[o];
      if (r1 >= 0) {
        const o1 = r1 * cols + j;
        da1[j] = a[o1] - w[o1];
        db1[j] = b[o1] - w[o1];
      } else {
        da1[j] = 0;
        db1[j] = 0;
      }
    }
    let ea0 = 0, eb0 = 0, ea1 = 0, eb1 = 0;
    for (let i = 0; i < cols; i++) {
      const oi = i * cols;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let j = 0; j < cols; j++) {
        const hv = h[oi + j];
        s0 += hv * da0[j];
        s1 += hv * db0[j];
        s2 += hv * da1[j];
        s3 += hv * db1[j];
      }
      ea0 += da0[i] * s0;
      eb0 += db0[i] * s1;
      ea1 += da1[i] * s2;
      eb1 += db1[i] * s3;
    }
    outA[n] = ea0;
    outB[n] = eb0;
    if (r1 >= 0) {
      outA[n + 1] = ea1;
      outB[n + 1] = eb1;
    } else if (n + 1 < sel.length) {
      // The next row uses another Hessian: its own pass.
      n--;
    }
  }
  return [outA, outB];
}

/**
 * The canonical GPTQ view of a weight as the rewriter quantizes it (`spec`, layout `dims`): rows are the
 * output channels, columns the reduction axis in the order of the layer-input Hessian. 2-D weights
 * ([K, N] MatMul/Gemm, [N, K] Gemm transB / MatMulNBits): block-wise specs run along the reduction axis,
 * per-channel specs along the output axis. Conv [O, C/g, kh, kw] (and 3-D): rows = O, columns
 * C/g·kh·kw (the im2col order). Returns undefined for layouts without such a view.
 */
export interface CanonicalView {
  rows: number;
  cols: number;
  /** Flat index in the original layout of canonical (row, col). */
  index: (row: number, col: number) => number;
}

export function canonicalView(dims: readonly number[], spec: Pick<WeightQuantSpec, 'granularity' | 'axis'>): CanonicalView | undefined {
  if (spec.granularity === 'tensor') return undefined;
  const axis = spec.axis < 0 ? spec.axis + dims.length : spec.axis;
  if (dims.length === 2) {
    const reduction = spec.granularity === 'block' ? axis : 1 - axis;
    if (reduction === 1) return { rows: dims[0], cols: dims[1], index: (r, c) => r * dims[1] + c };
    return { rows: dims[1], cols: dims[0], index: (r, c) => c * dims[1] + r };
  }
  if (dims.length === 3 || dims.length === 4) {
    // Conv: per channel on axis 0, or blocks along the input-channel axis 1.
    if ((spec.granularity === 'channel' && axis !== 0) || (spec.granularity === 'block' && axis !== 1)) return undefined;
    const cols = dims.slice(1).reduce((a, b) => a * b, 1);
    return { rows: dims[0], cols, index: (r, c) => r * cols + c };
  }
  return undefined;
}

export interface GptqWeightResult {
  quantized: QuantizedWeight;
  /** Σ Δwᵀ H Δw of round-to-nearest and of the result (H undampened; estimated on a row sample for large layers). */
  errorRtn: number;
  errorGptq: number;
  deadColumns: number;
  /** Rows where round-to-nearest had the lower output error and was kept (GPTQ is greedy, not optimal). */
  rtnRows: number;
}

/** A weight in the canonical GPTQ layout, with the maps back to the rewriter's layout. */
export interface CanonicalWeight {
  problem: Omit<GptqProblem, 'hessians'>;
  /** Original flat index and quantization group of each canonical element. */
  idx: Int32Array;
  gid: Int32Array;
}

/** The canonical problem of a weight laid out as the rewriter quantizes it, or undefined (no view). */
export function canonicalWeight(w: Float32Array, dims: readonly number[], spec: WeightQuantSpec): CanonicalWeight | undefined {
  const view = canonicalView(dims, spec);
  if (!view || (spec.bits !== 4 && spec.bits !== 8)) return undefined;
  const { rows, cols, index } = view;
  const layout = groupLayout(dims, spec);
  const idx = new Int32Array(rows * cols);
  const gid = new Int32Array(rows * cols);
  const cw = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = index(r, c);
      idx[r * cols + c] = i;
      gid[r * cols + c] = layout.groupOf(i);
      cw[r * cols + c] = w[i];
    }
  }
  // Column groups, read off row 0 (the partition is the same for every row).
  const g0 = new Map<number, number>();
  const colGroup = new Int32Array(cols);
  for (let c = 0; c < cols; c++) {
    const g = gid[c];
    let k = g0.get(g);
    if (k === undefined) g0.set(g, (k = g0.size));
    colGroup[c] = k;
  }
  return { problem: { w: cw, rows, cols, colGroup, colGroups: g0.size, bits: spec.bits, symmetric: spec.symmetric }, idx, gid };
}

/** Above this many multiply-adds, Σ Δwᵀ H Δw is estimated on `errorRows` rows instead of computed for every row. */
const EXACT_ERROR_MADDS = 2 ** 27;

/**
 * Put a canonical GPTQ result into the rewriter's layout, keeping round-to-nearest (`rtn`) for the rows
 * where it has the lower Δwᵀ H Δw: per row when the errors are cheap to compute exactly, otherwise for
 * the whole layer by the errors of a row sample. The result is never worse than RTN on the calibration
 * Hessian (per row, or on the sample).
 */
export function placeGptq(c: CanonicalWeight, res: GptqResult, rtn: QuantizedWeight, hessians: readonly HessianMatrix[], errorRows = 64): Omit<GptqWeightResult, 'deadColumns'> {
  const { rows, cols, colGroups, colGroup } = c.problem;
  const { idx, gid } = c;
  const crtn = new Float32Array(rows * cols);
  for (let e = 0; e < rows * cols; e++) crtn[e] = Math.fround((rtn.q[idx[e]] - rtn.zeroPoints[gid[e]]) * rtn.scales[gid[e]]);
  const deq = dequantizeGptq(res, c.problem);
  const exact = rows * cols * cols <= EXACT_ERROR_MADDS;
  const stride = exact ? 1 : Math.max(1, Math.floor(rows / Math.max(1, errorRows)));
  const [eR, eG] = pairedRowErrors(c.problem.w, crtn, deq, rows, cols, hessians, stride);
  let sumR = 0;
  let sumG = 0;
  for (let i = 0; i < eR.length; i++) {
    sumR += eR[i];
    sumG += eG[i];
  }
  const keepRtn = new Uint8Array(rows);
  let best = 0;
  if (stride === 1) {
    for (let r = 0; r < rows; r++) {
      keepRtn[r] = eR[r] < eG[r] ? 1 : 0;
      best += Math.min(eR[r], eG[r]);
    }
  } else {
    keepRtn.fill(sumR < sumG ? 1 : 0);
    best = (Math.min(sumR, sumG) * rows) / eR.length;
  }
  const q = Int32Array.from(rtn.q);
  const scales = Float32Array.from(rtn.scales);
  const zeroPoints = Int32Array.from(rtn.zeroPoints);
  let rtnRows = 0;
  for (let r = 0; r < rows; r++) {
    if (keepRtn[r]) {
      rtnRows++;
      continue;
    }
    for (let col = 0; col < cols; col++) {
      const e = r * cols + col;
      q[idx[e]] = res.q[e];
      const g = gid[e];
      scales[g] = res.scales[r * colGroups + colGroup[col]];
      zeroPoints[g] = res.zeroPoints[r * colGroups + colGroup[col]];
    }
  }
  const quantized: QuantizedWeight = { q, scales, zeroPoints, scaleDims: rtn.scaleDims, type: rtn.type, range: rtn.range };
  return { quantized, errorRtn: (sumR * rows) / eR.length, errorGptq: best, rtnRows };
}

/**
 * GPTQ for a weight laid out as the rewriter quantizes it: the same QuantizedWeight shape as
 * `quantizeWeight(w, dims, spec)` (so every emitter can store it), never worse than `rtn` (see
 * placeGptq), or undefined when the weight has no canonical view or the Hessians do not match it.
 */
export async function gptqWeight(
  w: Float32Array,
  dims: readonly number[],
  spec: WeightQuantSpec,
  hessians: readonly HessianMatrix[],
  settings: GptqSettings & { rtn: QuantizedWeight; errorRows?: number },
): Promise<GptqWeightResult | undefined> {
  const c = canonicalWeight(w, dims, spec);
  if (!c || hessians.length === 0 || c.problem.rows % hessians.length !== 0) return undefined;
  if (hessians.some((h) => h.length !== c.problem.cols * c.problem.cols)) return undefined;
  const res = await gptq({ ...c.problem, hessians }, settings);
  return { ...placeGptq(c, res, settings.rtn, hessians, settings.errorRows), deadColumns: res.deadColumns };
}
