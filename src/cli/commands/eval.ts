import type { Command } from 'commander';
import { flagParser } from '../flags.js';
import { printJson, printText, progressBar } from '../output.js';

interface EvalFlags {
  data: string;
  labels?: string;
  reference?: string;
  metric?: string;
  batchSize: string;
  maxSamples?: string;
  threads: string;
  output?: string;
  failUnder?: string;
  maxDrop?: string;
  json?: boolean;
  markdown?: boolean;
  report?: string;
}

export function register(program: Command): void {
  program
    .command('eval')
    .description('accuracy (top-1/top-5), perplexity, and fidelity against a reference model; --fail-under/--max-drop gates exit 4')
    .argument('<model>', 'ONNX model to evaluate')
    .requiredOption('--data <path>', 'evaluation inputs (.npy/.npz/folder/.jsonl)')
    .option('--labels <file>', 'labels .npy: class ids, or next-token ids [N, T] for perplexity')
    .option('--reference <model>', 'reference (float) model: fidelity of all outputs and the baseline for --max-drop')
    .option('--metric <name>', 'gated metric: accuracy | top5 | perplexity | fidelity (default: accuracy with labels, else fidelity)')
    .option('--batch-size <n>', 'samples per run', '32')
    .option('--max-samples <n>', 'evaluate only the first N samples')
    .option('--threads <n>', 'onnxruntime intra-op threads', '1')
    .option('--output <name>', 'model output holding the logits (default: the first output)')
    .option('--fail-under <x>', 'exit 4 when the metric is worse than x (below; above for perplexity); accuracy as a fraction, e.g. 0.9')
    .option('--max-drop <x>', 'exit 4 when the metric drops more than x against --reference (percentage points for accuracy, percent for perplexity/fidelity)')
    .option('--report <file>', 'also write the JSON report (qtool.eval/1) to this file')
    .option('--json', 'print one JSON document (qtool.eval/1)')
    .option('--markdown', 'print Markdown tables (for PRs and CI job summaries)')
    .action(async (modelPath: string, flags: EvalFlags) => {
      const api = await import('../../index.js');
      const flag = flagParser(api.UsageError);
      const metric = flags.metric;
      if (metric !== undefined && !['accuracy', 'top5', 'perplexity', 'fidelity'].includes(metric)) {
        throw new api.UsageError('E_FLAG', `--metric: expected accuracy, top5, perplexity or fidelity, got "${metric}"`);
      }
      if (flags.json && flags.markdown) throw new api.UsageError('E_OPTION_CONFLICT', '--json and --markdown: expected at most one, got both');
      const bar = progressBar('eval');
      const report = await api.evaluate(
        modelPath,
        {
          data: flags.data,
          labels: flags.labels,
          reference: flags.reference,
          metric: metric as 'accuracy' | undefined,
          batchSize: flag.number('--batch-size', flags.batchSize, { int: true }),
          maxSamples: flag.number('--max-samples', flags.maxSamples, { int: true }),
          threads: flag.number('--threads', flags.threads, { int: true }),
          output: flags.output,
          failUnder: flag.number('--fail-under', flags.failUnder),
          maxDrop: flag.number('--max-drop', flags.maxDrop),
        },
        { onProgress: (e) => bar.update(e.done, e.total) },
      );
      bar.done();
      if (flags.report) api.writeDocument(flags.report, report);
      if (flags.json) printJson(report);
      else if (flags.markdown) printText(api.renderEvalMarkdown(report));
      else printText(api.renderEvalText(report));
      const gateError = api.evalGateError(report);
      if (gateError) throw gateError;
    });
}
