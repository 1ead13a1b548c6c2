/**
 * Streaming histogram on a power-of-two grid anchored at zero.
 *
 * Bins are [i·w, (i+1)·w) for integers i, with w = 2^e; the histogram keeps a window of B consecutive
 * bins. When a later batch falls outside the window, the window slides if the occupied span still fits;
 * otherwise w doubles and each pair of bins merges into one (exact, because grid edges nest). Hence w
 * is always the smallest power of two at which every value seen so far fits in B bins, and the counts
 * are exact grid counts: the histogram does not depend on batch size or order (re-binning approach,
 * no first min/max pass), and at least B/2 bins are occupied once two distinct values were seen.
 */
import type { HistogramSummary } from '../../documents/index.js';

export class StreamingHistogram {
  private counts: Float64Array;
  /** log2 of the bin width. */
  private e = 0;
  private w = 1;
  /** Grid index of counts[0]. */
  private i0 = 0;
  /** Occupied grid index range [imin, imax] (imin > imax: empty). */
  private imin = 1;
  private imax = 0;

  constructor(readonly binCount: number) {
    if (binCount < 4 || binCount % 2) throw new RangeError('histogram bin count must be even and ≥ 4');
    this.counts = new Float64Array(binCount);
  }

  /** No grid yet (nothing seen, or one repeated value). */
  get isEmpty(): boolean {
    return this.imin > this.imax;
  }

  /** A run of one repeated value seen before the grid exists (the grid needs two distinct values to be minimal). */
  private constValue = 0;
  private constCount = 0;
  private scratch?: Uint32Array;
  private scratch2?: [Uint32Array, Uint32Array, Uint32Array];

  /**
   * Add the values of x in [lo, hi] (the caller's batch extremes of the values it keeps); values outside
   * are skipped unless `allInside` says there are none (then no per-value check is made). `binner`
   * (the WebAssembly kernel, over its copy of x) counts all-inside batches: scratch[floor(v·inv − off)]++.
   */
  add(x: Float32Array, lo: number, hi: number, allInside = false, binner?: (inv: number, off: number, out: Uint32Array) => void): void {
    if (!(lo <= hi)) return;
    if (this.isEmpty && (this.constCount === 0 || (lo === this.constValue && hi === this.constValue)) && lo === hi) {
      // Still a single distinct value: count it, no grid yet.
      let n = 0;
      for (let k = 0; k < x.length; k++) if (x[k] === lo) n++;
      this.constValue = lo;
      this.constCount += n;
      return;
    }
    if (this.isEmpty && this.constCount > 0) {
      this.cover(Math.min(lo, this.constValue), Math.max(hi, this.constValue));
      this.counts[Math.floor(this.constValue * 2 ** -this.e) - this.i0] += this.constCount;
      this.constCount = 0;
    } else this.cover(lo, hi);
    const inv = 2 ** -this.e;
    const off = this.i0;
    // Counting into 32-bit integers is several times faster than into doubles; merged once per batch.
    const scratch = (this.scratch ??= new Uint32Array(this.binCount));
    scratch.fill(0);
    const n = x.length;
    // v·inv is exact (inv is a power of two) and v·inv − off lies in [0, B) for v in [lo, hi].
    if (allInside && binner) binner(inv, off, scratch);
    else if (allInside && n >= 4 * this.binCount) countAll(x, inv, off, scratch, (this.scratch2 ??= [new Uint32Array(this.binCount), new Uint32Array(this.binCount), new Uint32Array(this.binCount)]));
    else if (allInside) for (let k = 0; k < n; k++) scratch[(x[k] * inv - off) | 0]++;
    else {
      for (let k = 0; k < n; k++) {
        const v = x[k];
        if (v >= lo && v <= hi) scratch[(v * inv - off) | 0]++;
      }
    }
    const c = this.counts;
    for (let i = 0; i < c.length; i++) c[i] += scratch[i];
  }

  /** Make the window cover [lo, hi], sliding it or doubling the bin width as needed. */
  private cover(lo: number, hi: number): void {
    const B = this.binCount;
    if (this.isEmpty) {
      // The smallest power-of-two width at which [lo, hi] fits in B bins (fit is monotone in the width).
      let e = Math.max(-200, Math.floor(Math.log2((hi - lo) / B)) - 1);
      while (Math.floor(hi * 2 ** -e) - Math.floor(lo * 2 ** -e) + 1 > B) e++;
      this.setWidth(e);
      this.imin = Math.floor(lo * 2 ** -e);
      this.imax = Math.floor(hi * 2 ** -e);
      this.i0 = this.imin;
      return;
    }
    for (;;) {
      const jlo = Math.min(this.imin, Math.floor(lo * 2 ** -this.e));
      const jhi = Math.max(this.imax, Math.floor(hi * 2 ** -this.e));
      if (jhi - jlo + 1 <= B) {
        if (jlo < this.i0 || jhi > this.i0 + B - 1) this.slide(jlo);
        this.imin = jlo;
        this.imax = jhi;
        return;
      }
      this.coarsen();
    }
  }

  private setWidth(e: number): void {
    this.e = e;
    this.w = 2 ** e;
  }

  /** Move the window so it starts at grid index `start` (all occupied bins stay inside). */
  private slide(start: number): void {
    const next = new Float64Array(this.binCount);
    for (let i = this.imin; i <= this.imax; i++) next[i - start] = this.counts[i - this.i0];
    this.counts = next;
    this.i0 = start;
  }

  /** Double the bin width: grid bin i becomes floor(i / 2). */
  private coarsen(): void {
    const nmin = Math.floor(this.imin / 2);
    const nmax = Math.floor(this.imax / 2);
    const next = new Float64Array(this.binCount);
    for (let i = this.imin; i <= this.imax; i++) next[Math.floor(i / 2) - nmin] += this.counts[i - this.i0];
    this.counts = next;
    this.i0 = nmin;
    this.imin = nmin;
    this.imax = nmax;
    this.setWidth(this.e + 1);
  }

  /** Occupied bins only: lo = imin·w, hi = (imax+1)·w. A single repeated value gets one bin of width ~|v|·2^-23. */
  summary(): HistogramSummary | undefined {
    if (this.isEmpty) {
      if (this.constCount === 0) return undefined;
      const v = this.constValue;
      const w = 2 ** (v === 0 ? -24 : Math.floor(Math.log2(Math.abs(v))) - 23);
      const lo = Math.floor(v / w) * w;
      return { lo, hi: lo + w, counts: [this.constCount] };
    }
    const counts: number[] = [];
    for (let i = this.imin; i <= this.imax; i++) counts.push(this.counts[i - this.i0]);
    return { lo: this.imin * this.w, hi: (this.imax + 1) * this.w, counts };
  }
}

/**
 * scratch[floor(v·inv − off)] += 1 for every v in x (all known to land inside). Four interleaved count
 * arrays, summed at the end, break the store-to-load chains of runs of equal values (zeros after Relu).
 */
function countAll(x: Float32Array, inv: number, off: number, s0: Uint32Array, more: [Uint32Array, Uint32Array, Uint32Array]): void {
  const [s1, s2, s3] = more;
  s1.fill(0);
  s2.fill(0);
  s3.fill(0);
  const n = x.length;
  const n4 = n - (n % 4);
  let k = 0;
  for (; k < n4; k += 4) {
    s0[(x[k] * inv - off) | 0]++;
    s1[(x[k + 1] * inv - off) | 0]++;
    s2[(x[k + 2] * inv - off) | 0]++;
    s3[(x[k + 3] * inv - off) | 0]++;
  }
  for (; k < n; k++) s0[(x[k] * inv - off) | 0]++;
  for (let i = 0; i < s0.length; i++) s0[i] += s1[i] + s2[i] + s3[i];
}

/** Bin width of a summary. */
export function binWidth(h: HistogramSummary): number {
  return (h.hi - h.lo) / h.counts.length;
}

/**
 * The histogram of |x| with `bins` equal bins over [0, amax], resampled from a signed summary by
 * linear interpolation of the cumulative count (values spread evenly inside each source bin, the bin
 * holding amax clipped at amax).
 */
export function absHistogram(h: HistogramSummary, amax: number, bins: number): Float64Array {
  const w = binWidth(h);
  // Fold the signed grid onto |x|: a bin [a, b) with b ≤ 0 becomes (−b, −a].
  const folded = new Map<number, number>();
  const n = h.counts.length;
  let top = 0;
  for (let k = 0; k < n; k++) {
    const c = h.counts[k];
    if (!c) continue;
    const a = h.lo + k * w;
    // Grid edges are exact multiples of w, so the index is exact.
    const idx = a >= 0 ? Math.round(a / w) : Math.round(-a / w) - 1;
    folded.set(idx, (folded.get(idx) ?? 0) + c);
    if (idx + 1 > top) top = idx + 1;
  }
  const src = new Float64Array(top);
  for (const [i, c] of folded) src[i] = c;
  const out = new Float64Array(bins);
  if (!(amax > 0)) {
    out[0] = src.reduce((s, c) => s + c, 0);
    return out;
  }
  const step = amax / bins;
  // Walk source bins, splitting each one's count across the output bins it overlaps.
  for (let i = 0; i < top; i++) {
    const c = src[i];
    if (!c) continue;
    const a = i * w;
    const b = Math.min((i + 1) * w, amax);
    if (b <= a) {
      out[Math.min(bins - 1, Math.floor(a / step))] += c;
      continue;
    }
    let j = Math.min(bins - 1, Math.floor(a / step));
    let x = a;
    while (x < b && j < bins) {
      const end = j === bins - 1 ? b : Math.min(b, (j + 1) * step);
      out[j] += (c * (end - x)) / (b - a);
      x = end;
      j++;
    }
  }
  return out;
}

/** The value below which a fraction q of a histogram's mass lies (linear inside bins), for bins of `step` starting at `lo`. */
export function histogramQuantile(counts: ArrayLike<number>, lo: number, step: number, q: number): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i];
  if (total <= 0) return lo;
  const target = q * total;
  let cum = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (c > 0 && cum + c >= target) return lo + step * (i + Math.max(0, Math.min(1, (target - cum) / c)));
    cum += c;
  }
  return lo + step * counts.length;
}
