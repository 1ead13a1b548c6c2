import { z } from 'zod';
import { InputError } from '../errors.js';
import { readInputText, writeFileAtomic } from '../files.js';

/** Flatten zod issues into `path: message` lines. */
export function flattenIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${issueMessage(i)}`).join('; ');
}

/** zod says only "Invalid input" for a failed union; a union of literals (bits 4|8) names its values instead. */
function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code !== 'invalid_union') return issue.message;
  const branches = issue.errors;
  const values = branches.every((b) => b.length === 1 && b[0].code === 'invalid_value' && b[0].path.length === 0) ? branches.flatMap((b) => (b[0] as z.core.$ZodIssueInvalidValue).values) : [];
  return values.length ? `Invalid option: expected one of ${values.map((v) => JSON.stringify(v)).join('|')}` : issue.message;
}

/** Parse and validate a JSON document file against its schema (InputError naming the file on failure). */
export function readDocument<S extends z.ZodType>(file: string, schema: S): z.infer<S> {
  const text = readInputText(file);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InputError('E_DOCUMENT_INVALID', `not valid JSON (${(err as Error).message})`, { file, cause: err });
  }
  return parseDocument(json, schema, file);
}

export function parseDocument<S extends z.ZodType>(json: unknown, schema: S, file = '<document>'): z.infer<S> {
  const r = schema.safeParse(json);
  if (!r.success) throw new InputError('E_DOCUMENT_INVALID', `invalid document: ${flattenIssues(r.error)}`, { file });
  return r.data;
}

/** JSON with the document's `kind` and `version` first and the rest in the order the object was built; newline-terminated. */
export function stringifyDocument(doc: unknown): string {
  return `${JSON.stringify(orderKeys(doc, true), jsonReplacer, 2)}\n`;
}

function orderKeys(v: unknown, top = false): unknown {
  if (Array.isArray(v)) return v.map((x) => orderKeys(x));
  if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    const first = top ? ['kind', 'version'].filter((k) => k in o) : [];
    const out: Record<string, unknown> = {};
    for (const k of [...first, ...keys.filter((k) => !first.includes(k))]) if (o[k] !== undefined) out[k] = orderKeys(o[k]);
    return out;
  }
  return v;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  return value;
}

/** Write a document atomically as stable JSON. */
export function writeDocument(file: string, doc: unknown): void {
  writeFileAtomic(file, stringifyDocument(doc));
}
