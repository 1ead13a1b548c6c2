/**
 * Image folders: PNG/JPEG/WebP files decoded with sharp (libvips, prebuilt binaries from npm), resized,
 * channel-ordered and normalized into one model input.
 *
 * Layouts: a folder of images (unlabelled), or a folder of class sub-folders (the ImageFolder
 * convention: class ids are the sub-folder names in sorted order). Samples are interleaved across
 * classes (class 0's first image, class 1's first, …) so that the first N samples are balanced.
 *
 * Decoding runs on libuv's thread pool; up to `prefetch` images are decoded ahead of the consumer, so
 * decoding overlaps with inference and memory stays bounded by the prefetch window.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { describeFsError } from '../files.js';
import { makeTensor, type Tensor } from '../tensor/index.js';
import type { Chunk, ChunkSource } from './dataset.js';
import { affineOf, type ImagePlan } from './preprocess.js';

export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp'];

export function isImageFile(name: string): boolean {
  return !name.startsWith('.') && IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

export interface ImageFolder {
  /** Image files in sample order. */
  readonly files: readonly string[];
  /** Paths relative to the folder (keys for CSV labels). */
  readonly keys: readonly string[];
  /** Class names (sorted) when the folder holds class sub-folders. */
  readonly classes?: readonly string[];
  /** Class id per file (with `classes`). */
  readonly labels?: Int32Array;
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function readDir(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot read data folder'), { file: dir, cause: err });
  }
}

/** List a folder of images, or of class sub-folders of images; undefined when it holds neither. */
export function listImageFolder(dir: string): ImageFolder | undefined {
  const entries = readDir(dir);
  const flat = entries.filter((e) => e.isFile() && isImageFile(e.name)).map((e) => e.name).sort(byName);
  const classDirs = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort(byName);
  const perClass = classDirs.map((c) => readDir(path.join(dir, c)).filter((e) => e.isFile() && isImageFile(e.name)).map((e) => e.name).sort(byName));
  const withImages = classDirs.filter((_, i) => perClass[i].length > 0);
  if (flat.length > 0 && withImages.length > 0) {
    throw new InputError('E_DATA_FORMAT', `folder holds both images and class sub-folders with images (${withImages.slice(0, 3).join(', ')}…): expected one or the other`, { file: dir });
  }
  if (flat.length > 0) return { files: flat.map((n) => path.join(dir, n)), keys: flat };
  if (withImages.length === 0) return undefined;
  // Every sub-folder is a class (torchvision skips empty ones; so do we, keeping ids dense).
  const classes = withImages;
  const lists = classDirs.map((c, i) => ({ c, names: perClass[i] })).filter((x) => x.names.length > 0);
  const files: string[] = [];
  const keys: string[] = [];
  const labels: number[] = [];
  const longest = Math.max(...lists.map((l) => l.names.length));
  for (let k = 0; k < longest; k++) {
    lists.forEach((l, id) => {
      if (k < l.names.length) {
        keys.push(`${l.c}/${l.names[k]}`);
        files.push(path.join(dir, l.c, l.names[k]));
        labels.push(id);
      }
    });
  }
  return { files, keys, classes, labels: Int32Array.from(labels) };
}

type SharpFn = typeof import('sharp').default;

let sharpModule: Promise<SharpFn> | undefined;
/** sharp is loaded on first use: commands without image data never load the native binding. */
function loadSharp(): Promise<SharpFn> {
  sharpModule ??= import('sharp').then((m) => (m as unknown as { default: SharpFn }).default ?? (m as unknown as SharpFn));
  return sharpModule;
}

/** Decode, resize and normalize one image into a [1, …sample] tensor of the plan's dtype. */
export async function decodeImage(file: string, plan: ImagePlan): Promise<Tensor> {
  const sharp = await loadSharp();
  const r = plan.recipe;
  let raw: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    let img = sharp(file, { failOn: 'error' });
    if (r.resize) img = img.resize(r.resize.width, r.resize.height, { fit: r.fit });
    // Alpha, when present, is skipped in pixelsToTensor (a removeAlpha step costs more than the stride).
    img = r.channels === 'gray' ? img.toColourspace('b-w') : img.toColourspace('srgb');
    raw = await img.raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    const msg = ((err as Error).message ?? String(err)).split('\n')[0];
    throw new InputError('E_DATA_FORMAT', `cannot decode image: ${msg}`, { file, cause: err });
  }
  const { width: w, height: h, channels: got } = raw.info;
  const c = plan.channelCount;
  if (got !== c && got !== c + 1) throw new InputError('E_DATA_FORMAT', `decoded ${got} channels: expected ${c} (channels=${r.channels})`, { file });
  return pixelsToTensor(new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.length), w, h, plan, got);
}

/**
 * Interleaved 8-bit pixels (H×W×stride, RGB or gray first, any alpha after) → the plan's layout,
 * channel order and dtype.
 */
export function pixelsToTensor(px: Uint8Array, w: number, h: number, plan: ImagePlan, stride = plan.channelCount): Tensor {
  const r = plan.recipe;
  const c = plan.channelCount;
  const st = stride;
  const hw = w * h;
  const dims = r.layout === 'nchw' ? [1, c, h, w] : [1, h, w, c];
  // Source channel for each output channel (bgr reverses).
  const srcCh = r.channels === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  if (plan.dtype === 'uint8') {
    const out = new Uint8Array(hw * c);
    if (r.layout === 'nhwc' && r.channels !== 'bgr' && st === c) out.set(px);
    else
      for (let i = 0; i < hw; i++)
        for (let k = 0; k < c; k++) out[r.layout === 'nchw' ? k * hw + i : i * c + k] = px[i * st + srcCh[k]];
    return makeTensor('uint8', dims, out);
  }
  const { a, b } = affineOf(r, c, '');
  const out = new Float32Array(hw * c);
  // A lookup table per channel: 256 values, so the hot loop is a load and a store.
  const lut = new Float32Array(256 * c);
  for (let k = 0; k < c; k++) for (let v = 0; v < 256; v++) lut[k * 256 + v] = v * a[k] + b[k];
  if (r.layout === 'nchw' && c === 3) {
    // One pass over the pixels, three planes written (the input is read once, in order).
    const l0 = lut.subarray(0, 256);
    const l1 = lut.subarray(256, 512);
    const l2 = lut.subarray(512, 768);
    const [s0, s1, s2] = srcCh;
    const p1 = hw;
    const p2 = 2 * hw;
    for (let i = 0, j = 0; i < hw; i++, j += st) {
      out[i] = l0[px[j + s0]];
      out[p1 + i] = l1[px[j + s1]];
      out[p2 + i] = l2[px[j + s2]];
    }
  } else if (r.layout === 'nchw') {
    for (let i = 0; i < hw; i++) out[i] = lut[px[i * st]];
  } else {
    for (let i = 0; i < hw; i++) for (let k = 0; k < c; k++) out[i * c + k] = lut[k * 256 + px[i * st + srcCh[k]]];
  }
  if (plan.dtype === 'float32') return makeTensor('float32', dims, out);
  if (plan.dtype === 'float64') return makeTensor('float64', dims, Float64Array.from(out));
  return makeTensor(plan.dtype, dims, out as never); // converted by the caller (float16)
}

/** Default number of images decoded ahead of the consumer. */
export const IMAGE_PREFETCH = 16;

/**
 * Samples from image files, one chunk per image, decoded up to `prefetch` ahead (at least one batch).
 * `convert` turns the decoded tensor into the input's dtype (float16) when needed.
 */
export function imageSource(files: readonly string[], input: string, plan: ImagePlan, convert: (t: Tensor, file: string) => Tensor, prefetch = IMAGE_PREFETCH): ChunkSource {
  return async function* (chunkSize, budget) {
    const n = Math.min(files.length, budget.left);
    const ahead = Math.max(prefetch, Math.min(chunkSize, 64));
    const pending: Promise<Tensor>[] = [];
    let next = 0;
    const fill = () => {
      while (next < n && pending.length < ahead) {
        const p = decodeImage(files[next++], plan);
        p.catch(() => undefined); // surfaced when awaited, in order
        pending.push(p);
      }
    };
    for (let i = 0; i < n; i++) {
      fill();
      const t = convert(await pending.shift()!, files[i]);
      fill();
      budget.left -= 1;
      const chunk: Chunk = { label: files[i], first: i, count: 1, arrays: new Map([[input, t]]), isFinite: true };
      yield chunk;
    }
  };
}
