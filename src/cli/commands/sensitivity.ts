import type { Command } from 'commander';
import { flagParser } from '../flags.js';
import { printJson, printText, progressBar } from '../output.js';

interface SensitivityFlags {
  data: string;
  labels?: string;
  bits: string;
  loss?: string;
  probes?: string;
  samples?: string;
  epsilon?: string;
  seed?: string;
  output?: string;
  markdown?: boolean;
  markdownOut?: string;
  html?: string;
  failOver?: string;
  json?: boolean;
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command('sensitivity')
    .description('per-layer sensitivity: Hessian trace (forward-only Hutchinson), layer-wise proxy, HAWQ-v2 Omega, measured single-layer and leave-one-out losses')
    .argument('<model>', 'ONNX model file')
    .requiredOption('--data <path>', 'calibration inputs (.npy/.npz/folder/.jsonl); a seeded subset is used')
    .option('--labels <file>', 'labels .npy (one class id per sample): loss ce')
    .option('--bits <list>', 'candidate weight bit widths', '4,8')
    .option('--loss <name>', 'kl | ce | mse (default: ce with --labels, kl for [N, C] outputs, else mse)')
    .option('--probes <n>', 'maximum Rademacher probes per layer (stops earlier when stderr < 5% of the mean)', '32')
    .option('--samples <n>', 'calibration samples in the probe subset', '64')
    .option('--epsilon <x>', 'finite-difference step relative to the layer RMS weight', '0.01')
    .option('--seed <n>', 'seed of the subset and the probes', '1234')
    .option('-o, --output <file>', 'write the report (qtool.sensitivity/1) to this file')
    .option('--markdown', 'print the Markdown table on stdout')
    .option('--markdown-out <file>', 'write the Markdown table to this file')
    .option('--html <file>', 'write a self-contained HTML page with an SVG bar chart')
    .option('--fail-over <x>', "exit 4 (after writing) when any layer's measured loss exceeds x")
    .option('--json', 'print one JSON document (qtool.sensitivity/1) on stdout')
    .option('--quiet', 'no progress bar')
    .action(async (modelPath: string, flags: SensitivityFlags) => {
      const api = await import('../../index.js');
      const flag = flagParser(api.UsageError);
      const bits = flags.bits.split(',').map((s) => s.trim());
      for (const b of bits) if (!['4', '8', '16'].includes(b)) throw new api.UsageError('E_FLAG', `--bits: expected a list of 4, 8, 16, got "${flags.bits}"`);
      if (flags.loss !== undefined && !['kl', 'ce', 'mse'].includes(flags.loss)) throw new api.UsageError('E_FLAG', `--loss: expected kl, ce or mse, got "${flags.loss}"`);
      if (flags.loss === 'ce' && !flags.labels) throw new api.UsageError('E_OPTION_CONFLICT', '--loss ce: expected --labels, got none');
      if (flags.json && flags.markdown) throw new api.UsageError('E_OPTION_CONFLICT', '--json and --markdown: expected at most one, got both');
      const bar = progressBar('sensitivity', flags.quiet);
      const probes = flag.number('--probes', flags.probes, { int: true })!;
      const result = await api.sensitivity(modelPath, {
        data: flags.data,
        labels: flags.labels,
        bits: bits.map(Number) as (4 | 8 | 16)[],
        loss: flags.loss as 'kl' | undefined,
        probes: Math.max(2, probes),
        minProbes: Math.min(4, Math.max(2, probes)),
        samples: flag.number('--samples', flags.samples, { int: true }),
        epsilonRel: flag.number('--epsilon', flags.epsilon),
        seed: flag.number('--seed', flags.seed),
        output: flags.output,
        markdownOutput: flags.markdownOut,
        htmlOutput: flags.html,
        failOver: flag.number('--fail-over', flags.failOver),
        onProgress: (e) => bar.update(e.done, e.total, `${e.phase}${e.layer ? ` ${e.layer}` : ''}`),
      }).finally(() => bar.done());
      if (flags.json) printJson(result.report);
      else printText(result.markdown);
    });
}
