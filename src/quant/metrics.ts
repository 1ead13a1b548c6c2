/**
 * Output losses and fidelity metrics over flat float32 outputs. Logits are [rows, classes]
 * row-major (any leading dims folded into rows). Accumulators let callers stream batches.
 */

/** Numerically stable log-softmax of one row into `out`. */
export function logSoftmaxRow(x: Float32Array, offset: number, n: number, out: Float64Array): void {
  let m = -Infinity;
  for (let j = 0; j < n; j++) if (x[offset + j] > m) m = x[offset + j];
  let s = 0;
  for (let j = 0; j < n; j++) s += Math.exp(x[offset + j] - m);
  const lse = m + Math.log(s);
  for (let j = 0; j < n; j++) out[j] = x[offset + j] - lse;
}

/** Mean over rows of KL(softmax(ref) ‖ softmax(test)). */
export function klDivergence(ref: Float32Array, test: Float32Array, classes: number): number {
  const rows = ref.length / classes;
  const lp = new Float64Array(classes);
  const lq = new Float64Array(classes);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    logSoftmaxRow(ref, r * classes, classes, lp);
    logSoftmaxRow(test, r * classes, classes, lq);
    let kl = 0;
    for (let j = 0; j < classes; j++) {
      const p = Math.exp(lp[j]);
      if (p > 0) kl += p * (lp[j] - lq[j]);
    }
    total += kl;
  }
  return rows > 0 ? total / rows : 0;
}

/** Mean cross-entropy of logits against integer labels (one label per row). */
export function crossEntropy(logits: Float32Array, labels: ArrayLike<number | bigint>, classes: number): number {
  const rows = logits.length / classes;
  const lq = new Float64Array(classes);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    logSoftmaxRow(logits, r * classes, classes, lq);
    total -= lq[Number(labels[r])];
  }
  return rows > 0 ? total / rows : 0;
}

export function meanSquaredError(ref: Float32Array, test: Float32Array): number {
  let s = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = test[i] - ref[i];
    s += d * d;
  }
  return ref.length > 0 ? s / ref.length : 0;
}

export function maxAbsError(ref: Float32Array, test: Float32Array): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(test[i] - ref[i]);
    if (d > m || Number.isNaN(d)) m = d;
  }
  return m;
}

/** Index of the largest value in each row. */
export function argmaxRows(x: Float32Array, classes: number): Int32Array {
  const rows = x.length / classes;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bv = -Infinity;
    for (let j = 0; j < classes; j++) {
      const v = x[r * classes + j];
      if (v > bv) {
        bv = v;
        best = j;
      }
    }
    out[r] = best;
  }
  return out;
}

/** Whether label is among the k largest logits of each row; returns the count of hits. */
export function topKHits(logits: Float32Array, labels: ArrayLike<number | bigint>, classes: number, k: number): number {
  const rows = logits.length / classes;
  let hits = 0;
  for (let r = 0; r < rows; r++) {
    const target = logits[r * classes + Number(labels[r])];
    let greater = 0;
    for (let j = 0; j < classes; j++) if (logits[r * classes + j] > target) greater++;
    if (greater < k) hits++;
  }
  return hits;
}

/**
 * Streaming fidelity of a test output against a reference: cosine similarity, SQNR in dB
 * (10·log10(Σref² / Σ(ref−test)²)), max abs error, MSE, and top-1 agreement for [rows, classes].
 */
export class FidelityAccumulator {
  private dot = 0;
  private refSq = 0;
  private testSq = 0;
  private errSq = 0;
  private maxAbs = 0;
  private n = 0;
  private agree = 0;
  private rows = 0;

  update(ref: Float32Array, test: Float32Array, classes?: number): void {
    for (let i = 0; i < ref.length; i++) {
      const a = ref[i];
      const b = test[i];
      const d = b - a;
      this.dot += a * b;
      this.refSq += a * a;
      this.testSq += b * b;
      this.errSq += d * d;
      const ad = Math.abs(d);
      if (ad > this.maxAbs || Number.isNaN(ad)) this.maxAbs = ad;
    }
    this.n += ref.length;
    if (classes && classes > 1) {
      const ra = argmaxRows(ref, classes);
      const ta = argmaxRows(test, classes);
      for (let r = 0; r < ra.length; r++) if (ra[r] === ta[r]) this.agree++;
      this.rows += ra.length;
    }
  }

  result(): Fidelity {
    const denom = Math.sqrt(this.refSq) * Math.sqrt(this.testSq);
    const cosine = denom > 0 ? this.dot / denom : this.refSq === this.testSq ? 1 : 0;
    const sqnrDb = this.errSq > 0 ? 10 * Math.log10(this.refSq / this.errSq) : Infinity;
    return {
      cosine,
      sqnrDb,
      maxAbsError: this.maxAbs,
      mse: this.n > 0 ? this.errSq / this.n : 0,
      top1Agreement: this.rows > 0 ? this.agree / this.rows : undefined,
      elements: this.n,
    };
  }
}

export interface Fidelity {
  cosine: number;
  /** +Infinity when outputs are identical. */
  sqnrDb: number;
  maxAbsError: number;
  mse: number;
  top1Agreement?: number;
  elements: number;
}

/** Perplexity from logits [rows, vocab] and next-token labels; labels < 0 are ignored (padding). */
export function perplexity(logits: Float32Array, labels: ArrayLike<number | bigint>, vocab: number): { perplexity: number; tokens: number; nll: number } {
  const rows = logits.length / vocab;
  const lq = new Float64Array(vocab);
  let nll = 0;
  let tokens = 0;
  for (let r = 0; r < rows; r++) {
    const y = Number(labels[r]);
    if (y < 0) continue;
    logSoftmaxRow(logits, r * vocab, vocab, lq);
    nll -= lq[y];
    tokens++;
  }
  const mean = tokens > 0 ? nll / tokens : 0;
  return { perplexity: Math.exp(mean), tokens, nll: mean };
}

/** Spearman rank correlation (average ranks for ties). */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ra = ranks(a);
  const rb = ranks(b);
  const n = ra.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += ra[i];
    mb += rb[i];
  }
  ma /= n;
  mb /= n;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < n; i++) {
    num += (ra[i] - ma) * (rb[i] - mb);
    da += (ra[i] - ma) ** 2;
    db += (rb[i] - mb) ** 2;
  }
  return da > 0 && db > 0 ? num / Math.sqrt(da * db) : 0;
}

function ranks(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((i, j) => x[i] - x[j]);
  const r = new Float64Array(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && x[idx[j + 1]] === x[idx[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[idx[k]] = avg;
    i = j + 1;
  }
  return r;
}

/**
 * The one drop formula of qtool (quantize --max-drop, search, eval --max-drop): how much worse `value`
 * is than `reference`. 'points': absolute percentage points of a fraction ((r − v)·100: accuracy,
 * agreement); 'percent': percent relative to |r| ((r − v)/|r|·100; (v − r)/|r|·100 when lower is
 * better, e.g. perplexity). A zero reference has no relative drop: 0.
 */
export function metricDrop(reference: number, value: number, unit: 'points' | 'percent', isLowerBetter = false): number {
  if (unit === 'points') return (reference - value) * 100;
  if (reference === 0) return 0;
  return ((isLowerBetter ? value - reference : reference - value) / Math.abs(reference)) * 100;
}

/**
 * Greedy-decode agreement of sequence outputs [N, T, C] (CTC recognizers): per sequence, the argmax
 * path over C with repeats merged and the blank dropped — the blank taken as the reference's most
 * frequent argmax class over the batch (CTC outputs are mostly blank) — compared between reference and
 * test. Returns how many of the N sequences decode identically.
 */
export function sequenceAgreement(ref: Float32Array, test: Float32Array, steps: number, classes: number): { agree: number; total: number } {
  const ra = argmaxRows(ref, classes);
  const ta = argmaxRows(test, classes);
  const freq = new Map<number, number>();
  for (const k of ra) freq.set(k, (freq.get(k) ?? 0) + 1);
  let blank = 0;
  let best = -1;
  for (const [k, c] of freq) if (c > best || (c === best && k < blank)) [blank, best] = [k, c];
  const total = Math.floor(ra.length / steps);
  const decode = (a: Int32Array, s: number) => {
    const out: number[] = [];
    let prev = -1;
    for (let t = 0; t < steps; t++) {
      const k = a[s * steps + t];
      if (k !== prev && k !== blank) out.push(k);
      prev = k;
    }
    return out.join(',');
  };
  let agree = 0;
  for (let s = 0; s < total; s++) if (decode(ra, s) === decode(ta, s)) agree++;
  return { agree, total };
}
