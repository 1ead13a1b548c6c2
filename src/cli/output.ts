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
  process.stdout.write(stringify(doc));
}

/** Human text on stdout. */
export function printText(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Notes and warnings on stderr. */
export function warn(text: string): void {
  process.stderr.write(`qtool: ${text}\n`);
}

export const isStderrTty = (): boolean => Boolean(process.stderr.isTTY) && !process.env.CI;

/**
 * A one-line progress bar on stderr, drawn only when stderr is a TTY and not --quiet.
 * `update(done, total)` redraws at most 10 times a second.
 */
export function progressBar(label: string, quiet = false): { update(done: number, total: number, unit?: string): void; done(): void } {
  const enabled = !quiet && isStderrTty();
  const start = Date.now();
  let last = 0;
  return {
    update(done, total, unit = 'samples') {
      if (!enabled) return;
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const secs = (now - start) / 1000;
      const rate = secs > 0 ? done / secs : 0;
      const eta = rate > 0 && total > done ? (total - done) / rate : 0;
      const width = 24;
      const fill = total > 0 ? Math.round((width * Math.min(done, total)) / total) : 0;
      process.stderr.write(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${total} ${unit}  ${rate.toFixed(1)}/s  ETA ${eta.toFixed(0)}s   `);
    },
    done() {
      if (enabled) process.stderr.write('\n');
    },
  };
}

export function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

/** A plain aligned text table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) => r.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
