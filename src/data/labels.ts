/**
 * Label files: an integer .npy (one class id per sample, in sample order) or a CSV.
 *
 * CSV: either one column (a class id per sample, in sample order) or `file,label` rows matched to the
 * data's files (paths relative to the data folder, or bare file names when those are unique). A
 * header row is recognised by its names (file/path/image/filename, label/class/target). Labels may be
 * integer ids or class names: names map to the ImageFolder classes when the data has them, else to
 * their sorted order (with a note).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { describeFsError } from '../files.js';
import { makeTensor, type Tensor } from '../tensor/index.js';
import { labelsFromSource, type LabelSource } from './feeds.js';
import { readLabels } from './npy.js';

/** What the data says about its samples, for matching CSV rows. */
export interface LabelTarget {
  readonly sampleCount?: number;
  readonly sampleKeys?: readonly string[];
  readonly classes?: readonly string[];
}

function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out;
}

const HEADER_FILE = /^(file|files|path|filename|file_name|image|image_path|name|id)$/i;
const HEADER_LABEL = /^(label|labels|class|class_id|target|y|category)$/i;

/** Read class ids from a CSV (see the module comment); `notes` collects one-line notes. */
export function readLabelsCsv(file: string, target: LabelTarget = {}, notes?: Set<string>): Tensor {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot read labels'), { file, cause: err });
  }
  const lines = text.split(/\r?\n/).map((l, i) => ({ cells: splitCsvLine(l), lineNo: i + 1, raw: l })).filter((l) => l.raw.trim() !== '');
  if (lines.length === 0) throw new InputError('E_LABELS', 'labels: expected at least one row, got an empty file', { file });
  const width = lines[0].cells.length;
  if (width > 2) throw new InputError('E_LABELS', `labels: expected 1 column (label) or 2 (file,label), got ${width}`, { file: `${file}:${lines[0].lineNo}` });
  const first = lines[0].cells;
  const hasHeader = width === 2 ? HEADER_FILE.test(first[0]) && HEADER_LABEL.test(first[1]) : HEADER_LABEL.test(first[0]);
  const rows = hasHeader ? lines.slice(1) : lines;
  for (const r of rows) if (r.cells.length !== width) throw new InputError('E_LABELS', `labels: expected ${width} columns, got ${r.cells.length}`, { file: `${file}:${r.lineNo}` });
  const rawLabels = rows.map((r) => r.cells[width - 1]);
  const isInt = rawLabels.every((v) => /^-?\d+$/.test(v));
  let toId: (v: string, where: string) => number;
  if (isInt) toId = (v) => Number(v);
  else {
    const classes = target.classes ?? [...new Set(rawLabels)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (!target.classes) notes?.add(`${file}: class names mapped to ids in sorted order (${classes.slice(0, 4).map((c, i) => `${c}=${i}`).join(', ')}${classes.length > 4 ? ', …' : ''})`);
    const ids = new Map(classes.map((c, i) => [c, i]));
    toId = (v, where) => {
      const id = ids.get(v);
      if (id === undefined) throw new InputError('E_LABELS', `labels: class "${v}" is not one of the data's class folders (${classes.slice(0, 5).join(', ')}${classes.length > 5 ? ', …' : ''})`, { file: where });
      return id;
    };
  }
  if (width === 1) {
    const out = BigInt64Array.from(rows, (r) => BigInt(toId(r.cells[0], `${file}:${r.lineNo}`)));
    return makeTensor('int64', [out.length], out);
  }
  const keys = target.sampleKeys;
  if (!keys) throw new InputError('E_LABELS', 'labels: file,label rows need data read from files (an image or audio folder); for other data give one label per line in sample order', { file });
  const byKey = new Map<string, number>();
  const byBase = new Map<string, number | null>();
  for (const r of rows) {
    const k = r.cells[0].replace(/\\/g, '/').replace(/^\.\//, '');
    const id = toId(r.cells[1], `${file}:${r.lineNo}`);
    if (byKey.has(k)) throw new InputError('E_LABELS', `labels: "${k}" is listed twice`, { file: `${file}:${r.lineNo}` });
    byKey.set(k, id);
    const b = path.posix.basename(k);
    byBase.set(b, byBase.has(b) ? null : id);
  }
  const out = new BigInt64Array(keys.length);
  const baseCount = new Map<string, number>();
  for (const k of keys) baseCount.set(path.posix.basename(k), (baseCount.get(path.posix.basename(k)) ?? 0) + 1);
  keys.forEach((key, i) => {
    const k = key.replace(/\\/g, '/');
    let id = byKey.get(k);
    if (id === undefined && baseCount.get(path.posix.basename(k)) === 1) id = byBase.get(path.posix.basename(k)) ?? undefined;
    if (id === undefined) throw new InputError('E_LABELS', `labels: no row for data file "${k}"`, { file });
    out[i] = BigInt(id);
  });
  return makeTensor('int64', [out.length], out);
}

/** Labels from a file: .csv (matched to the data, see readLabelsCsv) or an integer .npy. */
export function readLabelFile(file: string, target: LabelTarget = {}, notes?: Set<string>): Tensor {
  return file.toLowerCase().endsWith('.csv') ? readLabelsCsv(file, target, notes) : readLabels(file);
}

/**
 * The labels of a dataset: a file (.npy or .csv matched to the data), in-memory labels, or — when
 * none is given — the labels the data carries itself (ImageFolder class folders, JSONL `label`).
 */
export async function resolveLabels(labels: string | LabelSource | undefined, dataset: LabelTarget & { readonly labels?: Tensor }, notes?: Set<string>): Promise<Tensor | undefined> {
  if (labels === undefined) return dataset.labels;
  if (typeof labels === 'string') return readLabelFile(labels, dataset, notes);
  return labelsFromSource(labels);
}
