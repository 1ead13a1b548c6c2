import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { SearchRunOptionsSchema } from '../../documents/index.js';
import { DATA_FLAGS, addFlags, flagParser, readFlags, type FlagSpec } from '../flags.js';
import { endProgress, printJson, printText, printTextToStderr, startProgress, STDOUT_PATH } from '../output.js';
import { phaseFrame } from '../progress.js';

/** The flags of `qtool search`: each sets one field of SearchRunOptionsSchema (documents/search-report.ts: help text and defaults). */
export const SEARCH_FLAGS: readonly FlagSpec[] = [
  { flag: '--data <path>', field: 'data', isRequired: true },
  { flag: '--eval <path>', field: 'eval', isRequired: true },
  { flag: '--labels <file>', field: 'labels' },
  { flag: '--eval-labels <file>', field: 'evalLabels' },
  { flag: '--eval-samples <n>', field: 'evalSamples', number: { int: true } },
  { flag: '--bits <list>', field: 'bits' },
  { flag: '--metric <name>', field: 'metric' },
  { flag: '--max-drop <x>', field: 'maxDrop', number: { min: 0, percent: true }, note: '("1" or "1%")' },
  { flag: '--max-size <MB>', field: 'maxSizeBytes', number: { min: 0 }, note: '(in MB = 10^6 bytes)' },
  { flag: '--max-evaluations <n>', field: 'maxEvaluations', number: { int: true } },
  { flag: '--objective <name>', field: 'objective' },
  { flag: '--max-latency <ms>', field: 'maxLatencyMs', number: { min: 0 }, note: '(milliseconds per run at --latency-batch)' },
  { flag: '--measure-latency', field: 'measureLatency' },
  { flag: '--tune-seconds <s>', field: 'tuneSeconds', number: { min: 0 } },
  { flag: '--latency-batch <n>', field: 'latencyBatch', number: { int: true } },
  { flag: '--no-latency-cache', field: 'latencyCache', kind: 'negate' },
  { flag: '--mode <mode>', field: 'mode', note: '(static: QDQ W8A8 at 8 bits, weight-only int4 at 4; calibrates once on --data)' },
  { flag: '--calib <table>', field: 'calib' },
  { flag: '--evaluator <name>', field: 'evaluator' },
  { flag: '--sensitivity <file>', field: 'sensitivityReport' },
  { flag: '--probes <n>', field: 'probes', number: { int: true } },
  { flag: '-o, --output <file>', field: 'planOutput', note: "('-': print it on stdout)" },
  { flag: '--model-out <file>', field: 'modelOutput' },
  { flag: '--report <file>', field: 'reportOutput', note: "('-': on stdout, as --json)" },
  { flag: '--markdown-out <file>', field: 'markdownOutput' },
  { flag: '--html <file>', field: 'htmlOutput' },
  { flag: '--force', field: 'force' },
  ...DATA_FLAGS,
];

interface SearchFlags {
  json?: boolean;
  quiet?: boolean;
}

/** A field's schema default (the one place defaults live), for checks that depend on the effective value. */
const defaultOf = <K extends keyof typeof SearchRunOptionsSchema.shape>(field: K) => SearchRunOptionsSchema.shape[field].parse(undefined);

export function register(program: Command): void {
  addFlags(
    program
      .command('search')
      .description('mixed-precision search: bisection over the sensitivity order (O(log L) real evaluations), a size budget by knapsack, or latency (--objective latency, --max-latency) from profiled per-layer costs, verified by a real measurement; writes plan, model and report')
      .argument('<model>', 'ONNX model file'),
    SearchRunOptionsSchema,
    SEARCH_FLAGS,
  )
    .option('--json', 'print the search report JSON on stdout')
    .option('--quiet', 'no progress bar')
    .action(async (modelPath: string, flags: SearchFlags & Record<string, unknown>) => {
      const api = await import('../../index.js');
      const flag = flagParser(api.UsageError);
      const { probes, maxSizeBytes, ...options } = readFlags(flags, SearchRunOptionsSchema, SEARCH_FLAGS, flag) as unknown as import('../../index.js').SearchRunOptions & { probes?: number };
      const metric = options.metric ?? defaultOf('metric');
      const mode = options.mode ?? defaultOf('mode');
      // A folder --eval may carry its labels (image class folders); the library checks those.
      if ((metric === 'accuracy' || metric === 'perplexity') && !options.evalLabels && !(typeof options.eval === 'string' && fs.statSync(options.eval, { throwIfNoEntry: false })?.isDirectory())) throw new api.UsageError('E_OPTION_CONFLICT', `--metric ${metric}: expected --eval-labels, got none`);
      if (options.calib && mode !== 'static') throw new api.UsageError('E_OPTION_CONFLICT', `--calib: expected --mode static, got --mode ${mode}`);
      const planToStdout = options.planOutput === STDOUT_PATH;
      const reportToStdout = Boolean(flags.json) || options.reportOutput === STDOUT_PATH;
      if (planToStdout && reportToStdout) throw new api.UsageError('E_OPTION_CONFLICT', `-o - and ${flags.json ? '--json' : '--report -'}: both print a document on stdout; give one`);
      // A document for stdout is written to a temp file by the search itself and printed from there, so
      // it also reaches stdout when the budget is missed (exit 4: the search writes its outputs, then throws).
      const tmp = planToStdout || reportToStdout ? fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-search-')) : undefined;
      const stdoutDoc = tmp ? path.join(tmp, planToStdout ? 'plan.json' : 'report.json') : undefined;
      if (planToStdout) options.planOutput = stdoutDoc;
      if (options.reportOutput === STDOUT_PATH) options.reportOutput = undefined;
      if (reportToStdout && !planToStdout) options.reportOutput ??= stdoutDoc;
      const bar = startProgress(flags.quiet);
      let markdown: string | undefined;
      try {
        const result = await api
          .search(modelPath, {
            ...options,
            maxSizeBytes: maxSizeBytes === undefined ? undefined : maxSizeBytes * 1e6,
            sensitivity: probes === undefined ? undefined : { probes: Math.max(2, probes), minProbes: Math.min(4, Math.max(2, probes)) },
            onProgress: (e) => bar.update(phaseFrame(e.phase, e.done, e.total, 'label' in e ? e.label : 'layer' in e ? e.layer : undefined)),
          })
          .finally(endProgress);
        markdown = result.markdown;
        if (reportToStdout && options.reportOutput !== stdoutDoc) printJson(result.report);
      } finally {
        if (stdoutDoc && fs.existsSync(stdoutDoc)) process.stdout.write(fs.readFileSync(stdoutDoc));
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
      }
      if (planToStdout) {
        if (!flags.quiet) printTextToStderr(markdown);
      } else if (!reportToStdout) printText(markdown);
    });
}
