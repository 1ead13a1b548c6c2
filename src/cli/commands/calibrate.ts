import type { Command } from 'commander';
import { collect, flagParser } from '../flags.js';
import { printJson, printText, progressBar, table, warn } from '../output.js';

interface CalibrateFlags {
  data: string;
  method?: string;
  percentile?: string;
  symmetric?: boolean;
  bins?: string;
  batchSize?: string;
  maxSamples?: string;
  seed?: string;
  movingAverage?: string;
  skipNonfinite?: boolean;
  allTensors?: boolean;
  dim: string[];
  output?: string;
  force?: boolean;
  json?: boolean;
  quiet?: boolean;
}


export function register(program: Command): void {
  program
    .command('calibrate')
    .description('run calibration data through the model and write activation ranges (qtool.calibration/1) for `qtool quantize --calib`')
    .argument('<model>', 'ONNX model file')
    .requiredOption('--data <path>', "calibration data: .npy (single input), .npz (arrays named after inputs), a folder of .npy/.npz, .jsonl, or 'random'")
    .option('--method <name>', 'minmax | percentile | entropy | mse (default minmax)')
    .option('--percentile <p>', 'percentile method: percentile taken as the range end (default 99.999)')
    .option('--symmetric', 'percentile/entropy/mse: ranges [-t, t] instead of the observed range clipped to t')
    .option('--bins <n>', 'histogram bins of |x| for entropy/mse (default 2048)')
    .option('--batch-size <n>', 'samples per onnxruntime run (default 16)')
    .option('--max-samples <n>', 'use only the first N samples')
    .option('--seed <n>', 'seed for --data random (default 0)')
    .option('--moving-average <c>', 'minmax: exponential moving average constant in (0, 1] across batches (default 0: true min/max)')
    .option('--skip-nonfinite', 'skip samples holding NaN/Inf instead of failing')
    .option('--all-tensors', 'observe every float tensor of the main graph (default: only the tensors a static `qtool quantize` can read ranges for)')
    .option('--dim <name=value>', 'random data: value of a symbolic (dynamic) dim, e.g. --dim sequence=64 (repeatable; others default to 32)', collect, [])
    .option('-o, --output <file>', 'table file (default: <model>.calib.json next to the model)')
    .option('--force', 'overwrite an existing output file')
    .option('--json', 'print one JSON document (qtool.calibration-summary/1) on stdout')
    .option('--quiet', 'no progress bar')
    .action(async (modelPath: string, flags: CalibrateFlags) => {
      const api = await import('../../index.js');
      const flag = flagParser(api.UsageError);
      const randomDims: Record<string, number> = {};
      for (const d of flags.dim) {
        const m = /^(.+)=(\d+)$/.exec(d);
        if (!m || Number(m[2]) < 1) throw new api.UsageError('E_FLAG', `--dim: expected name=positive integer, got "${d}"`);
        randomDims[m[1]] = Number(m[2]);
      }
      const candidate = {
        method: flags.method,
        percentile: flag.number('--percentile', flags.percentile),
        symmetric: flags.symmetric,
        bins: flag.number('--bins', flags.bins),
        batchSize: flag.number('--batch-size', flags.batchSize),
        maxSamples: flag.number('--max-samples', flags.maxSamples),
        seed: flag.number('--seed', flags.seed),
        movingAverage: flag.number('--moving-average', flags.movingAverage),
        skipNonfinite: flags.skipNonfinite,
      };
      const parsed = api.CalibrateOptionsSchema.safeParse(candidate);
      if (!parsed.success) {
        const flag = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
        throw new api.UsageError('E_FLAG', parsed.error.issues.map((i) => `${i.path.length ? flag(String(i.path[0])) : 'options'}: ${i.message}`).join('; '));
      }
      const bar = progressBar('calibrate', flags.quiet);
      const { summary } = await api.calibrateModelFile(
        modelPath,
        { ...parsed.data, data: flags.data, output: flags.output, force: flags.force, randomDims, allTensors: flags.allTensors },
        { onProgress: (p) => bar.update(p.done, p.total) },
      );
      bar.done();
      if (!flags.quiet || flags.json) for (const w of summary.warnings) warn(`warning: ${w}`);
      if (flags.json) {
        printJson(summary);
        return;
      }
      if (flags.quiet) return;
      const fmt = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(4));
      const rows = Object.entries(summary.ranges).map(([name, [lo, hi]]) => [name, fmt(lo), fmt(hi), summary.nonFiniteTensors.includes(name) ? 'non-finite values' : '']);
      const shown = rows.length > 20 ? [...rows.slice(0, 20), ['…', '', '', `${rows.length - 20} more`]] : rows;
      printText(
        [
          `${summary.output}: ${summary.method} ranges of ${summary.tensorCount} tensors from ${summary.samples} samples (${summary.data})`,
          '',
          table(['tensor', 'low', 'high', 'note'], shown),
        ].join('\n'),
      );
    });
}
