import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { openDataset, pixelsToTensor, planImage, readLabelFile, type Dataset } from '../../src/data/index.js';
import { InputError } from '../../src/errors.js';
import type { Feeds } from '../../src/tensor/index.js';
import { identityModel } from '../helpers/input-models.js';
import { makeTempDir } from '../helpers/tmp.js';

async function collect(ds: Dataset, batchSize: number): Promise<Feeds[]> {
  const out: Feeds[] = [];
  for await (const f of ds.batches(batchSize)) out.push(f);
  return out;
}

async function errorOf(p: Promise<unknown>): Promise<InputError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(InputError);
  expect((e as Error).message).not.toContain('\n');
  return e as InputError;
}

/** W×H RGB pixels (W ≤ 32, H ≤ 24): r = 8x + k, g = 10y + k, b = 4(x + y) + k (distinct per image via k). */
function pixels(w: number, h: number, k: number): Buffer {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      b[i] = 8 * x + k;
      b[i + 1] = 10 * y + k;
      b[i + 2] = 4 * (x + y) + k;
    }
  return b;
}

const W = 6;
const H = 4;

describe('image folders', () => {
  let dir: string;
  let flat: string;
  let classes: string;
  beforeAll(async () => {
    dir = makeTempDir();
    flat = path.join(dir, 'flat');
    fs.mkdirSync(flat);
    await sharp(pixels(W, H, 0), { raw: { width: W, height: H, channels: 3 } }).png().toFile(path.join(flat, 'a.png'));
    await sharp(pixels(W, H, 3), { raw: { width: W, height: H, channels: 3 } }).png().toFile(path.join(flat, 'b.png'));
    await sharp(pixels(W, H, 5), { raw: { width: W, height: H, channels: 3 } }).webp({ lossless: true }).toFile(path.join(flat, 'c.webp'));
    classes = path.join(dir, 'classes');
    for (const [c, n] of [['cat', 3], ['dog', 1], ['emu', 2]] as const) {
      fs.mkdirSync(path.join(classes, c), { recursive: true });
      for (let i = 0; i < n; i++) await sharp(pixels(32, 24, i), { raw: { width: 32, height: 24, channels: 3 } }).jpeg({ quality: 95 }).toFile(path.join(classes, c, `${i}.jpg`));
    }
    fs.mkdirSync(path.join(classes, 'empty'));
  });

  it('decodes PNG and lossless WebP exactly, NCHW RGB with scale/mean/std per channel', async () => {
    const model = identityModel([{ name: 'pixel_values', dtype: 'float32', dims: ['batch', 3, H, W] }]);
    const ds = await openDataset(flat, model, { preprocess: { scale: 1 / 255, mean: [0.5, 0.25, 0], std: [0.5, 0.25, 2] } });
    expect(ds.sampleCount).toBe(3);
    expect(ds.description).toMatch(/3 images/);
    const [batch] = await collect(ds, 8);
    const x = batch.pixel_values;
    expect(x.dims).toEqual([3, 3, H, W]);
    const d = x.data as Float32Array;
    for (const [img, k] of [[0, 0], [1, 3], [2, 5]] as const) {
      const px = pixels(W, H, k);
      for (let c = 0; c < 3; c++)
        for (let i = 0; i < W * H; i++) {
          const want = (px[i * 3 + c] / 255 - [0.5, 0.25, 0][c]) / [0.5, 0.25, 2][c];
          expect(d[((img * 3 + c) * H * W) + i]).toBeCloseTo(want, 5);
        }
    }
  });

  it('NHWC BGR uint8 input gets raw pixels, channels swapped', async () => {
    const model = identityModel([{ name: 'image', dtype: 'uint8', dims: ['N', H, W, 3] }]);
    const ds = await openDataset(flat, model, { preprocess: { channels: 'bgr' } });
    expect(ds.warnings.join()).toMatch(/assumed --preprocess .*layout=nhwc/);
    const [batch] = await collect(ds, 2);
    expect(batch.image.dims).toEqual([2, H, W, 3]);
    const px = pixels(W, H, 0);
    const d = batch.image.data as Uint8Array;
    for (let i = 0; i < W * H; i++) expect([d[i * 3], d[i * 3 + 1], d[i * 3 + 2]]).toEqual([px[i * 3 + 2], px[i * 3 + 1], px[i * 3]]);
  });

  it('infers resize, layout, channels and scale from the input, and says what it assumed', async () => {
    const model = identityModel([{ name: 'x', dtype: 'float32', dims: ['N', 1, 16, 16] }]);
    const ds = await openDataset(classes, model);
    expect(ds.warnings.find((w) => w.startsWith('images: assumed'))).toBe('images: assumed --preprocess resize=16x16,fit=cover,layout=nchw,channels=gray,scale=1/255 (inferred: layout=nchw, channels=gray, resize=16x16, fit=cover, scale=1/255 (no mean/std: pass mean=…,std=… if the model was trained normalized))');
    const batches = await collect(ds, 4);
    expect(batches.map((b) => b.x.dims)).toEqual([
      [4, 1, 16, 16],
      [2, 1, 16, 16],
    ]);
    const v = batches[0].x.data as Float32Array;
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThanOrEqual(1);
  });

  it('class sub-folders give ImageFolder labels, interleaved across classes; empty folders are no class', async () => {
    const model = identityModel([{ name: 'x', dtype: 'float32', dims: ['N', 3, 8, 8] }]);
    const ds = await openDataset(classes, model);
    expect(ds.classes).toEqual(['cat', 'dog', 'emu']);
    expect(ds.sampleKeys).toEqual(['cat/0.jpg', 'dog/0.jpg', 'emu/0.jpg', 'cat/1.jpg', 'emu/1.jpg', 'cat/2.jpg']);
    expect(Array.from(ds.labels!.data as BigInt64Array, Number)).toEqual([0, 1, 2, 0, 2, 0]);
    const first4 = await openDataset(classes, model, { maxSamples: 4 });
    expect(Array.from(first4.labels!.data as BigInt64Array, Number)).toEqual([0, 1, 2, 0]);
    // CSV labels by file name, class names mapped through the folders' classes.
    const csv = path.join(dir, 'labels.csv');
    fs.writeFileSync(csv, 'file,label\ncat/0.jpg,emu\ndog/0.jpg,cat\nemu/0.jpg,dog\ncat/1.jpg,cat\nemu/1.jpg,emu\ncat/2.jpg,dog\n');
    expect(Array.from(readLabelFile(csv, ds).data as BigInt64Array, Number)).toEqual([2, 0, 1, 0, 2, 1]);
  });

  it('JPEG at another size is resized with fit=cover to the fixed H×W (close to a direct resize)', async () => {
    const model = identityModel([{ name: 'x', dtype: 'float32', dims: [1, 3, 12, 16] }]);
    const ds = await openDataset(path.join(classes, 'cat', '0.jpg'), model);
    const [b] = await collect(ds, 1);
    expect(b.x.dims).toEqual([1, 3, 12, 16]);
    const ref = await sharp(pixels(32, 24, 0), { raw: { width: 32, height: 24, channels: 3 } }).resize(16, 12).raw().toBuffer();
    const d = b.x.data as Float32Array;
    let err = 0;
    for (let c = 0; c < 3; c++) for (let i = 0; i < 16 * 12; i++) err = Math.max(err, Math.abs(d[c * 192 + i] * 255 - ref[i * 3 + c]));
    expect(err).toBeLessThan(12); // JPEG q95 + resampling
  });

  it('a corrupt image fails with E_DATA_FORMAT naming the file; a model that is not an image model is refused', async () => {
    const bad = path.join(dir, 'bad');
    fs.mkdirSync(bad);
    const good = fs.readFileSync(path.join(classes, 'cat', '0.jpg'));
    fs.writeFileSync(path.join(bad, 'a.jpg'), good);
    fs.writeFileSync(path.join(bad, 'b.jpg'), good.subarray(0, 200));
    const model = identityModel([{ name: 'x', dtype: 'float32', dims: ['N', 3, 8, 8] }]);
    const ds = await openDataset(bad, model);
    const e = await errorOf(collect(ds, 4));
    expect(e.code).toBe('E_DATA_FORMAT');
    expect(e.file).toBe(path.join(bad, 'b.jpg'));
    expect(e.message).toMatch(/cannot decode image/);
    const e2 = await errorOf(openDataset(bad, identityModel([{ name: 'x', dtype: 'float32', dims: ['N', 5, 8, 8] }])));
    expect(e2.message).toMatch(/expected 1 or 3 channels/);
    const e3 = await errorOf(openDataset(bad, identityModel([{ name: 'x', dtype: 'float32', dims: ['N', 64] }])));
    expect(e3.message).toMatch(/images feed an input of shape \[N, C, H, W\]/);
  });

  it('RGBA PNGs drop alpha; a grayscale JPEG feeds an RGB input (channels replicated)', async () => {
    const mixed = path.join(dir, 'mixed');
    fs.mkdirSync(mixed);
    const rgba = Buffer.alloc(W * H * 4);
    const px = pixels(W, H, 1);
    for (let i = 0; i < W * H; i++) {
      rgba.set(px.subarray(i * 3, i * 3 + 3), i * 4);
      rgba[i * 4 + 3] = 7;
    }
    await sharp(rgba, { raw: { width: W, height: H, channels: 4 } }).png().toFile(path.join(mixed, 'a.png'));
    await sharp(Buffer.alloc(W * H, 200), { raw: { width: W, height: H, channels: 1 } }).jpeg().toFile(path.join(mixed, 'b.jpg'));
    const model = identityModel([{ name: 'x', dtype: 'uint8', dims: ['N', 3, H, W] }]);
    const [b] = await collect(await openDataset(mixed, model), 2);
    const d = b.x.data as Uint8Array;
    for (let c = 0; c < 3; c++) for (let i = 0; i < W * H; i++) expect(d[c * W * H + i]).toBe(px[i * 3 + c]);
    expect(Math.abs(d[3 * W * H + 5] - 200)).toBeLessThanOrEqual(1);
    expect(Math.abs(d[5 * W * H + 5] - 200)).toBeLessThanOrEqual(1);
  });

  it('pixelsToTensor: NHWC float with one mean for all channels', () => {
    const plan = planImage({ name: 'x', dtype: 'float32', dims: ['N', 2, 1, 3] }, { layout: 'nhwc', scale: 2, mean: [1] }, 'f');
    const t = pixelsToTensor(Uint8Array.from([1, 2, 3, 4, 5, 6]), 1, 2, plan);
    expect(t.dims).toEqual([1, 2, 1, 3]);
    expect(Array.from(t.data as Float32Array)).toEqual([1, 3, 5, 7, 9, 11]);
  });
});
