import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { RANDOM_DATA_WARNING, openDataset, writeNpy, writeNpz, type Dataset } from '../../src/data/index.js';
import { InputError } from '../../src/errors.js';
import { loadModel, makeGraph, makeModel, makeNode, makeValueInfo, type Model } from '../../src/onnx/index.js';
import { makeTensor, type Tensor } from '../../src/tensor/index.js';
import type { Feeds } from '../../src/runtime/index.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

async function collect(ds: Dataset, batchSize: number): Promise<Feeds[]> {
  const out: Feeds[] = [];
  for await (const f of ds.batches(batchSize)) out.push(f);
  return out;
}

async function expectDataError(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  expect((err as InputError).code).toBe(code);
  expect((err as Error).message).toMatch(re);
  expect((err as Error).message).not.toContain('\n');
}

/** Two inputs with a batch axis: x [B, 4] float32, ids [B, 3] int64. */
function twoInputModel(): Model {
  const graph = makeGraph({
    name: 'two',
    nodes: [makeNode({ opType: 'Identity', inputs: ['x'], outputs: ['y'] }), makeNode({ opType: 'Identity', inputs: ['ids'], outputs: ['z'] })],
    inputs: [makeValueInfo('x', 'float32', ['batch', 4]), makeValueInfo('ids', 'int64', ['batch', 3])],
    outputs: [makeValueInfo('y', 'float32', ['batch', 4]), makeValueInfo('z', 'int64', ['batch', 3])],
  });
  return { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'two.onnx', baseDir: '.' };
}

const filled = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));

describe('openDataset', () => {
  let cnn: Model;
  let dir: string;
  beforeAll(() => {
    cnn = loadModel(FMNIST.cnn);
    dir = makeTempDir();
  });

  it('streams the FMNIST .npy in batches, the last one partial, values in order', async () => {
    const ds = await openDataset(FMNIST.calibX, cnn);
    expect(ds.sampleCount).toBe(512);
    expect(ds.inputs).toEqual([{ name: 'input', dtype: 'float32', dims: ['N', 1, 28, 28] }]);
    expect(ds.description).toMatch(/512 samples of input \[batch, 1, 28, 28\] float32/);
    const batches = await collect(ds, 100);
    expect(batches.map((b) => b.input.dims[0])).toEqual([100, 100, 100, 100, 100, 12]);
    expect(batches[0].input.dims).toEqual([100, 1, 28, 28]);
    const whole = fs.readFileSync(FMNIST.calibX);
    const ref = new Float32Array(whole.buffer.slice(whole.byteOffset + 128, whole.byteOffset + 128 + 512 * 784 * 4));
    expect(batches[5].input.data).toEqual(ref.subarray(500 * 784));
    expect(batches.reduce((s, b) => s + ds.samplesIn(b), 0)).toBe(512);
  });

  it('takes the first maxSamples samples', async () => {
    const ds = await openDataset(FMNIST.calibX, cnn, { maxSamples: 10 });
    expect(ds.sampleCount).toBe(10);
    expect((await collect(ds, 4)).map((b) => b.input.dims[0])).toEqual([4, 4, 2]);
  });

  it('reads .npz by input name, converting lossless integer dtypes, float64 rounded with a note', async () => {
    const f = path.join(dir, 'two.npz');
    writeNpz(f, {
      x: makeTensor('float64', [5, 4], Float64Array.from({ length: 20 }, (_, i) => i / 3)),
      ids: makeTensor('int32', [5, 3], Int32Array.from({ length: 15 }, (_, i) => i)),
    }, { compress: true });
    const ds = await openDataset(f, twoInputModel());
    const b = await collect(ds, 2);
    expect(b.map((x) => x.x.dims)).toEqual([[2, 4], [2, 4], [1, 4]]);
    expect(b[0].ids.dtype).toBe('int64');
    expect(Array.from(b[2].ids.data as BigInt64Array)).toEqual([12n, 13n, 14n]);
    expect(b[0].x.dtype).toBe('float32');
    expect(b[0].x.data[1]).toBeCloseTo(1 / 3, 6);
    expect(ds.warnings.join('\n')).toMatch(/float64 data rounded to float32/);
  });

  it('reads a folder of .npy files (single samples and stacks) sorted by name', async () => {
    const d = path.join(dir, 'folder');
    fs.mkdirSync(d);
    writeNpy(path.join(d, 'b.npy'), makeTensor('float32', [3, 1, 28, 28], filled(3 * 784, () => 2)));
    writeNpy(path.join(d, 'a.npy'), makeTensor('float32', [1, 28, 28], filled(784, () => 1)));
    fs.writeFileSync(path.join(d, 'notes.txt'), 'ignored');
    const ds = await openDataset(d, cnn);
    expect(ds.sampleCount).toBe(4);
    const b = await collect(ds, 8);
    expect(b).toHaveLength(1);
    expect(Array.from(b[0].input.data.filter((_, i) => i % 784 === 0))).toEqual([1, 2, 2, 2]);
  });

  it('reads JSON Lines records, one sample per line; numbers become int64 when integral', async () => {
    const f = path.join(dir, 'two.jsonl');
    fs.writeFileSync(f, ['{"x": [1, 2, 3, 4], "ids": [1, 2, 3]}', '', '{"x": [[5, 6, 7, 8]], "ids": [[4, 5, 6]]}', '{"x": [0.5, 0, 0, 0], "ids": [7, 8, 9]}'].join('\n'));
    const ds = await openDataset(f, twoInputModel());
    expect(ds.sampleCount).toBe(3);
    const b = await collect(ds, 2);
    expect(b[0].x.data).toEqual(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    expect(Array.from(b[1].ids.data as BigInt64Array)).toEqual([7n, 8n, 9n]);
  });

  it('ends a batch where dynamic dims change', async () => {
    const graph = makeGraph({
      name: 'seq',
      nodes: [makeNode({ opType: 'Identity', inputs: ['x'], outputs: ['y'] })],
      inputs: [makeValueInfo('x', 'float32', ['batch', 'seq'])],
      outputs: [makeValueInfo('y', 'float32', ['batch', 'seq'])],
    });
    const model: Model = { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'seq.onnx', baseDir: '.' };
    const f = path.join(dir, 'seq.jsonl');
    fs.writeFileSync(f, ['{"x": [1, 2]}', '{"x": [3, 4]}', '{"x": [5, 6, 7]}', '{"x": [8, 9]}'].join('\n'));
    const b = await collect(await openDataset(f, model), 8);
    expect(b.map((x) => x.x.dims)).toEqual([[2, 2], [1, 3], [1, 2]]);
  });

  it('generates seeded random data from the declared shapes, with a warning', async () => {
    const ds = await openDataset('random', twoInputModel(), { randomSamples: 5, seed: 3 });
    expect(ds.warnings).toContain(RANDOM_DATA_WARNING);
    const a = await collect(ds, 4);
    const again = await collect(await openDataset('random', twoInputModel(), { randomSamples: 5, seed: 3 }), 4);
    expect(a.map((x) => x.x.dims)).toEqual([[4, 4], [1, 4]]);
    expect(a[0].x.data).toEqual(again[0].x.data);
    expect(a[0].ids.dtype).toBe('int64');
    const det = { proto: loadModel(FMNIST.cnn).proto, file: 'x', baseDir: '.' };
    const r = await collect(await openDataset('random', det, { maxSamples: 2 }), 16);
    expect(r[0].input.dims).toEqual([2, 1, 28, 28]);
  });

  it('skips non-finite samples when asked and counts them', async () => {
    const f = path.join(dir, 'nan.npy');
    const data = filled(4 * 784, (i) => i);
    data[784 + 5] = NaN;
    data[3 * 784] = -Infinity;
    writeNpy(f, makeTensor('float32', [4, 1, 28, 28], data));
    await expectDataError(collect(await openDataset(f, cnn), 2), 'E_DATA_NONFINITE', /nan\.npy: input "input": sample 1 holds NaN or Inf values: expected finite values/);
    const ds = await openDataset(f, cnn, { skipNonfinite: true });
    const b = await collect(ds, 2);
    expect(ds.skipped).toBe(2);
    expect(b.map((x) => x.input.dims[0])).toEqual([2]);
    expect(b[0].input.data[784]).toBe(2 * 784);
  });

  describe('bad data', () => {
    const cases: [string, () => string, string, RegExp][] = [
      ['wrong sample shape', () => npy('shape.npy', makeTensor('float32', [2, 1, 28, 27])), 'E_DATA_SHAPE', /shape\.npy: input "input": expected shape \[N, 1, 28, 28\], got \[2, 1, 28, 27\] \(axis 3 must be 28\)/],
      ['wrong rank', () => npy('rank.npy', makeTensor('float32', [2, 784])), 'E_DATA_SHAPE', /rank\.npy: input "input": expected shape \[N, 1, 28, 28\], got \[2, 784\]/],
      ['integer data for a float input', () => npy('u8.npy', makeTensor('uint8', [2, 1, 28, 28])), 'E_DATA_DTYPE', /u8\.npy: input "input": expected float32 data, got uint8/],
      ['zero samples', () => npy('empty.npy', makeTensor('float32', [0, 1, 28, 28])), 'E_DATA_EMPTY', /empty\.npy: expected at least one sample, got 0/],
      ['missing input', () => npz('missing.npz', { other: makeTensor('float32', [1, 1, 28, 28]) }), 'E_DATA_EXTRA', /missing\.npz: array "other" is not a model input/],
      ['no input array', () => npz('none.npz', {}), 'E_DATA_MISSING', /none\.npz: input "input" is missing/],
      ['extra input', () => npz('extra.npz', { input: makeTensor('float32', [1, 1, 28, 28]), mask: makeTensor('float32', [1]) }), 'E_DATA_EXTRA', /extra\.npz: array "mask" is not a model input: expected only "input"/],
      ['not data', () => text('x.bin', 'hello'), 'E_DATA_FORMAT', /x\.bin: unknown data format/],
      ['missing file', () => path.join(dir, 'nope.npy'), 'E_READ', /nope\.npy: no such file/],
      ['empty folder', () => folder('emptydir'), 'E_DATA_EMPTY', /emptydir: folder holds no \.npy\/\.npz, image .* or \.wav files/],
    ];
    function npy(name: string, t: Tensor): string {
      const f = path.join(dir, name);
      writeNpy(f, t);
      return f;
    }
    function npz(name: string, a: Record<string, Tensor>): string {
      const f = path.join(dir, name);
      writeNpz(f, a);
      return f;
    }
    function text(name: string, s: string): string {
      const f = path.join(dir, name);
      fs.writeFileSync(f, s);
      return f;
    }
    function folder(name: string): string {
      const f = path.join(dir, name);
      fs.mkdirSync(f, { recursive: true });
      return f;
    }
    for (const [what, make, code, re] of cases) {
      it(what, async () => {
        await expectDataError(openDataset(make(), cnn).then((ds) => collect(ds, 4)), code, re);
      });
    }

    it('multi-input: missing input, sample-count mismatch, npy for a two-input model, jsonl errors', async () => {
      const two = twoInputModel();
      await expectDataError(openDataset(npz('m1.npz', { x: makeTensor('float32', [2, 4]) }), two), 'E_DATA_MISSING', /m1\.npz: input "ids" is missing/);
      await expectDataError(openDataset(npz('m2.npz', { x: makeTensor('float32', [2, 4]), ids: makeTensor('int64', [3, 3]) }), two), 'E_DATA_SHAPE', /m2\.npz: input "ids": expected 2 samples \(as input "x" has\), got 3/);
      await expectDataError(openDataset(npy('m3.npy', makeTensor('float32', [2, 4])), two), 'E_DATA_MISSING', /m3\.npy: an \.npy file holds one array, the model has 2 inputs \(x, ids\)/);
      await expectDataError(collect(await openDataset(text('j1.jsonl', '{"x": [1,2,3,4], "ids": [1.5, 2, 3]}'), two), 1), 'E_DATA_DTYPE', /j1\.jsonl:1: input "ids": expected int64 values, got 1\.5/);
      await expectDataError(collect(await openDataset(text('j2.jsonl', '{"x": [1,2,3,4], "ids": [1, 2, 3]}\n{"x": [1,2,3], "ids": [1, 2, 3]}'), two), 1), 'E_DATA_SHAPE', /j2\.jsonl:2: input "x": expected shape \[batch, 4\], got \[3\]/);
      await expectDataError(collect(await openDataset(text('j3.jsonl', '{"x": [1,2,3,4]}'), two), 1), 'E_DATA_MISSING', /j3\.jsonl:1: input "ids" is missing/);
      await expectDataError(collect(await openDataset(text('j4.jsonl', '{"x": [1,2,3,4], "ids": [1,2,3], "y": 1}'), two), 1), 'E_DATA_EXTRA', /j4\.jsonl:1: key "y" is not a model input/);
      await expectDataError(collect(await openDataset(text('j5.jsonl', '{"x": [1,2,3,4], "ids": [1,2,3]'), two), 1), 'E_DATA_FORMAT', /j5\.jsonl:1: not valid JSON/);
      await expectDataError(collect(await openDataset(text('j6.jsonl', '{"x": [[1,2],[3]], "ids": [1,2,3]}'), two), 1), 'E_DATA_SHAPE', /j6\.jsonl:1: input "x": ragged nested array/);
    });
  });
});
