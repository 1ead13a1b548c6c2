/**
 * What is known about a command's input model, computed once and passed down instead of recomputed:
 * the loaded model, its main-graph GraphIndex, its file size and its sha256 (one rule: modelSha256),
 * and the datasets opened on it (one per source and sample cap).
 */
import * as fs from 'node:fs';
import { openDataset, type Dataset, type FeedSource, type OpenDatasetOptions } from '../data/index.js';
import { GraphIndex, loadModel, type Model } from '../onnx/index.js';
import { modelSha256 } from '../runtime/index.js';

export interface ModelContext {
  readonly model: Model;
  /** The model's file ('<bytes>' for a model given as bytes). */
  readonly file: string;
  /** The main graph's index (built on first use, then shared). */
  readonly index: GraphIndex;
  /** Size of the model file on disk; 0 when it is not a file. */
  readonly sizeBytes: number;
  /** sha256 of the model (modelSha256: the file's bytes, else the serialized model), computed on first use. */
  readonly sha256: string;
  /** The model's identity as documents record it. */
  readonly source: { file: string; sha256: string };
  /**
   * A dataset over this model's inputs, opened once per (source, maxSamples) and reused: a dataset
   * streams its batches afresh on every `batches()` call. Files are read with the context's data
   * options (preprocessing, audio, text); in-memory feeds are keyed by identity.
   */
  dataset(source: string | FeedSource, opts?: Pick<OpenDatasetOptions, 'maxSamples'>): Promise<Dataset>;
  /** How the context's datasets are read (preprocess, sampleRate, tokenizer, randomDims, …). */
  readonly dataOptions: OpenDatasetOptions;
}

/** The context of a model file or an already loaded model; `data` says how its datasets are read. */
export function modelContext(source: string | Model, data: OpenDatasetOptions = {}, load: { maxTensorBytes?: number } = {}): ModelContext {
  const model = typeof source === 'string' ? loadModel(source, load) : source;
  let index: GraphIndex | undefined;
  let hash: string | undefined;
  const datasets = new Map<string, Promise<Dataset>>();
  const feedIds = new Map<FeedSource, number>();
  const onDisk = model.file !== '<bytes>' && fs.existsSync(model.file);
  return {
    model,
    file: model.file,
    get index() {
      return (index ??= GraphIndex.of(model));
    },
    sizeBytes: onDisk ? fs.statSync(model.file).size : 0,
    get sha256() {
      return (hash ??= modelSha256(model));
    },
    get source() {
      return { file: model.file, sha256: this.sha256 };
    },
    dataOptions: data,
    dataset(src, opts = {}) {
      if (typeof src !== 'string' && !feedIds.has(src)) feedIds.set(src, feedIds.size);
      const key = JSON.stringify([typeof src === 'string' ? src : { feeds: feedIds.get(src) }, opts.maxSamples ?? null]);
      let ds = datasets.get(key);
      if (!ds) datasets.set(key, (ds = openDataset(src, model, { ...data, ...opts })));
      return ds;
    },
  };
}
