/**
 * The CLI's progress line on stderr: one line, redrawn in place, only on a TTY (and not under CI or
 * --quiet). Every redraw clears the whole line first (no residue from a longer frame) and fits the
 * terminal's width (columns − 1, so the cursor never wraps); a message (warning, note, "stopping…")
 * clears the line, prints on its own line and the frame is redrawn under it. The first frames carry no
 * ETA (there is no rate yet); the count is always `done/total <unit>` with a count noun as the unit.
 */

export interface ProgressFrame {
  /** What is happening, as a present participle: "calibrating", "searching", "measuring sensitivity". */
  label: string;
  done: number;
  total: number;
  /** A count noun: "samples", "layers", "evaluations", "jobs", "models". */
  unit: string;
  /** The item being worked on (a layer, a configuration, a job), shown last and shortened first. */
  detail?: string;
  /** `total` is an upper bound (the search's evaluation cap): shown as `3/≤10`, with no ETA. */
  isTotalBound?: boolean;
}

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): boolean;
}

const CLEAR = '\r\x1b[2K';

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Shorten `s` to `n` characters with an ellipsis in the middle (keeps the end of a layer path). */
function shorten(s: string, n: number): string {
  if (s.length <= n) return s;
  if (n <= 1) return s.slice(0, n);
  const head = Math.ceil((n - 1) / 3);
  return `${s.slice(0, head)}…${s.slice(s.length - (n - 1 - head))}`;
}

/** One frame as text, at most `columns − 1` characters wide. */
export function renderProgress(f: ProgressFrame, elapsedMs: number, columns: number): string {
  const max = Math.max(10, columns - 1);
  const total = Math.max(0, f.total);
  const done = Math.min(Math.max(0, f.done), total || f.done);
  const count = `${done}/${f.isTotalBound ? '≤' : ''}${total} ${f.unit}`;
  const secs = elapsedMs / 1000;
  // A rate (and from it an ETA) only once there is something to measure: ≥ 1 item and ≥ 1 s.
  const rate = done > 0 && secs >= 1 && !f.isTotalBound ? done / secs : undefined;
  const finished = total > 0 && done >= total;
  const etaMs = rate !== undefined ? ((total - done) / rate) * 1000 : undefined;
  const tail = finished ? formatDuration(elapsedMs) : etaMs !== undefined ? `ETA ${etaMs < 1000 ? '<1s' : formatDuration(etaMs)}` : '';
  const rateText = rate !== undefined && !finished ? `${rate >= 10 ? rate.toFixed(0) : rate.toFixed(1)}/s` : '';
  const bar = (w: number) => {
    const fill = total > 0 ? Math.round((w * done) / total) : 0;
    return `[${'#'.repeat(fill)}${'.'.repeat(w - fill)}]`;
  };
  const join = (parts: string[]) => parts.filter(Boolean).join('  ');
  // Shrink in this order: the bar, then the rate. The detail shows whole if some shape leaves room
  // for it; else shortened (≥ 12 characters) beside the smallest shape; else not at all.
  const attempts: [number, boolean][] = [[24, true], [16, true], [24, false], [16, false], [10, false]];
  const bases = attempts.map(([w, withRate]) => join([f.label, bar(w), count, withRate ? rateText : '', tail])).filter((b) => b.length <= max);
  if (bases.length) {
    if (!f.detail) return bases[0];
    const whole = bases.find((b) => b.length + 2 + f.detail!.length <= max);
    if (whole) return `${whole}  ${f.detail}`;
    const small = bases[bases.length - 1];
    const room = max - small.length - 2;
    return room >= 12 ? `${small}  ${shorten(f.detail, room)}` : bases[0];
  }
  const rest = join([count, tail]);
  const labelRoom = max - rest.length - 2;
  return labelRoom >= 4 ? `${shorten(f.label, labelRoom)}  ${rest}` : shorten(rest, max);
}

export class ProgressLine {
  private frame: ProgressFrame | undefined;
  private drawn = false;
  private lastDraw = 0;
  private start: number;
  private stopped = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly enabled: boolean,
    private readonly now: () => number = Date.now,
  ) {
    this.start = now();
  }

  /** Redraw with this frame (at most 10 times a second, always for the first and the last frame). */
  update(frame: ProgressFrame): void {
    const labelChanged = this.frame?.label !== frame.label;
    this.frame = frame;
    if (!this.enabled || this.stopped) return;
    if (labelChanged) this.start = this.now();
    const t = this.now();
    if (this.drawn && !labelChanged && t - this.lastDraw < 100 && frame.done < frame.total) return;
    this.draw(t);
  }

  /** Print `text` on its own line; the progress line, if any, is redrawn below it. */
  message(text: string): void {
    const line = text.endsWith('\n') ? text : `${text}\n`;
    if (this.drawn) {
      this.stream.write(`${CLEAR}${line}`);
      this.drawn = false;
      if (this.frame && !this.stopped) this.draw(this.now());
    } else this.stream.write(line);
  }

  /** Clear the line and stop drawing (end of the work, or an interrupt). */
  end(): void {
    if (this.drawn) this.stream.write(CLEAR);
    this.drawn = false;
    this.stopped = true;
  }

  private draw(t: number): void {
    this.lastDraw = t;
    this.stream.write(`${CLEAR}${renderProgress(this.frame!, t - this.start, this.stream.columns ?? 80)}`);
    this.drawn = true;
  }
}

/**
 * The one vocabulary of progress lines: each library phase gets a present-participle label and the
 * count noun its done/total counts.
 */
export const PROGRESS_PHASES = {
  calibrate: { label: 'calibrating', unit: 'samples' },
  quantize: { label: 'quantizing', unit: 'samples' },
  reference: { label: 'running the float model', unit: 'batches' },
  hessian: { label: 'estimating Hessian traces', unit: 'layers' },
  measured: { label: 'measuring layer losses', unit: 'runs' },
  evaluate: { label: 'searching', unit: 'evaluations' },
  search: { label: 'searching', unit: 'evaluations' },
  eval: { label: 'evaluating', unit: 'samples' },
  gate: { label: 'evaluating', unit: 'samples' },
  fidelity: { label: 'checking fidelity', unit: 'samples' },
  budget: { label: 'checking the budget', unit: 'samples' },
  rewrite: { label: 'rewriting', unit: 'layers' },
  verify: { label: 'loading in onnxruntime', unit: 'models' },
  save: { label: 'saving', unit: 'files' },
  bench: { label: 'benchmarking', unit: 'models' },
  batch: { label: 'running jobs', unit: 'jobs' },
} as const satisfies Record<string, { label: string; unit: string }>;

export type ProgressPhase = keyof typeof PROGRESS_PHASES;

/** A frame in the shared vocabulary. */
export function phaseFrame(phase: ProgressPhase, done: number, total: number, detail?: string): ProgressFrame {
  const p = PROGRESS_PHASES[phase];
  return { label: p.label, unit: p.unit, done, total, detail, isTotalBound: phase === 'evaluate' || phase === 'search' };
}
