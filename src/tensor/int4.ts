/**
 * 4-bit packing as ONNX stores it: two values a byte, first element in the low nibble,
 * an odd count padded with a zero high nibble.
 */
export function packInt4(values: Int8Array | Uint8Array): Uint8Array {
  const n = values.length;
  const out = new Uint8Array((n + 1) >> 1);
  for (let i = 0; i < n; i += 2) {
    const lo = values[i] & 0x0f;
    const hi = i + 1 < n ? values[i + 1] & 0x0f : 0;
    out[i >> 1] = lo | (hi << 4);
  }
  return out;
}

/** Unpack `n` signed 4-bit values (two's complement) from packed bytes. */
export function unpackInt4(packed: Uint8Array, n: number): Int8Array {
  const out = new Int8Array(n);
  for (let i = 0; i < n; i++) {
    const b = packed[i >> 1];
    const nib = i & 1 ? b >> 4 : b & 0x0f;
    out[i] = nib >= 8 ? nib - 16 : nib;
  }
  return out;
}

/** Unpack `n` unsigned 4-bit values from packed bytes. */
export function unpackUint4(packed: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const b = packed[i >> 1];
    out[i] = i & 1 ? b >> 4 : b & 0x0f;
  }
  return out;
}
