// WebAssembly SIMD kernels for calibration statistics (AssemblyScript; built by scripts/build-wasm.mjs
// into dist/calibrate/calibrate.wasm). The host copies a batch of float32 values to `ptr` and calls
// scan() then bin() over the same copy. Results equal the JavaScript loops of
// src/calibrate/observers/{observer,histogram}.ts: min/max exactly for finite batches (−0 < +0; a NaN/Inf batch is rescanned by the host),
// bin indices exactly (the same double arithmetic: f64(v)·inv − off, truncated), Σx² in f64 with four
// partial sums (a different summation order than the sequential JS loop: equal to ~1e-15 relative).

/**
 * scan(): writes [min, max] as f32 at out, Σx² as f64 at out + 8. The extremes use pmin/pmax (one
 * instruction each; the NaN-propagating f32x4.min costs ~5x more in V8): a NaN or ±Inf value then
 * shows in Σx² (NaN or Inf), and the host rescans such a batch carefully, as the JavaScript loop does.
 * The sign of a zero extreme is fixed up to match Math.min/Math.max (−0 < +0).
 */
export function scan(ptr: usize, n: i32, out: usize): void {
  let vmin = f32x4.splat(Infinity);
  let vmax = f32x4.splat(-Infinity);
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  let s2 = f64x2.splat(0);
  let s3 = f64x2.splat(0);
  // Lanes that ever held −0 / +0 (bit patterns 0x80000000 / 0).
  let negZero = i32x4.splat(0);
  let posZero = i32x4.splat(0);
  const nz = i32x4.splat(0x80000000);
  const pz = i32x4.splat(0);
  const n8 = n & ~7;
  let k = 0;
  for (; k < n8; k += 8) {
    const p = ptr + (<usize>k << 2);
    const a = v128.load(p);
    const b = v128.load(p, 16);
    vmin = f32x4.pmin(vmin, f32x4.pmin(a, b));
    vmax = f32x4.pmax(vmax, f32x4.pmax(a, b));
    negZero = v128.or(negZero, v128.or(i32x4.eq(a, nz), i32x4.eq(b, nz)));
    posZero = v128.or(posZero, v128.or(i32x4.eq(a, pz), i32x4.eq(b, pz)));
    const a0 = f64x2.promote_low_f32x4(a);
    const a1 = f64x2.promote_low_f32x4(i32x4.shuffle(a, a, 2, 3, 0, 1));
    const b0 = f64x2.promote_low_f32x4(b);
    const b1 = f64x2.promote_low_f32x4(i32x4.shuffle(b, b, 2, 3, 0, 1));
    s0 = f64x2.add(s0, f64x2.mul(a0, a0));
    s1 = f64x2.add(s1, f64x2.mul(a1, a1));
    s2 = f64x2.add(s2, f64x2.mul(b0, b0));
    s3 = f64x2.add(s3, f64x2.mul(b1, b1));
  }
  let lo = min(min(f32x4.extract_lane(vmin, 0), f32x4.extract_lane(vmin, 1)), min(f32x4.extract_lane(vmin, 2), f32x4.extract_lane(vmin, 3)));
  let hi = max(max(f32x4.extract_lane(vmax, 0), f32x4.extract_lane(vmax, 1)), max(f32x4.extract_lane(vmax, 2), f32x4.extract_lane(vmax, 3)));
  let hasNegZero = v128.any_true(negZero);
  let hasPosZero = v128.any_true(posZero);
  const s = f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3));
  let ss = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; k < n; k++) {
    const v = load<f32>(ptr + (<usize>k << 2));
    const bits = reinterpret<u32>(v);
    if (bits == 0x80000000) hasNegZero = true;
    if (bits == 0) hasPosZero = true;
    lo = min(lo, v);
    hi = max(hi, v);
    const d = <f64>v;
    ss += d * d;
  }
  // Math.min/Math.max order zeros: the minimum is −0 if any −0 was seen, the maximum +0 if any +0 was.
  if (lo == 0) lo = hasNegZero ? -0.0 : 0.0;
  if (hi == 0) hi = hasPosZero ? 0.0 : -0.0;
  store<f32>(out, lo);
  store<f32>(out, hi, 4);
  store<f64>(out, ss, 8);
}

@inline function bump(h: usize, i: i32): void {
  const a = h + (<usize>i << 2);
  store<u32>(a, load<u32>(a) + 1);
}

/**
 * bin(): counts[floor(f64(v)·inv − off)] += 1 for every value (all known to land in [0, bins)), into
 * `bins` u32 counts at hist. Four interleaved count arrays (at hist + 4·bins·j) break the
 * store-to-load chains of runs of equal values; they are summed into the first at the end. The
 * caller zeroes 4·bins counts first.
 */
export function bin(ptr: usize, n: i32, inv: f64, off: f64, hist: usize, bins: i32): void {
  const stride = <usize>bins << 2;
  const h0 = hist;
  const h1 = hist + stride;
  const h2 = hist + 2 * stride;
  const h3 = hist + 3 * stride;
  const vinv = f64x2.splat(inv);
  const voff = f64x2.splat(off);
  const n4 = n & ~3;
  let k = 0;
  for (; k < n4; k += 4) {
    const v = v128.load(ptr + (<usize>k << 2));
    const a = f64x2.sub(f64x2.mul(f64x2.promote_low_f32x4(v), vinv), voff);
    const b = f64x2.sub(f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)), vinv), voff);
    const ia = i32x4.trunc_sat_f64x2_s_zero(a);
    const ib = i32x4.trunc_sat_f64x2_s_zero(b);
    bump(h0, i32x4.extract_lane(ia, 0));
    bump(h1, i32x4.extract_lane(ia, 1));
    bump(h2, i32x4.extract_lane(ib, 0));
    bump(h3, i32x4.extract_lane(ib, 1));
  }
  for (; k < n; k++) bump(h0, <i32>(<f64>load<f32>(ptr + (<usize>k << 2)) * inv - off));
  for (let i = 0; i < bins; i++) {
    const o = <usize>i << 2;
    store<u32>(h0 + o, load<u32>(h0 + o) + load<u32>(h1 + o) + load<u32>(h2 + o) + load<u32>(h3 + o));
  }
}
