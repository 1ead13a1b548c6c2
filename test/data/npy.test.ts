import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeNpy, encodeNpy, readNpy, writeNpy } from '../../src/data/index.js';
import { readNpz, writeNpz } from '../../src/data/npz.js';
import { InputError } from '../../src/errors.js';
import { makeTensor, type DType, type Tensor } from '../../src/tensor/index.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

// test/data/fixtures was written by numpy 2.4 (np.save, np.savez, np.savez_compressed,
// np.lib.format.write_array(version=(2,0)/(3,0))): see the snippet in test/data/fixtures/README.md.
const FIX = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures');
const A = Float32Array.from({ length: 24 }, (_, i) => i - 5.5);

function expectInputError(fn: () => unknown, code: string, re: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).code).toBe(code);
    expect((err as Error).message).toMatch(re);
    return;
  }
  throw new Error('expected an InputError');
}

describe('npy', () => {
  it('reads the shipped FMNIST calibration array', () => {
    const t = readNpy(FMNIST.calibX);
    expect(t.dtype).toBe('float32');
    expect(t.dims).toEqual([512, 1, 28, 28]);
    expect(t.data.length).toBe(512 * 784);
  });

  it('reads numpy format versions 1, 2 and 3 and 0-d arrays', () => {
    for (const f of ['v2.npy', 'v3.npy']) {
      const t = readNpy(path.join(FIX, f));
      expect(t.dims).toEqual([2, 3, 4]);
      expect(Array.from(t.data as Float32Array)).toEqual(Array.from(A));
    }
    const s = readNpy(path.join(FIX, 'scalar.npy'));
    expect(s.dims).toEqual([]);
    expect(s.data[0]).toBe(3.5);
  });

  it('round-trips every supported dtype byte-exactly', () => {
    const cases: [DType, Tensor['data']][] = [
      ['float32', Float32Array.of(1.5, -2, NaN)],
      ['float16', Uint16Array.of(0x3c00, 0xc000, 0x7e00)],
      ['float64', Float64Array.of(1e300, -0, 3)],
      ['int64', BigInt64Array.of(-(2n ** 63n), 0n, 2n ** 62n)],
      ['int32', Int32Array.of(-5, 0, 7)],
      ['int16', Int16Array.of(-300, 0, 300)],
      ['int8', Int8Array.of(-128, 0, 127)],
      ['uint8', Uint8Array.of(0, 1, 255)],
      ['bool', Uint8Array.of(1, 0, 1)],
    ];
    for (const [dtype, data] of cases) {
      const t = makeTensor(dtype, [3], data as never);
      const bytes = encodeNpy(t);
      expect(bytes.length % 64).toBe(t.data.byteLength % 64);
      const back = decodeNpy(bytes, 'x.npy');
      expect(back.dtype).toBe(dtype);
      expect(back.dims).toEqual([3]);
      expect(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength)).toEqual(Buffer.from(data.buffer));
    }
  });

  it('writes files numpy-compatible headers (1-d shapes with a trailing comma)', () => {
    const dir = makeTempDir();
    const f = path.join(dir, 'a.npy');
    writeNpy(f, makeTensor('float32', [4], Float32Array.of(1, 2, 3, 4)));
    const text = fs.readFileSync(f).toString('latin1', 10, 70);
    expect(text).toContain("'shape': (4,)");
    expect(readNpy(f).data).toEqual(Float32Array.of(1, 2, 3, 4));
  });

  it('refuses Fortran order, big-endian, unsupported dtypes, truncated and non-npy files', () => {
    expectInputError(() => readNpy(path.join(FIX, 'fortran.npy')), 'E_DATA_FORMAT', /fortran\.npy: array is in Fortran order: expected C order/);
    expectInputError(() => readNpy(path.join(FIX, 'bigendian.npy')), 'E_DATA_FORMAT', /big-endian \(>f4\): expected little-endian/);
    expectInputError(() => readNpy(path.join(FIX, 'complex.npy')), 'E_DATA_DTYPE', /unsupported array dtype "<c8"/);
    const full = fs.readFileSync(path.join(FIX, 'v2.npy'));
    expectInputError(() => decodeNpy(full.subarray(0, full.length - 3), 'cut.npy'), 'E_DATA_FORMAT', /cut\.npy: truncated \.npy file: shape \(2, 3, 4\) <f4 needs 224 bytes, got 221/);
    expectInputError(() => decodeNpy(full.subarray(0, 20), 'cut.npy'), 'E_DATA_FORMAT', /truncated .npy file: header/);
    expectInputError(() => decodeNpy(Buffer.from('hello world, not numpy'), 'x.npy'), 'E_DATA_FORMAT', /magic string/);
    expectInputError(() => readNpy('/nonexistent/file.npy'), 'E_READ', /no such file/);
  });
});

describe('npz', () => {
  it('reads numpy savez_compressed and savez archives', () => {
    for (const f of ['mixed_compressed.npz', 'mixed_stored.npz']) {
      const z = readNpz(path.join(FIX, f));
      expect(Array.from(z.f32.data as Float32Array)).toEqual(Array.from(A));
      expect(z.i64.dtype).toBe('int64');
      expect(Array.from(z.i64.data as BigInt64Array)).toEqual([-3n, -2n, -1n, 0n, 1n, 2n]);
    }
    const z = readNpz(path.join(FIX, 'mixed_compressed.npz'));
    expect(Object.keys(z).sort()).toEqual(['b', 'f16', 'f32', 'f64', 'i16', 'i32', 'i64', 'i8', 'u8']);
    expect(z.f16.dtype).toBe('float16');
    expect(z.f64.dtype).toBe('float64');
    expect(Array.from(z.i8.data)).toEqual([-128, 127]);
    expect(Array.from(z.u8.data)).toEqual([0, 255]);
    expect(z.b.dtype).toBe('bool');
    expect(Array.from(z.b.data)).toEqual([1, 0, 1]);
  });

  it('round-trips through writeNpz, stored and deflated', () => {
    const dir = makeTempDir();
    const arrays = { x: makeTensor('float32', [2, 2], Float32Array.of(1, 2, 3, 4)), ids: makeTensor('int64', [3], BigInt64Array.of(1n, 2n, 3n)) };
    for (const compress of [false, true]) {
      const f = path.join(dir, `a${compress}.npz`);
      writeNpz(f, arrays, { compress });
      const z = readNpz(f);
      expect(z.x.data).toEqual(arrays.x.data);
      expect(z.ids.data).toEqual(arrays.ids.data);
    }
  });

  it('names the file when an archive is truncated or not a zip', () => {
    const dir = makeTempDir();
    const full = fs.readFileSync(path.join(FIX, 'mixed_compressed.npz'));
    const cut = path.join(dir, 'cut.npz');
    fs.writeFileSync(cut, full.subarray(0, full.length - 30));
    expectInputError(() => readNpz(cut), 'E_DATA_FORMAT', /cut\.npz: .*(truncated|central directory)/);
    const bad = path.join(dir, 'bad.npz');
    fs.writeFileSync(bad, 'this is not a zip archive at all, just text');
    expectInputError(() => readNpz(bad), 'E_DATA_FORMAT', /bad\.npz: not a zip archive/);
  });
});
