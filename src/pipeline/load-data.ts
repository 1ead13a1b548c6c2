import { openDataset, resolveLabels, type FeedSource, type LabelSource, type OpenDatasetOptions } from '../data/index.js';
import { InputError } from '../errors.js';
import type { Model } from '../onnx/index.js';
import type { Feeds } from '../runtime/index.js';
import { Rng, makeTensor, type Tensor } from '../tensor/index.js';

/** Feeds held in memory, with labels aligned to their output rows. */
export interface LoadedData {
  batches: Feeds[];
  labels?: ArrayLike<number | bigint>;
  samples: number;
}

/**
 * Read a dataset into memory. With `subset`, a seeded uniform subset of that many samples (reservoir
 * sampling over the whole set, kept in file order) stacked into batches of `batchSize`. With `from`,
 * only the samples from that index on (a held-out tail).
 */
export async function loadData(
  source: string | FeedSource,
  model: Model,
  opts: { labels?: string | LabelSource; subset?: number; maxSamples?: number; seed?: number; batchSize?: number; from?: number; read?: OpenDatasetOptions } = {},
): Promise<LoadedData> {
  const ds = await openDataset(source, model, { ...opts.read, maxSamples: opts.maxSamples });
  // A labels file, in-memory labels, or the labels the data carries (image class folders, text "label").
  const labelsAll = (await resolveLabels(opts.labels, ds))?.data as ArrayLike<number | bigint> | undefined;
  const labelsName = typeof opts.labels === 'string' ? opts.labels : opts.labels ? 'labels' : ds.description;
  const batchSize = opts.batchSize ?? 64;
  const canStack = ds.effectiveBatchSize(2) > 1;
  if (opts.from) return loadFrom(ds, opts.from, batchSize, canStack, labelsAll, labelsName);
  // Per-sample feeds (only when a subset is asked for), else the dataset's own batches.
  if (!opts.subset || opts.subset >= (ds.sampleCount ?? Infinity)) {
    const batches: Feeds[] = [];
    for await (const f of ds.batches(batchSize)) batches.push(f);
    const samples = batches.reduce((a, f) => a + ds.samplesIn(f), 0);
    return { batches, labels: labelsAll ? checkLabelCount(labelsAll, samples, labelsName) : undefined, samples };
  }
  const k = opts.subset;
  const rng = new Rng(opts.seed ?? 1234);
  const picked: { index: number; feeds: Feeds }[] = [];
  let index = 0;
  for await (const f of ds.batches(batchSize)) {
    const n = ds.samplesIn(f);
    for (let i = 0; i < n; i++, index++) {
      const slot = index < k ? index : rng.int(index + 1);
      if (slot < k) picked[slot] = { index, feeds: n === 1 ? f : sliceSample(f, i) };
    }
  }
  picked.sort((a, b) => a.index - b.index);
  const batches: Feeds[] = [];
  for (let i = 0; i < picked.length; i += canStack ? batchSize : 1) batches.push(canStack ? stack(picked.slice(i, i + batchSize).map((p) => p.feeds)) : picked[i].feeds);
  let labels: number[] | undefined;
  if (labelsAll) {
    checkLabelCount(labelsAll, index, labelsName);
    labels = picked.map((p) => Number(labelsAll[p.index]));
  }
  return { batches, labels, samples: picked.length };
}

/** Samples `from`, `from + 1`, … of a dataset (a held-out tail), restacked into batches of `batchSize`. */
async function loadFrom(ds: Awaited<ReturnType<typeof openDataset>>, from: number, batchSize: number, canStack: boolean, labelsAll: ArrayLike<number | bigint> | undefined, labelsFile: string | undefined): Promise<LoadedData> {
  const kept: Feeds[] = [];
  let index = 0;
  for await (const f of ds.batches(batchSize)) {
    const n = ds.samplesIn(f);
    for (let i = 0; i < n; i++, index++) if (index >= from) kept.push(n === 1 ? f : sliceSample(f, i));
  }
  if (kept.length === 0) throw new InputError('E_DATA_EMPTY', `expected samples after the first ${from}, got none`, { file: ds.description });
  const batches: Feeds[] = [];
  for (let i = 0; i < kept.length; i += canStack ? batchSize : 1) batches.push(canStack ? stack(kept.slice(i, i + batchSize)) : kept[i]);
  let labels: number[] | undefined;
  if (labelsAll) {
    checkLabelCount(labelsAll, index, labelsFile!);
    labels = Array.from({ length: kept.length }, (_, i) => Number(labelsAll[from + i]));
  }
  return { batches, labels, samples: kept.length };
}

function checkLabelCount(labels: ArrayLike<number | bigint>, samples: number, file: string): ArrayLike<number | bigint> {
  if (labels.length < samples) throw new InputError('E_LABELS', `labels: expected at least ${samples} labels (one per sample), got ${labels.length}`, { file });
  return labels;
}

function sliceSample(feeds: Feeds, i: number): Feeds {
  const out: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const per = t.data.length / t.dims[0];
    out[name] = makeTensor(t.dtype, [1, ...t.dims.slice(1)], t.data.slice(i * per, (i + 1) * per) as never);
  }
  return out;
}

function stack(samples: readonly Feeds[]): Feeds {
  const out: Record<string, Tensor> = {};
  for (const name of Object.keys(samples[0])) {
    const parts = samples.map((s) => s[name]);
    const total = parts.reduce((a, t) => a + t.data.length, 0);
    const Ctor = parts[0].data.constructor as new (n: number) => Tensor['data'];
    const data = new Ctor(total) as unknown as { set(a: ArrayLike<unknown>, o: number): void };
    let off = 0;
    for (const p of parts) {
      data.set(p.data as ArrayLike<unknown>, off);
      off += p.data.length;
    }
    out[name] = makeTensor(parts[0].dtype, [parts.reduce((a, t) => a + t.dims[0], 0), ...parts[0].dims.slice(1)], data as never);
  }
  return out;
}
