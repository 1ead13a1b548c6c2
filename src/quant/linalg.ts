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
