import type { Command } from 'commander';
import { CalibrateOptionsSchema } from '../../documents/index.js';
import { DATA_FLAGS, addFlags, flagParser, readFlags, type FlagSpec } from '../flags.js';
import { endProgress, printJson, printText, printTextToStderr, startProgress, STDOUT_PATH, table, warn } from '../output.js';
import { phaseFrame } from '../progress.js';

/**
 * The flags of `qtool calibrate` that set CalibrateOptionsSchema fields (documents/calibrate-options.ts:
 * help text and defaults live there). The command's own flags (--data, --dim, -o, --force, …) follow.
 */
export const CALIBRATE_FLAGS: readonly FlagSpec[] = [
  { flag: '--method <name>', field: 'method' },
  { flag: '--percentile <p>', field: 'percentile' },
  { flag: '--symmetric', field: 'symmetric' },
  { flag: '--bins <n>', field: 'bins' },
  { flag: '--batch-size <n>', field: 'batchSize' },
  { flag: '--samples <n>', field: 'maxSamples', aliases: ['--max-samples'] },
  { flag: '--seed <n>', field: 'seed' },
  { flag: '--moving-average <c>', field: 'movingAverage' },
  { flag: '--skip-nonfinite', field: 'skipNonfinite' },
  ...DATA_FLAGS,
];

interface CalibrateFlags {
  data: string;
  allTensors?: boolean;
  output?: string;
  force?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export function register(program: Command): void {
  addFlags(
    program
      .command('calibrate')
      .description('run calibration data through the model and write activation ranges (qtool.calibration/1) for `qtool quantize --calib`')
      .argument('<model>', 'ONNX model file')
      .requiredOption('--data <path>', "calibration data: .npy (single input), .npz (arrays named after inputs), .jsonl, a folder of .npy/.npz, images (or class folders of them) or .wav files, or 'random'"),
    CalibrateOptionsSchema,
    CALIBRATE_FLAGS,
  )
    .option('--all-tensors', 'observe every float tensor of the main graph (default: only the tensors a static `qtool quantize` can read ranges for)')
    .option('-o, --output <file>', "table file (default: <model>.calib.json next to the model); '-': print the table (qtool.calibration/1) on stdout")
    .option('--force', 'overwrite an existing output file')
    .option('--json', 'print one JSON document (qtool.calibration-summary/1) on stdout')
    .option('--quiet', 'no progress bar')
    .action(async (modelPath: string, flags: CalibrateFlags & Record<string, unknown>) => {
      const api = await import('../../index.js');
      const flag = flagParser(api.UsageError);
      const candidate = readFlags(flags, CalibrateOptionsSchema, CALIBRATE_FLAGS, flag);
      // Parsed here to name the flag of a bad value; the settings go down as parsed.
      const parsed = CalibrateOptionsSchema.safeParse(candidate);
      if (!parsed.success) {
        const flagOf = (key: string) => CALIBRATE_FLAGS.find((f) => f.field === key)?.flag.split(' ')[0] ?? key;
        throw new api.UsageError('E_FLAG', parsed.error.issues.map((i) => `${i.path.length ? flagOf(String(i.path[0])) : 'options'}: ${i.message}`).join('; '));
      }
      const tableToStdout = flags.output === STDOUT_PATH;
      if (tableToStdout && flags.json) throw new api.UsageError('E_OPTION_CONFLICT', '-o - and --json: both print a document on stdout; give one');
      const bar = startProgress(flags.quiet);
      const { table: calibration, summary } = await api.calibrateModelFile(
        modelPath,
        { ...parsed.data, data: flags.data, output: tableToStdout ? null : flags.output, force: flags.force, allTensors: flags.allTensors },
        { onProgress: (p) => bar.update(phaseFrame('calibrate', p.done, p.total ?? p.done)) },
      );
      endProgress();
      if (!flags.quiet || flags.json) for (const w of summary.warnings) warn(`warning: ${w}`);
      if (flags.json) {
        printJson(summary);
        return;
      }
      if (tableToStdout) printJson(calibration);
      if (flags.quiet) return;
      const fmt = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(4));
      const rows = Object.entries(summary.ranges).map(([name, [lo, hi]]) => [name, fmt(lo), fmt(hi), summary.nonFiniteTensors.includes(name) ? 'non-finite values' : '']);
      const shown = rows.length > 20 ? [...rows.slice(0, 20), ['…', '', '', `${rows.length - 20} more`]] : rows;
      (tableToStdout ? printTextToStderr : printText)(
        [
          `${tableToStdout ? 'stdout' : summary.output}: ${summary.method} ranges of ${summary.tensorCount} tensors from ${summary.samples} samples (${summary.data})`,
          '',
          table(['tensor', 'low', 'high', 'note'], shown),
        ].join('\n'),
      );
    });
}
