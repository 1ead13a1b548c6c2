/**
 * The data settings every command shares (`--preprocess`, `--sample-rate`, `--window`, `--hop`,
 * `--tokenizer`, `--max-length`, `--padding`, `--dim`), as options of openDataset.
 */
import type { OpenDatasetOptions } from './dataset.js';
import { loadPreprocess, normalizePreprocess, type Preprocess } from './preprocess.js';
import type { TextPadding } from './text.js';

export interface DataReadOptions {
  /** A recipe: inline `key=value,…` text, a .json/.yaml file, or the parsed object. */
  preprocess?: string | Preprocess | Readonly<Record<string, unknown>>;
  sampleRate?: number;
  window?: number;
  hop?: number;
  tokenizer?: string;
  maxLength?: number;
  padding?: TextPadding;
  /** Values of dynamic dims for `random` data, by symbolic name. */
  dims?: Readonly<Record<string, number>>;
}

/** openDataset options from the shared data settings (a recipe file is read here). */
export function dataOpenOptions(o: DataReadOptions): OpenDatasetOptions {
  return {
    preprocess: typeof o.preprocess === 'string' ? loadPreprocess(o.preprocess) : o.preprocess ? normalizePreprocess(o.preprocess as Record<string, unknown>) : undefined,
    sampleRate: o.sampleRate,
    window: o.window,
    hop: o.hop,
    tokenizer: o.tokenizer,
    maxLength: o.maxLength,
    padding: o.padding,
    randomDims: o.dims,
  };
}
