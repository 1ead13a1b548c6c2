/**
 * Sample-rate conversion by a polyphase windowed-sinc filter (Kaiser window, β = 8.6: about 80 dB of
 * stop-band attenuation). The ratio is reduced to L/M; output sample n sits at input time n·M/L and is
 * the dot product of the input with one of L precomputed phases of the filter. The cut-off is
 * `rolloff` × the lower Nyquist frequency, so nothing above the output's Nyquist aliases back.
 * Each phase is normalized to unit DC gain.
 */

export interface ResampleOptions {
  /** Zero crossings of the sinc on each side (filter half-length in units of the cut-off period). */
  zeros?: number;
  /** Cut-off as a fraction of the lower Nyquist frequency. */
  rolloff?: number;
  /** Kaiser β. */
  beta?: number;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Modified Bessel function of the first kind, order 0 (series; converges fast for β ≤ 20). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 64; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

/** Phases above this count are computed per output sample instead of tabulated. */
const MAX_TABLE_PHASES = 4096;

/** Resample `x` from `fromRate` to `toRate` (Hz, positive integers). Returns `x` itself when equal. */
export function resample(x: Float32Array, fromRate: number, toRate: number, opts: ResampleOptions = {}): Float32Array {
  if (fromRate === toRate) return x;
  if (!(Number.isInteger(fromRate) && Number.isInteger(toRate) && fromRate > 0 && toRate > 0)) throw new RangeError(`resample: expected positive integer rates, got ${fromRate} → ${toRate}`);
  const g = gcd(fromRate, toRate);
  const L = toRate / g; // up
  const M = fromRate / g; // down
  const zeros = opts.zeros ?? 32;
  const rolloff = opts.rolloff ?? 0.9;
  const beta = opts.beta ?? 8.6;
  const fc = Math.min(1, L / M) * rolloff; // cut-off relative to the input Nyquist
  const half = zeros / fc; // filter half-width in input samples
  const K = Math.ceil(half);
  const taps = 2 * K + 1;
  const i0b = besselI0(beta);
  const phaseTaps = (p: number, out: Float64Array): void => {
    // Output time = base + p/L; tap j multiplies x[base + j - K]; distance t = p/L - (j - K).
    let sum = 0;
    for (let j = 0; j < taps; j++) {
      const t = p / L - (j - K);
      const r = t / half;
      if (r <= -1 || r >= 1) {
        out[j] = 0;
        continue;
      }
      const a = Math.PI * fc * t;
      const s = t === 0 ? 1 : Math.sin(a) / a;
      const v = fc * s * (besselI0(beta * Math.sqrt(1 - r * r)) / i0b);
      out[j] = v;
      sum += v;
    }
    for (let j = 0; j < taps; j++) out[j] /= sum;
  };
  const tabulate = L <= MAX_TABLE_PHASES;
  const table = tabulate ? new Float64Array(L * taps) : undefined;
  if (table) for (let p = 0; p < L; p++) phaseTaps(p, table.subarray(p * taps, (p + 1) * taps));
  const scratch = new Float64Array(taps);
  const n = Math.ceil((x.length * L) / M);
  const y = new Float32Array(n);
  const len = x.length;
  for (let i = 0; i < n; i++) {
    const pos = i * M;
    const base = Math.floor(pos / L);
    const p = pos - base * L;
    let h: Float64Array;
    let off = 0;
    if (table) {
      h = table;
      off = p * taps;
    } else {
      phaseTaps(p, scratch);
      h = scratch;
    }
    const start = base - K;
    const j0 = Math.max(0, -start);
    const j1 = Math.min(taps, len - start);
    let acc = 0;
    for (let j = j0; j < j1; j++) acc += x[start + j] * h[off + j];
    y[i] = acc;
  }
  return y;
}
