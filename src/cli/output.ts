import { ProgressLine } from './progress.js';

// No static import of ../index.js here: it would load the whole library (and onnxruntime's native
// binding) for --help and usage errors. main.ts hands over stringifyDocument before any command runs.
type Stringify = (doc: unknown) => string;
let stringify: Stringify | undefined;

/** Called by main.ts (preAction hook) with the library's stringifyDocument. */
export function setDocumentStringifier(fn: Stringify): void {
  stringify = fn;
}

/** Exactly one JSON document on stdout (stable key order, as the library writes documents). */
export function printJson(doc: unknown): void {
  if (!stringify) throw new Error('printJson called before the library was loaded');
  endProgress();
  process.stdout.write(stringify(doc));
}

/** `-o -`, `--report -`, `--summary -`: the document goes to stdout instead of a file. */
export const STDOUT_PATH = '-';

/** Human text on stderr: where the summary goes when stdout carries a document. */
export function printTextToStderr(text: string): void {
  endProgress();
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Human text on stdout (the progress line, if any, is cleared first: both may share one terminal). */
export function printText(text: string): void {
  endProgress();
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Notes and warnings on stderr, on their own line above the progress line. */
export function warn(text: string): void {
  if (active) active.message(`qtool: ${text}`);
  else process.stderr.write(`qtool: ${text}\n`);
}

export const isStderrTty = (): boolean => Boolean(process.stderr.isTTY) && !process.env.CI;

let active: ProgressLine | undefined;
let isStopped = false;

/**
 * The progress line on stderr (progress.ts): drawn only when stderr is a TTY, not under CI, not --quiet
 * and not after Ctrl-C. One at a time: starting one ends the previous one.
 */
export function startProgress(quiet = false): ProgressLine {
  active?.end();
  active = new ProgressLine(process.stderr, !quiet && !isStopped && isStderrTty());
  return active;
}

/** Clear the progress line (before a summary, a document or an error is printed). */
export function endProgress(): void {
  active?.end();
  active = undefined;
}

/** Ctrl-C: clear the line and draw no more progress in this process. */
export function stopProgress(): void {
  isStopped = true;
  endProgress();
}

export function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

/** A plain aligned text table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  // One pass, no spread: a model with 125,000 inputs must not overflow the argument list.
  const widths = header.map((h) => h.length);
  for (const r of rows) for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i], (r[i] ?? '').length);
  const line = (r: readonly string[]) => r.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
