import { describe, expect, it } from 'vitest';
import { packInt4, unpackInt4, unpackUint4 } from '../../src/tensor/index.js';

describe('int4 packing (low nibble first)', () => {
  it('packs two values a byte, first value in the low nibble', () => {
    expect([...packInt4(Int8Array.from([1, 2]))]).toEqual([0x21]);
    expect([...packInt4(Int8Array.from([-1, -8]))]).toEqual([0x8f]);
    expect([...packInt4(Int8Array.from([7, -8, 0, -1]))]).toEqual([0x87, 0xf0]);
    expect([...packInt4(Uint8Array.from([15, 0, 9]))]).toEqual([0x0f, 0x09]);
  });

  it('pads an odd count with a zero high nibble', () => {
    expect([...packInt4(Int8Array.from([-1]))]).toEqual([0x0f]);
    expect([...packInt4(Int8Array.from([3, 4, -5]))]).toEqual([0x43, 0x0b]);
    expect(packInt4(new Int8Array(0)).length).toBe(0);
  });

  it('unpacks signed and unsigned nibbles', () => {
    expect([...unpackInt4(Uint8Array.from([0x8f, 0x07]), 3)]).toEqual([-1, -8, 7]);
    expect([...unpackUint4(Uint8Array.from([0x8f, 0x07]), 3)]).toEqual([15, 8, 7]);
    expect([...unpackInt4(Uint8Array.from([0x10]), 1)]).toEqual([0]); // the padding nibble is ignored
  });

  it.each([1, 2, 3, 7, 16, 33, 1001])('round-trips every value at length %i', (n) => {
    const s = new Int8Array(n);
    const u = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = ((i * 7 + 3) % 16) - 8;
      u[i] = (i * 5 + 1) % 16;
    }
    const ps = packInt4(s);
    expect(ps.length).toBe(Math.ceil(n / 2));
    expect([...unpackInt4(ps, n)]).toEqual([...s]);
    expect([...unpackUint4(packInt4(u), n)]).toEqual([...u]);
    if (n % 2 === 1) expect(ps[ps.length - 1] >> 4).toBe(0);
  });
});
