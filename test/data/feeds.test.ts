import * as ort from 'onnxruntime-node';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { labelsFromSource, normalizeArray, openDataset, parsePreprocess, formatPreprocess, writeNpy, type Dataset, type FeedLike } from '../../src/data/index.js';
import { InputError, UsageError } from '../../src/errors.js';
import { makeTensor, type Feeds } from '../../src/tensor/index.js';
import { identityModel } from '../helpers/input-models.js';
import { makeTempDir } from '../helpers/tmp.js';

async function collect(ds: Dataset, batchSize: number): Promise<Feeds[]> {
  const out: Feeds[] = [];
  for await (const f of ds.batches(batchSize)) out.push(f);
  return out;
}

const model = () =>
  identityModel([
    { name: 'x', dtype: 'float32', dims: ['batch', 3] },
    { name: 'ids', dtype: 'int64', dims: ['batch', 2] },
  ]);

/** Sample i: x = [i, i + 0.5, -i], ids = [i, 2i]. */
function feed(i: number, asOrt: boolean): FeedLike {
  const x = Float32Array.from([i, i + 0.5, -i]);
  const ids = BigInt64Array.from([BigInt(i), BigInt(2 * i)]);
  return asOrt ? { x: new ort.Tensor('float32', x, [1, 3]), ids: new ort.Tensor('int64', ids, [1, 2]) } : { x: { data: x, dims: [3] }, ids: { data: ids, dims: [2] } };
}

function values(batches: Feeds[]): number[] {
  return batches.flatMap((b) => Array.from(b.x.data as Float32Array));
}

const openAndRead = (src: FeedLike[], m: ReturnType<typeof model>, batch: number) => openDataset(src, m).then((d) => collect(d, batch));

const expected = (n: number) => Array.from({ length: n }, (_, i) => [i, i + 0.5, -i]).flat();

describe('in-memory feeds', () => {
  it('an array of ort.Tensor feeds streams in batches like a file, and can be read twice', async () => {
    const ds = await openDataset(Array.from({ length: 10 }, (_, i) => feed(i, true)), model());
    expect(ds.sampleCount).toBe(10);
    expect(ds.description).toMatch(/^10 feeds in memory: 10 samples of x \[batch, 3\] float32, ids \[batch, 2\] int64/);
    const a = await collect(ds, 4);
    expect(a.map((b) => b.x.dims[0])).toEqual([4, 4, 2]);
    expect(values(a)).toEqual(expected(10));
    expect(Array.from(a[2].ids.data as BigInt64Array)).toEqual([8n, 16n, 9n, 18n]);
    expect(values(await collect(ds, 3))).toEqual(expected(10));
  });

  it('an async generator function of plain { data, dims } (one sample each) is re-run for every pass; the count is known after one', async () => {
    let runs = 0;
    async function* gen() {
      runs++;
      for (let i = 0; i < 7; i++) {
        await new Promise((r) => setImmediate(r));
        yield feed(i, false);
      }
    }
    const ds = await openDataset(gen, model());
    expect(ds.sampleCount).toBeUndefined();
    expect(values(await collect(ds, 3))).toEqual(expected(7));
    expect(ds.sampleCount).toBe(7);
    expect(values(await collect(ds, 5))).toEqual(expected(7));
    expect(runs).toBe(2);
  });

  it('a stacked feed is split into batches; maxSamples stops pulling from an endless iterable', async () => {
    const stack = { x: { data: Float32Array.from(expected(5)), dims: [5, 3] }, ids: { data: new BigInt64Array(10), dims: [5, 2] } };
    function* endless() {
      for (;;) yield stack;
    }
    const ds = await openDataset(endless, model(), { maxSamples: 12 });
    const bs = await collect(ds, 4);
    expect(bs.map((b) => b.x.dims[0])).toEqual([4, 4, 4]);
    expect(ds.sampleCount).toBe(12);
  });

  it('a generator object is one-shot: the second pass says how to fix it', async () => {
    function* gen() {
      for (let i = 0; i < 3; i++) yield feed(i, false);
    }
    const ds = await openDataset(gen(), model());
    expect(values(await collect(ds, 8))).toEqual(expected(3));
    const err = (await collect(ds, 8).catch((e: unknown) => e)) as InputError;
    expect(err.code).toBe('E_DATA_ONESHOT');
    expect(err.message).toMatch(/pass an array or a function returning a fresh iterable/);
  });

  it('checks names, shapes and dtypes with the feed index in the message', async () => {
    const m = model();
    const good = feed(0, false);
    await expect(openAndRead([good, { x: good.x }], m, 4)).rejects.toThrow(/^data\[1\]: input "ids" is missing/);
    await expect(openAndRead([good, { ...good, y: good.x }], m, 4)).rejects.toThrow(/^data\[1\]: "y" is not a model input/);
    await expect(openAndRead([{ ...good, x: { data: new Float32Array(4), dims: [4] } }], m, 4)).rejects.toThrow(/^data\[0\]: input "x": expected shape \[batch, 3\]/);
    await expect(openAndRead([{ ...good, x: { data: new Uint8Array(3), dims: [3] } }], m, 4)).rejects.toThrow(/expected float32 data, got uint8/);
    await expect(openAndRead([{ ...good, x: { data: new Float32Array(2), dims: [3] } }], m, 4)).rejects.toThrow(/dims \[3\] hold 3 elements, data has 2/);
    // number[] data is untyped (like JSON): integral values may feed int64.
    const plain = await collect(await openDataset([{ x: { data: [1, 2, 3], dims: [3] }, ids: { data: [4, 5], dims: [2] } }], m), 1);
    expect(Array.from(plain[0].ids.data as BigInt64Array)).toEqual([4n, 5n]);
  });

  it('uint8 feeds become float with scale/mean/std; in-memory labels come along', async () => {
    const img = identityModel([{ name: 'img', dtype: 'float32', dims: ['N', 2, 2] }]);
    const ds = await openDataset([{ img: { data: Uint8Array.from([0, 255, 51, 102]), dims: [2, 2] } }], img, { preprocess: { scale: 1 / 255, mean: [0.5], std: [0.5] }, labels: [3] });
    const [b] = await collect(ds, 1);
    expect(Array.from(b.img.data as Float32Array).map((v) => +v.toFixed(4))).toEqual([-1, 1, -0.6, -0.2]);
    expect(Array.from(ds.labels!.data as BigInt64Array)).toEqual([3n]);
    async function* lab() {
      yield 1;
      yield 2n;
    }
    expect(Array.from((await labelsFromSource(lab)).data as BigInt64Array)).toEqual([1n, 2n]);
    await expect(labelsFromSource([1.5])).rejects.toThrow(/expected integer class ids/);
  });
});

describe('preprocess recipes and integer arrays', () => {
  it('parses the flag text, with lists running over commas, and prints it back', () => {
    const p = parsePreprocess('resize=224x224,fit=cover,layout=nchw,channels=rgb,scale=1/255,mean=0.485,0.456,0.406,std=0.229,0.224,0.225');
    expect(p).toEqual({ resize: { width: 224, height: 224 }, fit: 'cover', layout: 'nchw', channels: 'rgb', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(formatPreprocess(p)).toBe('resize=224x224,fit=cover,layout=nchw,channels=rgb,scale=1/255,mean=0.485,0.456,0.406,std=0.229,0.224,0.225');
    expect(() => parsePreprocess('resize=224')).toThrow(UsageError);
    expect(() => parsePreprocess('fit=stretch')).toThrow(/fit: expected one of cover, contain, fill, inside, outside/);
    expect(() => parsePreprocess('gamma=2')).toThrow(/unknown field "gamma"/);
    expect(() => parsePreprocess('mean=1,2,std=1,2,3')).toThrow(/same count/);
  });

  it('uint8 and int16 .npy stacks feed float inputs with scale/mean/std (per channel on the nchw axis)', async () => {
    const dir = makeTempDir();
    const u8 = path.join(dir, 'u8.npy');
    // 2 samples of [3, 1, 2] (C, H, W): channel c of sample s holds 10s + c, 10s + c + 1.
    writeNpy(u8, makeTensor('uint8', [2, 3, 1, 2], Uint8Array.from([0, 1, 1, 2, 2, 3, 10, 11, 11, 12, 12, 13])));
    const m = identityModel([{ name: 'x', dtype: 'float32', dims: ['N', 3, 1, 2] }]);
    await expect(openDataset(u8, m).then((d) => collect(d, 2))).rejects.toThrow(/expected float32 data, got uint8/);
    const ds = await openDataset(u8, m, { preprocess: { scale: 2, mean: [0, 1, 2], std: [1, 2, 4] } });
    const [b] = await collect(ds, 2);
    expect(Array.from(b.x.data as Float32Array)).toEqual([0, 2, 0.5, 1.5, 0.5, 1, 20, 22, 10.5, 11.5, 5.5, 6]);
    const i16 = path.join(dir, 'i16.npy');
    writeNpy(i16, makeTensor('int16', [2, 4], Int16Array.from([-32768, 0, 16384, 32767, 1, 2, 3, 4])));
    const audio = identityModel([{ name: 'a', dtype: 'float32', dims: ['N', 4] }]);
    const [c] = await collect(await openDataset(i16, audio, { preprocess: { scale: 1 / 32768 } }), 2);
    expect(Array.from(c.a.data as Float32Array).slice(0, 4)).toEqual([-1, 0, 0.5, 32767 / 32768]);
  });

  it('normalizeArray picks the channel axis by the list length and refuses one that matches nothing', () => {
    const t = makeTensor('uint8', [1, 2, 3], Uint8Array.from([1, 2, 3, 4, 5, 6]));
    expect(Array.from(normalizeArray(t, 'float32', { mean: [1, 2, 3] }, { file: 'f', input: 'x' }).data as Float32Array)).toEqual([0, 0, 0, 3, 3, 3]);
    expect(() => normalizeArray(t, 'float32', { mean: [1, 2, 3, 4] }, { file: 'f', input: 'x' })).toThrow(/expected a channel axis of size 4/);
  });
});

describe('preprocess recipe files', () => {
  it('reads the same fields from JSON and YAML (top level or under preprocess:), and names the file on errors', async () => {
    const { loadPreprocess } = await import('../../src/data/index.js');
    const fs = await import('node:fs');
    const dir = makeTempDir();
    const y = path.join(dir, 'r.yaml');
    fs.writeFileSync(y, 'preprocess:\n  resize: 224x224\n  fit: cover\n  scale: 1/255\n  mean: [0.485, 0.456, 0.406]\n  std: 0.229, 0.224, 0.225\n');
    const j = path.join(dir, 'r.json');
    fs.writeFileSync(j, JSON.stringify({ resize: [224, 224], fit: 'cover', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }));
    const want = { resize: { width: 224, height: 224 }, fit: 'cover', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
    expect(loadPreprocess(y)).toEqual(want);
    expect(loadPreprocess(j)).toEqual(want);
    expect(loadPreprocess('scale=2')).toEqual({ scale: 2 });
    fs.writeFileSync(y, 'fit: squash\n');
    const e = (() => {
      try {
        loadPreprocess(y);
      } catch (err) {
        return err as InputError;
      }
    })()!;
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toBe(`${y}: fit: expected one of cover, contain, fill, inside, outside, got "squash"`);
  });
});

describe('countSamples', () => {
  it('counts a stream with one pass, then knows it', async () => {
    const { countSamples } = await import('../../src/data/index.js');
    let runs = 0;
    const ds = await openDataset(function* () {
      runs++;
      for (let i = 0; i < 5; i++) yield feed(i, false);
    }, model());
    expect(await countSamples(ds)).toBe(5);
    expect(await countSamples(ds)).toBe(5);
    expect(runs).toBe(1);
  });
});
