import { modelFiles } from '../onnx/index.js';
import { flattenIssues, SensitivityOptionsSchema, writeDocument, type SensitivityOptions, type SensitivityReport } from '../documents/index.js';
import { GateError, UsageError } from '../errors.js';
import { checkOutputPaths, writeFileAtomic } from '../files.js';
import { sensitivityHtml, sensitivityMarkdown } from '../report/index.js';
import { measureSensitivity, type SensitivityProgress, type SensitivityStats } from '../sensitivity/index.js';
import { readOptionsOf, withoutDataOptions } from './data-read.js';
import type { FeedSource, LabelSource } from '../data/index.js';
import { loadData } from './load-data.js';
import { modelContext } from './model-context.js';

/** Options of `sensitivity()`; the fields `qtool sensitivity` sets are described (help text, defaults) in SensitivityRunOptionsSchema. */
export interface SensitivityRunOptions extends SensitivityOptions {
  /** Calibration data (the probe subset is drawn from it): a path, or feeds in memory. */
  data: string | FeedSource;
  /** Labels file (.npy/.csv) or labels in memory (default: the data's own, e.g. image class folders). */
  labels?: string | LabelSource;
  /** Write the report JSON here. */
  output?: string;
  /** Write the Markdown table here. */
  markdownOutput?: string;
  /** Write the HTML page here. */
  htmlOutput?: string;
  /** GateError (exit 4) after writing when any layer's measured loss exceeds this. */
  failOver?: number;
  /** Overwrite existing output files (without it an existing output is refused: E_OUTPUT_EXISTS, exit 2). */
  force?: boolean;
  onProgress?: (e: SensitivityProgress) => void;
}

export interface SensitivityRunResult {
  report: SensitivityReport;
  markdown: string;
  stats: SensitivityStats;
}

/** `qtool sensitivity`: load, draw the seeded probe subset, measure, write JSON/Markdown/HTML, gate. */
export async function sensitivity(modelPath: string, opts: SensitivityRunOptions): Promise<SensitivityRunResult> {
  const ctx = modelContext(modelPath);
  const { model } = ctx;
  checkOutputPaths([opts.output, opts.markdownOutput, opts.htmlOutput], {
    force: opts.force === true,
    inputs: [...modelFiles(model), opts.data, opts.labels].filter((f): f is string => typeof f === 'string'),
  });
  const { data: _d, labels: _l, output, markdownOutput, htmlOutput, failOver, force: _f, onProgress, ...sensOpts } = opts;
  // Parsed once here; the settings (defaults applied) go down.
  const parsed = SensitivityOptionsSchema.safeParse(sensOpts);
  if (!parsed.success) throw new UsageError('E_FLAG', `invalid sensitivity options: ${flattenIssues(parsed.error)}`);
  const settings = withoutDataOptions(parsed.data);
  const data = await loadData(opts.data, model, { labels: opts.labels, subset: settings.samples, seed: settings.seed, batchSize: settings.samples, read: readOptionsOf(parsed.data) });
  const { report, stats } = await measureSensitivity(model, { batches: data.batches, labels: data.labels }, { ...settings, samples: data.samples }, {
    onProgress,
    source: ctx.source,
  });
  const markdown = sensitivityMarkdown(report);
  if (output) writeDocument(output, report);
  if (markdownOutput) writeFileAtomic(markdownOutput, markdown);
  if (htmlOutput) writeFileAtomic(htmlOutput, sensitivityHtml(report));
  if (failOver !== undefined) {
    const over = report.layers.filter((l) => l.bits.some((e) => e.measuredLoss > failOver));
    if (over.length > 0) {
      const worst = over.map((l) => `${l.id} (${Math.max(...l.bits.map((e) => e.measuredLoss)).toExponential(3)})`).join(', ');
      throw new GateError('E_FAIL_OVER', `sensitivity: expected every layer's measured loss <= ${failOver}, got ${over.length} over: ${worst}`, { file: modelPath });
    }
  }
  return { report, markdown, stats };
}
