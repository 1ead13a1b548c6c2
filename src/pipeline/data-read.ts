/**
 * The shared data options (documents/data-options.ts) of a command's settings, as openDataset options,
 * and the settings without them (what the stages take).
 */
import { dataOpenOptions, type FeedSource, type OpenDatasetOptions } from '../data/index.js';
import { DataOptionsSchema, type DataOptions } from '../documents/index.js';

const DATA_KEYS: readonly string[] = Object.keys(DataOptionsSchema.shape);

/** openDataset options from a command's settings (a recipe file named by `preprocess` is read now). */
export function readOptionsOf(s: DataOptions): OpenDatasetOptions {
  return dataOpenOptions(s);
}

/** The settings without the data options. */
export function withoutDataOptions<T extends object>(s: T): Omit<T, keyof DataOptions> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) if (!DATA_KEYS.includes(k)) out[k] = v;
  return out as Omit<T, keyof DataOptions>;
}

/** A data source as documents and messages name it: the path, or the dataset's description for feeds. */
export function sourceName(src: string | FeedSource, described?: { readonly description: string }): string {
  return typeof src === 'string' ? src : (described?.description ?? 'feeds in memory');
}
