import type { Command } from 'commander';
import { EvalOptionsSchema, type EvalOptions } from '../../documents/index.js';
import { DATA_FLAGS, addFlags, flagParser, readFlags, type FlagSpec } from '../flags.js';
import { endProgress, printJson, printText, startProgress, STDOUT_PATH } from '../output.js';
import { phaseFrame } from '../progress.js';

/** The flags of `qtool eval`: each sets one field of EvalOptionsSchema (documents/eval-report.ts: help text and defaults). */
export const EVAL_FLAGS: readonly FlagSpec[] = [
  { flag: '--data <path>', field: 'data', kind: 'string', isRequired: true },
  { flag: '--labels <file>', field: 'labels', kind: 'string' },
  { flag: '--reference <model>', field: 'reference' },
  { flag: '--metric <name>', field: 'metric' },
  { flag: '--batch-size <n>', field: 'batchSize', number: { int: true } },
  { flag: '--samples <n>', field: 'maxSamples', number: { int: true }, aliases: ['--max-samples'] },
  { flag: '--threads <n>', field: 'threads', number: { int: true } },
  { flag: '--output-name <name>', field: 'outputName', aliases: ['--output'] },
  { flag: '--fail-under <x>', field: 'failUnder', note: '(accuracy as a fraction, e.g. 0.9)' },
  { flag: '--max-drop <x>', field: 'maxDrop' },
  ...DATA_FLAGS,
];

interface EvalFlags {
  data?: string;
  json?: boolean;
  markdown?: boolean;
  report?: string;
  force?: boolean;
}

export function register(program: Command): void {
  addFlags(
    program
      .command('eval')
      .description('accuracy (top-1/top-5), perplexity, and fidelity against a reference model; --fail-under/--max-drop gates exit 4')
      .argument('<model>', 'ONNX model to evaluate'),
    EvalOptionsSchema,
    EVAL_FLAGS,
  )
    .option('--report <file>', "also write the JSON report (qtool.eval/1) to this file ('-': on stdout, as --json)")
    .option('--force', 'overwrite an existing --report file')
    .option('--json', 'print one JSON document (qtool.eval/1)')
    .option('--markdown', 'print Markdown tables (for PRs and CI job summaries)')
    .action(async (modelPath: string, flags: EvalFlags & Record<string, unknown>) => {
      const api = await import('../../index.js');
      const flag = flagParser(api.UsageError);
      if (flags.json && flags.markdown) throw new api.UsageError('E_OPTION_CONFLICT', '--json and --markdown: expected at most one, got both');
      const options = readFlags(flags, EvalOptionsSchema, EVAL_FLAGS, flag) as EvalOptions;
      const reportToStdout = Boolean(flags.json) || flags.report === STDOUT_PATH;
      if (flags.report === STDOUT_PATH && flags.markdown) throw new api.UsageError('E_OPTION_CONFLICT', '--report - and --markdown: both print on stdout; give one');
      const reportFile = flags.report === STDOUT_PATH ? undefined : flags.report;
      // Before any work: a typo or an existing report fails now, not after the evaluation.
      // The report is an output like any other: never an input (the model, its data, the labels, the reference).
      if (reportFile) {
        const o = options as { data?: string; labels?: string; reference?: string };
        api.checkOutputPaths([reportFile], { force: flags.force === true, inputs: [modelPath, ...api.modelFiles(api.loadModel(modelPath, { checkExternalData: false })), o.data, o.labels, o.reference].filter((f): f is string => typeof f === 'string') });
      }
      const bar = startProgress();
      const report = await api.evaluate(
        modelPath,
        options,
        { onProgress: (e) => bar.update(phaseFrame('eval', e.done, e.total ?? e.done)) },
      );
      endProgress();
      if (reportFile) api.writeDocument(reportFile, report);
      if (reportToStdout) printJson(report);
      else if (flags.markdown) printText(api.renderEvalMarkdown(report));
      else printText(api.renderEvalText(report));
      const gateError = api.evalGateError(report);
      if (gateError) throw gateError;
    });
}
