import type { UsageError } from '../index.js';

type UsageErrorClass = new (code: string, message: string) => UsageError;

export interface NumberFlagOptions {
  /** Whole numbers only. */
  int?: boolean;
  /** Smallest accepted value (default: 1 with `int`, none otherwise). */
  min?: number;
  /** Accept a trailing '%' ("1%" reads as 1). */
  percent?: boolean;
}

/**
 * Flag parsing shared by every command. Takes the UsageError class from the lazily imported
 * library so that `--help` never loads it.
 */
export function flagParser(Usage: UsageErrorClass) {
  return {
    /** A numeric flag, or undefined when absent; anything else is a UsageError (exit 2). */
    number(flag: string, value: string | undefined, opts: NumberFlagOptions = {}): number | undefined {
      if (value === undefined) return undefined;
      const text = opts.percent ? value.trim().replace(/%$/, '') : value.trim();
      const n = Number(text);
      const min = opts.min ?? (opts.int ? 1 : -Infinity);
      const what = opts.int ? (min === 1 ? 'a positive integer' : `an integer ≥ ${min}`) : min === -Infinity ? 'a number' : `a number ≥ ${min}`;
      if (text === '' || !Number.isFinite(n) || (opts.int && !Number.isInteger(n)) || n < min) {
        throw new Usage('E_FLAG', `${flag}: expected ${what}, got "${value}"`);
      }
      return n;
    },
    /** A UsageError E_FLAG with this message (exit 2). */
    usage(message: string): UsageError {
      return new Usage('E_FLAG', message);
    },
    /** A flag whose value must be one of `choices`. */
    oneOf<T extends string>(flag: string, value: string | undefined, choices: readonly T[]): T | undefined {
      if (value === undefined) return undefined;
      if (!(choices as readonly string[]).includes(value)) {
        throw new Usage('E_FLAG', `${flag}: expected ${choices.join(', ')}, got "${value}"`);
      }
      return value as T;
    },
  };
}

/** Repeatable flag collector for commander (`--x a --x b`). */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Repeatable, comma-separated flag collector (`--x a,b --x c`). */
export const collectList = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').filter(Boolean)];

/**
 * A field of an option schema as the CLI reads it: zod's public surface (`.description`, `.safeParse`,
 * `.unwrap()`, `.options`), typed structurally so that the CLI needs no zod import of its own.
 */
interface SchemaField {
  readonly description?: string;
  safeParse(value: unknown): { success: boolean; data?: unknown };
  unwrap?: () => SchemaField;
  readonly options?: readonly unknown[];
  readonly def?: { readonly type?: string };
  /** The item schema of an array field. */
  readonly element?: SchemaField;
}

/** An option schema of src/documents/*-options.ts (a zod object). */
export interface OptionSchema {
  readonly shape: Readonly<Record<string, SchemaField>>;
}

/**
 * One row of a command's flag table: the flag (commander syntax), the schema field it sets, and how
 * its text is read. Help text, choices and the default come from the schema field (`.describe()`,
 * `z.enum`/literal union, `.default()`), never from the row.
 */
export interface FlagSpec {
  /** Commander syntax: '--bits <n>', '-o, --output <file>', '--force', '--no-fold'. */
  flag: string;
  /** The schema field (camelCase) the flag sets. */
  field: string;
  /**
   * How the text becomes the field's value (default from the schema field's type): 'string' as is;
   * 'number' through flagParser.number (with `number` options); 'choice' checked against the schema's
   * choices; 'boolean' a switch; 'negate' a `--no-x` switch that sets the field false; 'list' a
   * comma-separated repeatable list; 'pairs' a repeatable NAME=N (a record of positive integers).
   */
  kind?: 'string' | 'number' | 'choice' | 'boolean' | 'negate' | 'list' | 'pairs';
  number?: NumberFlagOptions;
  /** Extra help after the schema's description (e.g. what the CLI accepts beyond the library). */
  note?: string;
  /** A flag the command cannot run without (commander's requiredOption). */
  isRequired?: boolean;
  /** Old spellings still accepted, hidden from --help. */
  aliases?: readonly string[];
}

/** The long flag name of a commander flag syntax ('-o, --output <file>' → '--output'). */
export function longFlag(flag: string): string {
  const m = /--[a-z0-9-]+/.exec(flag);
  if (!m) throw new Error(`flag table: no long flag in "${flag}"`);
  return m[0];
}

/** The commander attribute name of a flag ('--batch-size' → 'batchSize', '--no-fold' → 'fold'). */
function attributeOf(flag: string): string {
  return longFlag(flag)
    .replace(/^--(no-)?/, '')
    .replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function fieldOf(schema: OptionSchema, spec: FlagSpec): SchemaField {
  const f = schema.shape[spec.field];
  if (!f) throw new Error(`flag table: ${spec.flag} names "${spec.field}", not a field of its option schema`);
  return f;
}

/** The innermost schema of a field (through optional/default), and its choices for enums and literal unions. */
function innerOf(field: SchemaField): { type: string; choices?: readonly (string | number)[] } {
  let f = field;
  while (f.def?.type !== 'array' && !f.options && typeof f.unwrap === 'function') f = f.unwrap();
  // A union of literals (or an enum) has choices; a union of other types (string | feeds) has none.
  const values = f.options?.map((o) => (typeof o === 'object' && o !== null && 'value' in o ? (o as { value: unknown }).value : o));
  const choices = values?.every((v) => typeof v === 'string' || typeof v === 'number') ? (values as (string | number)[]) : undefined;
  if (f.options && !choices) return { type: 'string' };
  return { type: f.def?.type ?? 'unknown', choices };
}

function kindOf(field: SchemaField, spec: FlagSpec): NonNullable<FlagSpec['kind']> {
  if (spec.kind) return spec.kind;
  const { type, choices } = innerOf(field);
  if (type === 'array') return 'list';
  if (type === 'record') return 'pairs';
  if (type === 'boolean') return 'boolean';
  if (type === 'number') return 'number';
  if (choices && choices.every((c) => typeof c === 'number')) return 'number';
  if (choices) return 'choice';
  return 'string';
}

/** The field's description, or that of the schema it wraps (a `.default()` on a described enum). */
function descriptionOf(field: SchemaField): string {
  let f: SchemaField | undefined = field;
  while (f) {
    if (f.description) return f.description;
    f = typeof f.unwrap === 'function' && f.def?.type !== 'array' ? f.unwrap() : undefined;
  }
  return '';
}

function defaultOf(field: SchemaField): unknown {
  const r = field.safeParse(undefined);
  return r.success ? r.data : undefined;
}

/** The --help line of a flag: the schema's description, its choices, the CLI note, and its default. */
export function flagHelp(schema: OptionSchema, spec: FlagSpec): string {
  const field = fieldOf(schema, spec);
  const kind = kindOf(field, spec);
  const { choices } = innerOf(field);
  const description = descriptionOf(field);
  const parts = [kind === 'negate' ? `do not ${description}` : description];
  if (choices && kind !== 'negate' && kind !== 'boolean') parts[0] += `: ${choices.join(' | ')}`;
  if (spec.note) parts.push(spec.note);
  if (kind === 'list') parts.push('(comma-separated, repeatable)');
  if (kind === 'pairs') parts.push('(repeatable)');
  const d = defaultOf(field);
  if (kind !== 'negate' && kind !== 'boolean' && kind !== 'list' && kind !== 'pairs' && d !== undefined) parts.push(`(default ${String(d)})`);
  if (kind === 'list' && Array.isArray(d) && d.length > 0) parts.push(`(default ${d.join(',')})`);
  return parts.filter(Boolean).join(' ');
}

/** The array schema of a list field (through optional/default), or undefined. */
function arrayOf(field: SchemaField): SchemaField | undefined {
  let f = field;
  while (f.def?.type !== 'array' && typeof f.unwrap === 'function') f = f.unwrap();
  return f.def?.type === 'array' ? f : undefined;
}

/**
 * The items of a list flag as the schema's item type wants them: one of the item's choices (4,8,float
 * for `z.literal` unions, matched by their text), a number (flagParser.number with the row's `number`
 * options) for number items, else the text as is.
 */
function listItems(name: string, raw: readonly string[], field: SchemaField, spec: FlagSpec, parser: ReturnType<typeof flagParser>): unknown[] {
  const element = arrayOf(field)?.element;
  if (!element) return [...raw];
  const { type, choices } = innerOf(element);
  if (choices) {
    return raw.map((item) => {
      const c = choices.find((choice) => String(choice) === item.trim());
      if (c === undefined) throw parser.usage(`${name}: expected a list of ${choices.join(', ')}, got "${raw.join(',')}"`);
      return c;
    });
  }
  if (type === 'number') return raw.map((item) => parser.number(name, item, spec.number));
  return [...raw];
}

/** Minimal commander surface used here (the Command type stays commander's). */
interface FlagCommand {
  option(flags: string, description: string, parse?: (value: string, previous?: string[]) => string[]): unknown;
  requiredOption(flags: string, description: string): unknown;
  addOption(option: unknown): unknown;
  createOption(flags: string, description?: string): { hideHelp(): unknown; argParser?: unknown };
}

/** Register a command's flag table on a commander command: one option per row, help from the schema. */
export function addFlags<C extends FlagCommand>(cmd: C, schema: OptionSchema, table: readonly FlagSpec[]): C {
  for (const spec of table) {
    const help = flagHelp(schema, spec);
    const kind = kindOf(fieldOf(schema, spec), spec);
    // No initial value: an absent list flag stays undefined and the schema's default applies.
    if (kind === 'list') cmd.option(spec.flag, help, collectList);
    else if (kind === 'pairs') cmd.option(spec.flag, help, (v: string, prev: string[] = []) => [...prev, v]);
    else if (spec.isRequired) cmd.requiredOption(spec.flag, help);
    else cmd.option(spec.flag, help);
    for (const alias of spec.aliases ?? []) {
      const value = /<[^>]+>/.exec(spec.flag)?.[0];
      cmd.addOption(cmd.createOption(value ? `${alias} ${value}` : alias).hideHelp());
    }
  }
  return cmd;
}

type FlagValues = Readonly<Record<string, unknown>>;

/**
 * The option object a flag table's values describe (fields of absent flags left out, so the schema's
 * defaults apply when the door parses it). Numbers are read with flagParser.number, choices checked
 * against the schema's; everything else is checked by the door's one zod parse.
 */
export function readFlags(flags: FlagValues, schema: OptionSchema, table: readonly FlagSpec[], parser: ReturnType<typeof flagParser>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const spec of table) {
    const field = fieldOf(schema, spec);
    const kind = kindOf(field, spec);
    const name = longFlag(spec.flag);
    let raw = flags[attributeOf(spec.flag)];
    for (const alias of spec.aliases ?? []) if (raw === undefined || (Array.isArray(raw) && raw.length === 0)) raw = flags[attributeOf(alias)] ?? raw;
    if (raw === undefined) continue;
    switch (kind) {
      case 'negate':
        if (raw === false) out[spec.field] = false;
        break;
      case 'boolean':
        if (raw === true) out[spec.field] = true;
        break;
      case 'number':
        out[spec.field] = parser.number(name, String(raw), spec.number);
        break;
      case 'choice':
        out[spec.field] = parser.oneOf(name, String(raw), (innerOf(field).choices ?? []).map(String));
        break;
      case 'list':
        out[spec.field] = listItems(name, raw as string[], field, spec, parser);
        break;
      case 'pairs': {
        const rec: Record<string, number> = {};
        for (const p of raw as string[]) {
          const m = /^([^=]+)=(\d+)$/.exec(p);
          if (!m || Number(m[2]) < 1) throw parser.usage(`${name}: expected NAME=positive integer, got "${p}"`);
          rec[m[1]] = Number(m[2]);
        }
        out[spec.field] = rec;
        break;
      }
      case 'string':
        out[spec.field] = String(raw);
        break;
    }
  }
  return out;
}

/**
 * The data flags every command that reads data shares (documents/data-options.ts: help text and
 * defaults live there): preprocessing, audio, text, and the dims of random data.
 */
export const DATA_FLAGS: readonly FlagSpec[] = [
  { flag: '--preprocess <recipe>', field: 'preprocess', kind: 'string' },
  { flag: '--sample-rate <hz>', field: 'sampleRate' },
  { flag: '--window <n>', field: 'window' },
  { flag: '--hop <n>', field: 'hop' },
  { flag: '--tokenizer <file>', field: 'tokenizer' },
  { flag: '--max-length <n>', field: 'maxLength' },
  { flag: '--padding <mode>', field: 'padding' },
  { flag: '--dim <name=n>', field: 'dims' },
];

