import type { Command } from 'commander';
import { flagParser } from '../flags.js';
import { printJson, printText, progressBar } from '../output.js';

interface SearchFlags {
  data: string;
  labels?: string;
  eval: string;
  evalLabels?: string;
  evalSamples?: string;
  bits: string;
  metric: string;
  maxDrop: string;
  maxSize?: string;
  maxEvaluations?: string;
  mode: string;
  calib?: string;
  evaluator: string;
  sensitivity?: string;
  probes?: string;
  output?: string;
  modelOut?: string;
  report?: string;
  markdownOut?: string;
  html?: string;
  json?: boolean;
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command('search')
    .description('mixed-precision search: bisection over the sensitivity order (O(log L) real evaluations), or a size budget by knapsack; writes plan, model and report')
    .argument('<model>', 'ONNX model file')
    .requiredOption('--data <path>', 'calibration inputs (sensitivity probes; with --mode static also the one calibration pass)')
    .requiredOption('--eval <path>', 'evaluation inputs')
    .option('--labels <file>', 'calibration labels .npy (sensitivity loss ce)')
    .option('--eval-labels <file>', 'evaluation labels .npy (needed for --metric accuracy/perplexity)')
    .option('--eval-samples <n>', 'use only the first N evaluation samples')
    .option('--bits <list>', 'precision levels, e.g. 4,8 or 4,8,float', '4,8')
    .option('--metric <name>', 'accuracy | agreement | sqnr | cosine | perplexity', 'accuracy')
    .option('--max-drop <x>', 'allowed drop: percentage points for accuracy/agreement, percent relative for sqnr/cosine/perplexity ("1" or "1%")', '1')
    .option('--max-size <MB>', 'budget form: minimise summed Omega under this model size (MB = 10^6 bytes), then verify once')
    .option('--max-evaluations <n>', 'cap on full evaluations (default floor(2 log2 L) + 4)')
    .option('--mode <mode>', 'plan mode: static (QDQ W8A8 at 8 bits, weight-only int4 at 4; calibrates once on --data) | dynamic | weight-only', 'weight-only')
    .option('--calib <table>', '--mode static: reuse a calibration table (qtool calibrate) instead of calibrating on --data')
    .option('--evaluator <name>', 'auto (rewrite unless the model is large) | rewrite (applyPlan + onnxruntime per evaluation: the written model is the one measured) | weights (fake-quantized weights, one session)', 'auto')
    .option('--sensitivity <file>', 'reuse a sensitivity report instead of measuring')
    .option('--probes <n>', 'Hessian probes per layer when measuring sensitivity (default 8; 2 with --mode static, where measured static losses order the layers)')
    .option('-o, --output <file>', 'write the plan (qtool.plan/1)')
    .option('--model-out <file>', 'write the quantized model')
    .option('--report <file>', 'write the search report (qtool.search-report/1)')
    .option('--markdown-out <file>', 'write the Markdown report')
    .option('--html <file>', 'write a self-contained HTML page with the size-vs-metric chart and Pareto front')
    .option('--json', 'print the search report JSON on stdout')
    .option('--quiet', 'no progress bar')
    .action(async (modelPath: string, flags: SearchFlags) => {
      const api = await import('../../index.js');
      const flag = flagParser(api.UsageError);
      const bits = flags.bits.split(',').map((s) => s.trim());
      for (const b of bits) if (!['4', '8', '16', 'float'].includes(b)) throw new api.UsageError('E_FLAG', `--bits: expected a list of 4, 8, 16, float, got "${flags.bits}"`);
      if (new Set(bits).size < 2) throw new api.UsageError('E_FLAG', `--bits: expected at least two levels, got "${flags.bits}"`);
      if (!['accuracy', 'agreement', 'sqnr', 'cosine', 'perplexity'].includes(flags.metric)) throw new api.UsageError('E_FLAG', `--metric: expected accuracy, agreement, sqnr, cosine or perplexity, got "${flags.metric}"`);
      if ((flags.metric === 'accuracy' || flags.metric === 'perplexity') && !flags.evalLabels) throw new api.UsageError('E_OPTION_CONFLICT', `--metric ${flags.metric}: expected --eval-labels, got none`);
      if (!['static', 'dynamic', 'weight-only'].includes(flags.mode)) throw new api.UsageError('E_FLAG', `--mode: expected static, dynamic or weight-only, got "${flags.mode}"`);
      if (!['auto', 'weights', 'rewrite'].includes(flags.evaluator)) throw new api.UsageError('E_FLAG', `--evaluator: expected auto, weights or rewrite, got "${flags.evaluator}"`);
      if (flags.calib && flags.mode !== 'static') throw new api.UsageError('E_OPTION_CONFLICT', `--calib: expected --mode static, got --mode ${flags.mode}`);
      const maxSize = flag.number('--max-size', flags.maxSize, { min: 0 });
      const bar = progressBar('search', flags.quiet);
      const probes = flag.number('--probes', flags.probes, { int: true });
      const result = await api
        .search(modelPath, {
          data: flags.data,
          labels: flags.labels,
          eval: flags.eval,
          evalLabels: flags.evalLabels,
          evalSamples: flag.number('--eval-samples', flags.evalSamples, { int: true }),
          bits: bits.map((b) => (b === 'float' ? 'float' : Number(b))) as (4 | 8 | 16 | 'float')[],
          metric: flags.metric as 'accuracy',
          maxDrop: flag.number('--max-drop', flags.maxDrop, { min: 0, percent: true }),
          maxSizeBytes: maxSize === undefined ? undefined : maxSize * 1e6,
          maxEvaluations: flag.number('--max-evaluations', flags.maxEvaluations, { int: true }),
          mode: flags.mode as 'weight-only',
          evaluator: flags.evaluator as 'weights',
          calib: flags.calib,
          sensitivityReport: flags.sensitivity,
          sensitivity: probes === undefined ? undefined : { probes: Math.max(2, probes), minProbes: Math.min(4, Math.max(2, probes)) },
          planOutput: flags.output,
          modelOutput: flags.modelOut,
          reportOutput: flags.report,
          markdownOutput: flags.markdownOut,
          htmlOutput: flags.html,
          onProgress: (e) => bar.update(e.done, e.total, e.phase === 'evaluate' ? `evaluations (${e.label})` : e.phase),
        })
        .finally(() => bar.done());
      if (flags.json) printJson(result.report);
      else printText(result.markdown);
    });
}
