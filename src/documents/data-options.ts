import { z } from 'zod';
import { isFeedSource, type FeedSource, type LabelSource } from '../tensor/index.js';

/**
 * Data a command reads: a path (.npy/.npz/.jsonl, a folder of arrays, images or WAV files, 'random'),
 * or, from the library, feeds in memory (an array, a sync/async iterable, or a function returning one:
 * see tensor/feeds.ts). JSON documents can only hold the path.
 */
export const DataSourceSchema = z.union([z.string(), z.custom<FeedSource>((v) => isFeedSource(v), { message: 'expected a path, or an array, iterable or function of feeds' })]);
export type DataSource = z.infer<typeof DataSourceSchema>;

/** Labels: a file (.npy or .csv), or in memory (an array/typed array of class ids, an iterable, a function). */
export const LabelSourceSchema = z.union([
  z.string(),
  z.custom<LabelSource>((v) => v !== null && (typeof v === 'object' || typeof v === 'function'), { message: 'expected a labels file, or class ids in memory' }),
]);

/**
 * How data files become model inputs, shared by every command that reads data (calibrate, quantize,
 * sensitivity, search, eval, bench). Defined once, here; see README "Data formats".
 */
export const DataOptionsSchema = z.object({
  preprocess: z
    .union([z.string(), z.record(z.string(), z.unknown())])
    .optional()
    .describe('images/audio/integer arrays: "resize=224x224,fit=cover,layout=nchw,channels=rgb,scale=1/255,mean=…,std=…", or a .json/.yaml recipe with those fields (default for images: inferred from the input and printed)'),
  sampleRate: z.number().int().positive().optional().describe("audio: the model's sample rate in Hz; WAV files at other rates are resampled (default: the files' own rate)"),
  window: z.number().int().positive().optional().describe("audio: samples per window (default: the input's fixed length, else whole files)"),
  hop: z.number().int().positive().optional().describe('audio: samples between window starts (default: the window)'),
  tokenizer: z.string().optional().describe('text: a Hugging Face tokenizer.json for JSON Lines of {"text": …}'),
  maxLength: z.number().int().positive().optional().describe("text: tokens per sample (default: the input's fixed length, else 128)"),
  padding: z.enum(['max-length', 'none']).default('max-length').describe('text: pad every sample to the length, or keep each length'),
  dims: z.record(z.string(), z.number().int().positive()).optional().describe('random data: the value of a symbolic (dynamic) dim, e.g. --dim sequence=64 (library: { sequence: 64 }); others are 32'),
});
export type DataOptions = z.input<typeof DataOptionsSchema>;
export type DataSettings = z.output<typeof DataOptionsSchema>;
