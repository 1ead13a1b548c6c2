import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openDataset, textRole, type Dataset } from '../../src/data/index.js';
import { InputError, UsageError } from '../../src/errors.js';
import { makeNode, tensorToProto } from '../../src/onnx/index.js';
import { makeTensor, type Feeds } from '../../src/tensor/index.js';
import { identityModel } from '../helpers/input-models.js';
import { makeTempDir } from '../helpers/tmp.js';

async function collect(ds: Dataset, batchSize: number): Promise<Feeds[]> {
  const out: Feeds[] = [];
  for await (const f of ds.batches(batchSize)) out.push(f);
  return out;
}

const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'hello', 'world', 'the', 'cat', '##s', 'sat', 'on', 'mat'];

/** A BERT-style WordPiece tokenizer.json over VOCAB, with [CLS] … [SEP] (pairs: [CLS] A [SEP] B [SEP]). */
function tokenizerJson(): object {
  const vocab = Object.fromEntries(VOCAB.map((t, i) => [t, i]));
  const special = (t: string, type = 0) => ({ SpecialToken: { id: t, type_id: type } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [0, 1, 2, 3].map((id) => ({ id, content: VOCAB[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special('[CLS]'), { Sequence: { id: 'A', type_id: 0 } }, special('[SEP]')],
      pair: [special('[CLS]'), { Sequence: { id: 'A', type_id: 0 } }, special('[SEP]'), { Sequence: { id: 'B', type_id: 1 } }, special('[SEP]', 1)],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

/** A model with an embedding Gather on input_ids (rows = vocabulary the model knows). */
function bertLike(rows: number, seq: number | string = 'sequence') {
  const table = tensorToProto('embeddings', makeTensor('float32', [rows, 2], new Float32Array(rows * 2)));
  return identityModel(
    [
      { name: 'input_ids', dtype: 'int64', dims: ['batch', seq] },
      { name: 'attention_mask', dtype: 'int64', dims: ['batch', seq] },
      { name: 'token_type_ids', dtype: 'int64', dims: ['batch', seq] },
    ],
    { nodes: [makeNode({ opType: 'Gather', inputs: ['embeddings', 'input_ids'], outputs: ['emb'] })], initializers: [table] },
  );
}

describe('text data (JSON Lines + tokenizer.json)', () => {
  let dir: string;
  let tok: string;
  let data: string;
  beforeAll(() => {
    dir = makeTempDir();
    tok = path.join(dir, 'tokenizer.json');
    fs.writeFileSync(tok, JSON.stringify(tokenizerJson()));
    data = path.join(dir, 'text.jsonl');
    fs.writeFileSync(data, ['{"text": "Hello world", "label": 1}', '', '{"text": "The cats sat on the mat", "label": 0}', '{"text": "hello", "text_pair": "the mat", "label": 1}'].join('\n') + '\n');
  });

  it('maps input names to roles', () => {
    expect(['input_ids', 'attention_mask', 'token_type_ids', 'position_ids', 'input', 'segment_ids', 'past_key'].map(textRole)).toEqual(['ids', 'mask', 'types', 'positions', 'ids', 'types', undefined]);
  });

  it('tokenizes, pads to --max-length with the pad token, fills mask and type ids, reads labels', async () => {
    const ds = await openDataset(data, bertLike(VOCAB.length), { tokenizer: tok, maxLength: 8 });
    expect(ds.sampleCount).toBe(3);
    expect(Array.from(ds.labels!.data as BigInt64Array, Number)).toEqual([1, 0, 1]);
    const [b] = await collect(ds, 4);
    expect(b.input_ids.dims).toEqual([3, 8]);
    expect(b.input_ids.dtype).toBe('int64');
    const ids = Array.from(b.input_ids.data as BigInt64Array, Number);
    expect(ids.slice(0, 8)).toEqual([2, 4, 5, 3, 0, 0, 0, 0]); // [CLS] hello world [SEP] [PAD]…
    // 9 tokens truncated to 8, keeping the final [SEP]: [CLS] the cat ##s sat on the [SEP]
    expect(ids.slice(8, 16)).toEqual([2, 6, 7, 8, 9, 10, 6, 3]);
    expect(ids.slice(16, 24)).toEqual([2, 4, 3, 6, 11, 3, 0, 0]);
    expect(Array.from(b.attention_mask.data as BigInt64Array, Number).slice(0, 8)).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    expect(Array.from(b.token_type_ids.data as BigInt64Array, Number).slice(16, 24)).toEqual([0, 0, 0, 1, 1, 1, 0, 0]);
  });

  it('padding none keeps each length (batches end where it changes); a fixed sequence length wins', async () => {
    const ds = await openDataset(data, bertLike(VOCAB.length), { tokenizer: tok, padding: 'none' });
    expect(ds.warnings.join()).toMatch(/no --max-length given, using 128 tokens/);
    const bs = await collect(ds, 4);
    expect(bs.map((b) => b.input_ids.dims)).toEqual([[1, 4], [1, 9], [1, 6]]);
    const fixed = await openDataset(data, bertLike(VOCAB.length, 6), { tokenizer: tok });
    const [f] = await collect(fixed, 4);
    expect(f.input_ids.dims).toEqual([3, 6]);
    await expect(openDataset(data, bertLike(VOCAB.length, 6), { tokenizer: tok, maxLength: 8 })).rejects.toThrow(UsageError);
  });

  it('a tokenizer larger than the model embedding is a tokenizer mismatch (exit 3, names the tokenizer)', async () => {
    const err = (await openDataset(data, bertLike(10), { tokenizer: tok }).catch((e: unknown) => e)) as InputError;
    expect(err).toBeInstanceOf(InputError);
    expect(err.code).toBe('E_TOKENIZER_MISMATCH');
    expect(err.exitCode).toBe(3);
    expect(err.file).toBe(tok);
    expect(err.message).toMatch(/tokenizer has 12 tokens, the model's embedding "embeddings" has 10 rows/);
  });

  it('refuses a broken tokenizer, records without text, and inputs that are not text', async () => {
    const broken = path.join(dir, 'broken.json');
    fs.writeFileSync(broken, '{"model": {"type": "Nope"}}');
    const e1 = (await openDataset(data, bertLike(12), { tokenizer: broken }).catch((e: unknown) => e)) as InputError;
    expect(e1.code).toBe('E_TOKENIZER');
    expect(e1.file).toBe(broken);
    const noText = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(noText, '{"text": "hello"}\n{"txt": "x"}\n');
    await expect(openDataset(noText, bertLike(12), { tokenizer: tok })).rejects.toThrow(/bad\.jsonl:2: expected \{"text": "…"\}/);
    const pixels = identityModel([{ name: 'pixel_values', dtype: 'float32', dims: ['N', 3, 8, 8] }]);
    await expect(openDataset(data, pixels, { tokenizer: tok })).rejects.toThrow(/input "pixel_values" is not a text input/);
  });
});

describe('text without a tokenizer', () => {
  it('says to pass --tokenizer', async () => {
    const dir = makeTempDir();
    const f = path.join(dir, 't.jsonl');
    fs.writeFileSync(f, '{"text": "hello"}\n');
    await expect(openDataset(f, bertLike(12))).rejects.toThrow(/records hold "text": pass --tokenizer tokenizer\.json/);
  });
});
