/**
 * Text data: JSON Lines of `{"text": "…"}` (optionally `"text_pair"` and an integer `"label"`),
 * tokenized with a Hugging Face `tokenizer.json` by @huggingface/tokenizers (pure JS, no
 * dependencies). Produces the inputs the model names: input ids, attention mask, token type ids and
 * position ids (matched by name, see TEXT_ROLES).
 *
 * Length: `maxLength`, else the input's fixed sequence length, else 128. Longer texts are truncated,
 * keeping a final special token ([SEP], </s>) in place. Padding `max-length` pads every sample to the
 * length with the tokenizer's pad token (mask 0); `none` keeps each text's own length (batches then end
 * where the length changes).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { InputError, UsageError } from '../errors.js';
import { describeFsError } from '../files.js';
import type { Model } from '../onnx/index.js';
import { makeTensor, type Tensor } from '../tensor/index.js';
import { convertDtype } from './convert.js';
import type { Chunk, ChunkSource, Layout } from './dataset.js';
import { formatDims } from './specs.js';

export const TEXT_PADDINGS = ['max-length', 'none'] as const;
export type TextPadding = (typeof TEXT_PADDINGS)[number];
export const DEFAULT_MAX_LENGTH = 128;

export interface TextOptions {
  /** Path of a Hugging Face tokenizer.json (a tokenizer_config.json beside it is read when present). */
  tokenizer: string;
  maxLength?: number;
  padding?: TextPadding;
}

export type TextRole = 'ids' | 'mask' | 'types' | 'positions';

/** Model input names → what they receive (first match wins). */
export const TEXT_ROLES: readonly (readonly [RegExp, TextRole])[] = [
  [/attention_?mask|^mask$|input_mask/i, 'mask'],
  [/token_?type_?ids|segment_?ids|^type_ids$/i, 'types'],
  [/position_?ids|^positions$/i, 'positions'],
  [/input_?ids|^ids$|token_?ids|^tokens$|^input$|^text$/i, 'ids'],
];

export function textRole(name: string): TextRole | undefined {
  return TEXT_ROLES.find(([re]) => re.test(name))?.[1];
}

interface Encoder {
  encode(text: string, options?: { text_pair?: string | null; return_token_type_ids?: boolean }): { ids: number[]; attention_mask: number[]; token_type_ids?: number[] };
}

export interface LoadedTokenizer {
  readonly file: string;
  readonly encoder: Encoder;
  /** Largest id + 1 over the vocabulary and added tokens. */
  readonly vocabSize: number;
  readonly padId: number;
  readonly padToken?: string;
  readonly specialIds: ReadonlySet<number>;
}

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, `cannot read ${what}`), { file, cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError('E_TOKENIZER', `${what} is not valid JSON (${(err as Error).message})`, { file, cause: err });
  }
}

/** Load a tokenizer.json; a tokenizer_config.json next to it supplies extra settings. */
export async function loadTokenizer(file: string): Promise<LoadedTokenizer> {
  const json = readJson(file, 'tokenizer') as Record<string, unknown>;
  if (!json || typeof json !== 'object' || typeof json.model !== 'object' || json.model === null) throw new InputError('E_TOKENIZER', 'expected a Hugging Face tokenizer.json with a "model" object', { file });
  const cfgFile = path.join(path.dirname(file), 'tokenizer_config.json');
  const config = fs.existsSync(cfgFile) ? (readJson(cfgFile, 'tokenizer config') as Record<string, unknown>) : {};
  const { Tokenizer } = await import('@huggingface/tokenizers');
  let encoder: Encoder;
  // tokenizers.js requires a decoder; qtool only encodes, so a missing one is filled with a no-op.
  const filled = json.decoder ? json : { ...json, decoder: { type: 'Fuse' } };
  try {
    encoder = new Tokenizer(filled, config) as unknown as Encoder;
    encoder.encode('qtool');
  } catch (err) {
    throw new InputError('E_TOKENIZER', `cannot load tokenizer: ${(err as Error).message}`, { file, cause: err });
  }
  const model = json.model as { vocab?: unknown };
  let vocabSize = 0;
  if (Array.isArray(model.vocab)) vocabSize = model.vocab.length;
  else if (model.vocab && typeof model.vocab === 'object') for (const v of Object.values(model.vocab as Record<string, number>)) if (typeof v === 'number' && v + 1 > vocabSize) vocabSize = v + 1;
  const specialIds = new Set<number>();
  const byContent = new Map<string, number>();
  for (const t of (json.added_tokens as { id: number; content: string; special?: boolean }[] | undefined) ?? []) {
    if (t.id + 1 > vocabSize) vocabSize = t.id + 1;
    if (t.special) specialIds.add(t.id);
    byContent.set(t.content, t.id);
  }
  const vocabId = (tok: string): number | undefined => byContent.get(tok) ?? (Array.isArray(model.vocab) ? (model.vocab as [string, number][]).findIndex((e) => e[0] === tok) : (model.vocab as Record<string, number> | undefined)?.[tok]);
  const padding = json.padding as { pad_id?: number; pad_token?: string } | null | undefined;
  let padId: number | undefined = padding?.pad_id;
  let padToken = padding?.pad_token;
  if (padId === undefined) {
    const named = typeof config.pad_token === 'string' ? [config.pad_token] : [];
    for (const tok of [...named, '[PAD]', '<pad>', '<|padding|>', '<|pad|>']) {
      const id = vocabId(tok);
      if (id !== undefined && id >= 0) {
        padId = id;
        padToken = tok;
        break;
      }
    }
  }
  return { file, encoder, vocabSize, padId: padId ?? 0, padToken, specialIds };
}

/** Rows of the embedding tables indexed directly by `input` (Gather of an initializer), if any. */
function embeddingRows(model: Model, input: string): { rows: number; table: string } | undefined {
  const graph = model.proto.graph!;
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  for (const n of graph.node) {
    if (n.opType !== 'Gather' || n.input[1] !== input) continue;
    const t = inits.get(n.input[0]);
    if (t && t.dims.length >= 1) return { rows: Number(t.dims[0]), table: t.name };
  }
  return undefined;
}

export interface TextPlan {
  readonly tokenizer: LoadedTokenizer;
  readonly roles: ReadonlyMap<string, TextRole>;
  readonly maxLength: number;
  readonly padding: TextPadding;
  readonly embedding?: { rows: number; table: string };
  readonly notes: readonly string[];
}

/** Match the model inputs to tokenizer outputs and settle the length; checks the vocabulary fits. */
export async function planText(model: Model, layouts: readonly Layout[], opts: TextOptions, dataFile: string): Promise<TextPlan> {
  const tokenizer = await loadTokenizer(opts.tokenizer);
  const roles = new Map<string, TextRole>();
  const notes: string[] = [];
  let fixedLen: number | undefined;
  for (const l of layouts) {
    const role = textRole(l.spec.name);
    if (!role) throw new InputError('E_DATA_MISSING', `input "${l.spec.name}" is not a text input: text data feeds inputs named like input_ids, attention_mask, token_type_ids, position_ids`, { file: dataFile });
    if (l.spec.unknownRank || l.sampleSpec.length !== 1) throw new InputError('E_DATA_SHAPE', `input "${l.spec.name}" ${formatDims(l.spec.dims)}: expected [batch, sequence] for text`, { file: dataFile });
    if (l.spec.dtype.startsWith('float') || l.spec.dtype === 'bool') {
      if (role !== 'mask' || l.spec.dtype === 'bool') throw new InputError('E_DATA_DTYPE', `input "${l.spec.name}" is ${l.spec.dtype}: expected an integer input for ${role}`, { file: dataFile });
    }
    const d = l.sampleSpec[0];
    if (typeof d === 'number') {
      if (fixedLen !== undefined && fixedLen !== d) throw new InputError('E_DATA_SHAPE', `text inputs fix different sequence lengths (${fixedLen}, ${d})`, { file: model.file });
      fixedLen = d;
    }
    roles.set(l.spec.name, role);
  }
  if (![...roles.values()].includes('ids')) throw new InputError('E_DATA_MISSING', `no input takes token ids (inputs: ${layouts.map((l) => l.spec.name).join(', ')}): expected one named like input_ids`, { file: dataFile });
  const ml = opts.maxLength;
  if (ml !== undefined && !(Number.isInteger(ml) && ml > 0)) throw new UsageError('E_FLAG', `--max-length: expected a positive integer, got ${ml}`);
  if (fixedLen !== undefined && ml !== undefined && ml !== fixedLen) throw new UsageError('E_FLAG', `--max-length ${ml}: the model fixes its sequence length at ${fixedLen}`);
  const maxLength = ml ?? fixedLen ?? DEFAULT_MAX_LENGTH;
  if (ml === undefined && fixedLen === undefined) notes.push(`text: no --max-length given, using ${DEFAULT_MAX_LENGTH} tokens`);
  const padding = fixedLen !== undefined ? 'max-length' : (opts.padding ?? 'max-length');
  if (opts.padding === 'none' && fixedLen !== undefined) throw new UsageError('E_FLAG', `--padding none: the model fixes its sequence length at ${fixedLen}`);
  const idsInput = [...roles].find(([, r]) => r === 'ids')![0];
  const embedding = embeddingRows(model, idsInput);
  if (embedding && tokenizer.vocabSize > embedding.rows) {
    throw new InputError('E_TOKENIZER_MISMATCH', `tokenizer has ${tokenizer.vocabSize} tokens, the model's embedding "${embedding.table}" has ${embedding.rows} rows: expected the tokenizer the model was trained with`, { file: tokenizer.file });
  }
  if (padding === 'max-length' && tokenizer.padToken === undefined) notes.push(`text: ${tokenizer.file} defines no pad token; padding with id ${tokenizer.padId} (attention mask 0)`);
  return { tokenizer, roles, maxLength, padding, embedding, notes };
}

interface TextRecord {
  text: string;
  pair?: string;
  label?: number;
}

function parseRecord(line: string, where: string): TextRecord {
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch (err) {
    throw new InputError('E_DATA_FORMAT', `not valid JSON (${(err as Error).message})`, { file: where, cause: err });
  }
  const o = rec as Record<string, unknown>;
  if (!o || typeof o !== 'object' || typeof o.text !== 'string') throw new InputError('E_DATA_FORMAT', `expected {"text": "…"}, got ${JSON.stringify(rec)?.slice(0, 60)}`, { file: where });
  if (o.text_pair !== undefined && typeof o.text_pair !== 'string') throw new InputError('E_DATA_FORMAT', '"text_pair": expected a string', { file: where });
  if (o.label !== undefined && !Number.isInteger(o.label)) throw new InputError('E_DATA_FORMAT', `"label": expected an integer class id, got ${JSON.stringify(o.label)}`, { file: where });
  return { text: o.text, pair: o.text_pair as string | undefined, label: o.label as number | undefined };
}

async function* records(file: string): AsyncGenerator<{ rec: TextRecord; where: string }> {
  const stream = fs.createReadStream(file);
  const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const line of rl) {
      lineNo++;
      if (!line.trim()) continue;
      const where = `${file}:${lineNo}`;
      yield { rec: parseRecord(line, where), where };
    }
  } finally {
    rl.close();
    stream.destroy();
  }
}

/** Count the records and collect their labels (all or none must have one). */
export async function scanTextFile(file: string): Promise<{ count: number; labels?: Tensor }> {
  let count = 0;
  const labels: bigint[] = [];
  let hasLabel: boolean | undefined;
  for await (const { rec, where } of records(file)) {
    hasLabel ??= rec.label !== undefined;
    if (hasLabel !== (rec.label !== undefined)) throw new InputError('E_DATA_FORMAT', '"label" on some records only: expected it on every record or on none', { file: where });
    if (rec.label !== undefined) labels.push(BigInt(rec.label));
    count++;
  }
  return { count, labels: labels.length ? makeTensor('int64', [labels.length], BigInt64Array.from(labels)) : undefined };
}

/** One encoded sample: ids, mask and type ids of equal length. */
export function encodeText(plan: TextPlan, rec: { text: string; pair?: string }, where: string): { ids: Int32Array; mask: Int32Array; types: Int32Array; length: number } {
  const t = plan.tokenizer;
  const enc = t.encoder.encode(rec.text, { text_pair: rec.pair ?? null, return_token_type_ids: true });
  let ids = enc.ids;
  let types = enc.token_type_ids ?? ids.map(() => 0);
  const L = plan.maxLength;
  if (ids.length > L) {
    const last = ids[ids.length - 1];
    const keepLast = t.specialIds.has(last);
    ids = keepLast ? [...ids.slice(0, L - 1), last] : ids.slice(0, L);
    types = keepLast ? [...types.slice(0, L - 1), types[types.length - 1]] : types.slice(0, L);
  }
  if (plan.embedding) {
    const bad = ids.find((id) => id >= plan.embedding!.rows);
    if (bad !== undefined) throw new InputError('E_TOKENIZER_MISMATCH', `token id ${bad} is past the model's embedding "${plan.embedding.table}" (${plan.embedding.rows} rows): expected the tokenizer the model was trained with (${t.file})`, { file: where });
  }
  const n = ids.length;
  const len = plan.padding === 'max-length' ? L : n;
  const out = { ids: new Int32Array(len).fill(t.padId), mask: new Int32Array(len), types: new Int32Array(len), length: len };
  out.ids.set(ids);
  out.mask.fill(1, 0, n);
  out.types.set(types);
  return out;
}

/** One chunk per record, every text input filled by its role. */
export function textSource(file: string, layouts: readonly Layout[], plan: TextPlan): ChunkSource {
  return async function* (_chunkSize, budget, notes) {
    let first = 0;
    for await (const { rec, where } of records(file)) {
      if (budget.left <= 0) break;
      const e = encodeText(plan, rec, where);
      const arrays = new Map<string, Tensor>();
      for (const l of layouts) {
        const role = plan.roles.get(l.spec.name)!;
        const data = role === 'ids' ? e.ids : role === 'mask' ? e.mask : role === 'types' ? e.types : Int32Array.from({ length: e.length }, (_, i) => i);
        const raw = makeTensor('int32', [1, e.length], data);
        arrays.set(l.spec.name, l.spec.dtype === 'int32' ? raw : l.spec.dtype.startsWith('float') ? convertDtype(makeTensor('float32', [1, e.length], Float32Array.from(data)), l.spec.dtype, { file: where, input: l.spec.name }) : convertDtype(raw, l.spec.dtype, { file: where, input: l.spec.name, notes }));
      }
      budget.left -= 1;
      const chunk: Chunk = { label: where, first: first++, count: 1, arrays, isFinite: true };
      yield chunk;
    }
  };
}

/** True when the first record of a JSON Lines file is `{"text": "…", …}` (text that needs a tokenizer). */
export function looksLikeText(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(1 << 16);
    const n = fs.readSync(fd, b, 0, b.length, 0);
    const line = b.toString('utf8', 0, n).split(/\r?\n/).find((l) => l.trim());
    if (!line) return false;
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      return !!rec && typeof rec === 'object' && typeof rec.text === 'string';
    } catch {
      return /^\s*\{\s*"text"\s*:\s*"/.test(line);
    }
  } finally {
    fs.closeSync(fd);
  }
}
