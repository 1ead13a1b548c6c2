/**
 * Dense symmetric-positive-definite linear algebra for the layer-wise reconstruction algorithms (GPTQ):
 * row-major Float64Array matrices, loops blocked so each inner loop runs over contiguous memory and
 * reuses a loaded row for several outputs. No allocation in the hot loops.
 */

/**
 * In-place lower Cholesky factor of the n×n SPD matrix `a` (row-major; the upper triangle is zeroed):
 * a = L Lᵀ. Row-oriented (Crout) with four rows computed against each earlier row at once.
 * Returns false when a pivot is not positive (the matrix is not positive definite).
 */
export function choleskyInPlace(a: Float64Array, n: number): boolean {
  for (let i0 = 0; i0 < n; i0 += 4) {
    const i1 = Math.min(n, i0 + 4);
    // Columns j < i0: four rows against row j at once (one load of row j serves four dot products).
    const full = i1 - i0 === 4;
    const o0 = i0 * n, o1 = o0 + n, o2 = o1 + n, o3 = o2 + n;
    for (let j = 0; j < i0; j++) {
      const oj = j * n;
      const d = a[oj + j];
      if (full) {
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (let k = 0; k < j; k++) {
          const v = a[oj + k];
          s0 += a[o0 + k] * v;
          s1 += a[o1 + k] * v;
          s2 += a[o2 + k] * v;
          s3 += a[o3 + k] * v;
        }
        a[o0 + j] = (a[o0 + j] - s0) / d;
        a[o1 + j] = (a[o1 + j] - s1) / d;
        a[o2 + j] = (a[o2 + j] - s2) / d;
        a[o3 + j] = (a[o3 + j] - s3) / d;
        continue;
      }
      for (let i = i0; i < i1; i++) {
        const oi = i * n;
        let s = 0;
        for (let k = 0; k < j; k++) s += a[oi + k] * a[oj + k];
        a[oi + j] = (a[oi + j] - s) / d;
      }
    }
    // The small diagonal block.
    for (let i = i0; i < i1; i++) {
      const oi = i * n;
      for (let j = i0; j <= i; j++) {
        const oj = j * n;
        let s = a[oi + j];
        for (let k = 0; k < j; k++) s -= a[oi + k] * a[oj + k];
        if (i === j) {
          if (!(s > 0) || !Number.isFinite(s)) return false;
          a[oi + i] = Math.sqrt(s);
        } else {
          a[oi + j] = s / a[oj + j];
        }
      }
    }
  }
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) a[i * n + j] = 0;
  return true;
}

/**
 * In-place inverse of a lower-triangular n×n matrix (row-major). Row i of L⁻¹ is
 * −(1/L_ii) Σ_{k<i} L_ik · row k of L⁻¹ (plus 1/L_ii on the diagonal): contiguous row updates.
 */
export function invertLowerInPlace(l: Float64Array, n: number): void {
  const acc = new Float64Array(4 * n);
  for (let i0 = 0; i0 < n; i0 += 4) {
    const m = Math.min(4, n - i0);
    acc.fill(0);
    // Contributions of the rows k < i0 (already inverted), four result rows per load of row k.
    for (let k = 0; k < i0; k++) {
      const r = k * n;
      const c0 = l[i0 * n + k];
      const c1 = m > 1 ? l[(i0 + 1) * n + k] : 0;
      const c2 = m > 2 ? l[(i0 + 2) * n + k] : 0;
      const c3 = m > 3 ? l[(i0 + 3) * n + k] : 0;
      for (let j = 0; j <= k; j++) {
        const v = l[r + j];
        acc[j] += c0 * v;
        acc[n + j] += c1 * v;
        acc[2 * n + j] += c2 * v;
        acc[3 * n + j] += c3 * v;
      }
    }
    // Inside the block, in order.
    for (let a = 0; a < m; a++) {
      const i = i0 + a;
      const oi = i * n;
      const row = a * n;
      for (let k = i0; k < i; k++) {
        const c = l[oi + k];
        const r = k * n;
        for (let j = 0; j <= k; j++) acc[row + j] += c * l[r + j];
      }
      const inv = 1 / l[oi + i];
      for (let j = 0; j < i; j++) l[oi + j] = -acc[row + j] * inv;
      l[oi + i] = inv;
    }
  }
}

/**
 * The upper-triangular U with H⁻¹ = Uᵀ U (what GPTQ sweeps with), computed without forming H⁻¹:
 * with J the reversal permutation, chol(J H J) = L gives H = R Rᵀ for the upper R = J L J, so
 * H⁻¹ = R⁻ᵀ R⁻¹ and U = R⁻¹ = J L⁻¹ J. One Cholesky plus one triangular inverse (2n³/3 flops
 * instead of the 4n³/3 of chol → cholesky_inverse → chol). `h` is consumed. Returns undefined when
 * H is not positive definite.
 */
export function upperCholeskyOfInverse(h: Float64Array, n: number): Float64Array | undefined {
  // Reverse rows and columns in place: (J H J)_ij = H_{n-1-i, n-1-j}, i.e. reverse the flat array.
  h.reverse();
  if (!choleskyInPlace(h, n)) return undefined;
  invertLowerInPlace(h, n);
  h.reverse();
  return h;
}

/**
 * C = A·B for row-major float32 A [m, k], B [k, n]: the heavy products of the blocked factorizations and
 * of GPTQ's lazy updates. Injected so quant/ stays pure: the pipeline passes an onnxruntime MatMul
 * session (MLAS, 10–20x this file's JS kernel); `jsMatMul` is the fallback.
 */
export type MatMulEngine = (a: Float32Array, b: Float32Array, m: number, k: number, n: number) => Promise<Float32Array>;

/** Blocked JS matmul (four rows of A per pass over a row of B). */
export function jsMatMulSync(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  const c = new Float32Array(m * n);
  const acc = new Float64Array(4 * n);
  for (let i0 = 0; i0 < m; i0 += 4) {
    const rows = Math.min(4, m - i0);
    acc.fill(0);
    for (let p = 0; p < k; p++) {
      const a0 = a[i0 * k + p];
      const a1 = rows > 1 ? a[(i0 + 1) * k + p] : 0;
      const a2 = rows > 2 ? a[(i0 + 2) * k + p] : 0;
      const a3 = rows > 3 ? a[(i0 + 3) * k + p] : 0;
      const ob = p * n;
      for (let j = 0; j < n; j++) {
        const v = b[ob + j];
        acc[j] += a0 * v;
        acc[n + j] += a1 * v;
        acc[2 * n + j] += a2 * v;
        acc[3 * n + j] += a3 * v;
      }
    }
    for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) c[(i0 + r) * n + j] = acc[r * n + j];
  }
  return c;
}

export const jsMatMul: MatMulEngine = async (a, b, m, k, n) => jsMatMulSync(a, b, m, k, n);

/** Rows r0..r1, columns c0..c1 of a row-major n-column matrix, as float32 (optionally transposed). */
function block(a: Float64Array, n: number, r0: number, r1: number, c0: number, c1: number, transpose = false): Float32Array {
  const h = r1 - r0;
  const w = c1 - c0;
  const out = new Float32Array(h * w);
  if (!transpose) {
    for (let r = 0; r < h; r++) {
      const o = (r0 + r) * n + c0;
      for (let c = 0; c < w; c++) out[r * w + c] = a[o + c];
    }
  } else {
    for (let r = 0; r < h; r++) {
      const o = (r0 + r) * n + c0;
      for (let c = 0; c < w; c++) out[c * h + r] = a[o + c];
    }
  }
  return out;
}

/**
 * Blocked right-looking Cholesky (LAPACK dpotrf's order): per panel of `nb` columns, the diagonal
 * block in JS (float64), the panel as A21·L11⁻ᵀ and the trailing update A22 −= L21·L21ᵀ through the
 * engine (float32 products, float64 storage). In place, lower; false when not positive definite.
 */
export async function choleskyBlocked(a: Float64Array, n: number, engine: MatMulEngine, nb = 256): Promise<boolean> {
  if (n <= nb) return choleskyInPlace(a, n);
  for (let p = 0; p < n; p += nb) {
    const e = Math.min(n, p + nb);
    const b = e - p;
    const d = new Float64Array(b * b);
    for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) d[i * b + j] = a[(p + i) * n + p + j];
    if (!choleskyInPlace(d, b)) return false;
    for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) a[(p + i) * n + p + j] = d[i * b + j];
    if (e >= n) break;
    const r = n - e;
    invertLowerInPlace(d, b);
    // L21 = A21 · L11⁻ᵀ: [r, b] · [b, b].
    const a21 = block(a, n, e, n, p, e);
    const linvT = new Float32Array(b * b);
    for (let i = 0; i < b; i++) for (let j = 0; j <= i; j++) linvT[j * b + i] = d[i * b + j];
    const l21 = await engine(a21, linvT, r, b, b);
    for (let i = 0; i < r; i++) for (let j = 0; j < b; j++) a[(e + i) * n + p + j] = l21[i * b + j];
    // A22 −= L21 · L21ᵀ.
    const l21T = new Float32Array(b * r);
    for (let i = 0; i < r; i++) for (let j = 0; j < b; j++) l21T[j * r + i] = l21[i * b + j];
    const upd = await engine(l21, l21T, r, b, r);
    for (let i = 0; i < r; i++) {
      const o = (e + i) * n + e;
      // Only the lower triangle is read later; update it (and the diagonal).
      for (let j = 0; j <= i; j++) a[o + j] -= upd[i * r + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) a[i * n + j] = 0;
  return true;
}

/**
 * Blocked inverse of a lower-triangular matrix, in place: block row I of X = L⁻¹ is
 * X_II = L_II⁻¹ (JS) and X[I, 0:I] = −X_II · (L[I, 0:I] · X[0:I, 0:I]) (two engine products).
 */
export async function invertLowerBlocked(l: Float64Array, n: number, engine: MatMulEngine, nb = 256): Promise<void> {
  if (n <= nb) return invertLowerInPlace(l, n);
  for (let p = 0; p < n; p += nb) {
    const e = Math.min(n, p + nb);
    const b = e - p;
    const d = new Float64Array(b * b);
    for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) d[i * b + j] = l[(p + i) * n + p + j];
    invertLowerInPlace(d, b);
    if (p > 0) {
      // Rows 0..p of X are final (block rows are done in order).
      const lrow = block(l, n, p, e, 0, p);
      const xtop = block(l, n, 0, p, 0, p);
      const t = await engine(lrow, xtop, b, p, p);
      const dd = new Float32Array(b * b);
      for (let i = 0; i < b * b; i++) dd[i] = d[i];
      const x = await engine(dd, t, b, b, p);
      for (let i = 0; i < b; i++) for (let j = 0; j < p; j++) l[(p + i) * n + j] = -x[i * p + j];
    }
    for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) l[(p + i) * n + p + j] = d[i * b + j];
  }
}

/** upperCholeskyOfInverse with the blocked, engine-backed factorizations (same result up to float32 round-off). */
export async function upperCholeskyOfInverseWith(h: Float64Array, n: number, engine: MatMulEngine, nb = 256): Promise<Float64Array | undefined> {
  h.reverse();
  if (!(await choleskyBlocked(h, n, engine, nb))) return undefined;
  await invertLowerBlocked(h, n, engine, nb);
  h.reverse();
  return h;
}
