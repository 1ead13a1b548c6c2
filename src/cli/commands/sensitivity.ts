import type { Command } from 'commander';
import { SensitivityRunOptionsSchema } from '../../documents/index.js';
import { DATA_FLAGS, addFlags, flagParser, readFlags, type FlagSpec } from '../flags.js';
import { endProgress, printJson, printText, startProgress, STDOUT_PATH } from '../output.js';
import { phaseFrame } from '../progress.js';

/** The flags of `qtool sensitivity`: each sets one field of SensitivityRunOptionsSchema (documents/sensitivity-report.ts: help text and defaults). */
export const SENSITIVITY_FLAGS: readonly FlagSpec[] = [
  { flag: '--data <path>', field: 'data', isRequired: true },
  { flag: '--labels <file>', field: 'labels' },
  { flag: '--bits <list>', field: 'bits' },
  { flag: '--loss <name>', field: 'loss' },
  { flag: '--probes <n>', field: 'probes', number: { int: true }, note: '(stops earlier when stderr < 5% of the mean)' },
  { flag: '--samples <n>', field: 'samples', number: { int: true } },
  { flag: '--epsilon <x>', field: 'epsilonRel' },
  { flag: '--seed <n>', field: 'seed' },
  { flag: '-o, --output <file>', field: 'output', note: "('-': on stdout, as --json)" },
  { flag: '--markdown-out <file>', field: 'markdownOutput' },
  { flag: '--html <file>', field: 'htmlOutput' },
  { flag: '--fail-over <x>', field: 'failOver' },
  { flag: '--force', field: 'force' },
  ...DATA_FLAGS,
];

interface SensitivityFlags {
  markdown?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export function register(program: Command): void {
  addFlags(
    program
      .command('sensitivity')
      .description('per-layer sensitivity: Hessian trace (forward-only Hutchinson), layer-wise proxy, HAWQ-v2 Omega, measured single-layer and leave-one-out losses')
      .argument('<model>', 'ONNX model file'),
    SensitivityRunOptionsSchema,
    SENSITIVITY_FLAGS,
  )
    .option('--markdown', 'print the Markdown table on stdout')
    .option('--json', 'print one JSON document (qtool.sensitivity/1) on stdout')
    .option('--quiet', 'no progress bar')
    .action(async (modelPath: string, flags: SensitivityFlags & Record<string, unknown>) => {
      const api = await import('../../index.js');
      const flag = flagParser(api.UsageError);
      const options = readFlags(flags, SensitivityRunOptionsSchema, SENSITIVITY_FLAGS, flag) as unknown as import('../../index.js').SensitivityRunOptions;
      if (options.loss === 'ce' && !options.labels) throw new api.UsageError('E_OPTION_CONFLICT', '--loss ce: expected --labels, got none');
      if (flags.json && flags.markdown) throw new api.UsageError('E_OPTION_CONFLICT', '--json and --markdown: expected at most one, got both');
      const reportToStdout = Boolean(flags.json) || options.output === STDOUT_PATH;
      if (options.output === STDOUT_PATH && flags.markdown) throw new api.UsageError('E_OPTION_CONFLICT', '-o - and --markdown: both print on stdout; give one');
      if (options.output === STDOUT_PATH) options.output = undefined;
      const bar = startProgress(flags.quiet);
      const probes = options.probes;
      const result = await api
        .sensitivity(modelPath, {
          ...options,
          ...(probes === undefined ? {} : { probes: Math.max(2, probes), minProbes: Math.min(4, Math.max(2, probes)) }),
          onProgress: (e) => bar.update(phaseFrame(e.phase, e.done, e.total, e.layer)),
        })
        .finally(endProgress);
      if (reportToStdout) printJson(result.report);
      else printText(result.markdown);
    });
}
