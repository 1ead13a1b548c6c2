import type { Command } from 'commander';
import { printJson, printText, warn } from '../output.js';

interface BenchFlags {
  data?: string;
  runs: string;
  warmup: string;
  batch: string;
  threads: string;
  json?: boolean;
  markdown?: boolean;
}

function positiveInt(flag: string, v: string, allowZero = false): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw usage(`${flag}: expected a ${allowZero ? 'non-negative' : 'positive'} integer, got "${v}"`);
  return n;
}

let usage: (msg: string) => Error = (msg) => new Error(msg);

export function register(program: Command): void {
  program
    .command('bench')
    .description('measure latency (p50/p90/p99), throughput, session creation time, peak memory and size of one or more models; ratios against the first')
    .argument('<models...>', 'ONNX model files (the first is the baseline, e.g. the float model)')
    .option('--data <path>', 'input data (.npy/.npz/folder/.jsonl); inputs are generated from the model shapes when absent')
    .option('--runs <n>', 'timed runs per model and batch size', '100')
    .option('--warmup <n>', 'untimed warm-up runs', '10')
    .option('--batch <sizes>', 'comma-separated batch sizes, e.g. 1,8,32', '1')
    .option('--threads <n>', 'onnxruntime intra-op threads', '1')
    .option('--json', 'print one JSON document (qtool.bench/1)')
    .option('--markdown', 'print a Markdown table (for PRs and CI job summaries)')
    .action(async (models: string[], flags: BenchFlags) => {
      const api = await import('../../index.js');
      usage = (msg) => new api.UsageError('E_FLAG', msg);
      if (flags.json && flags.markdown) throw new api.UsageError('E_OPTION_CONFLICT', '--json and --markdown: expected at most one, got both');
      const batchSizes = flags.batch.split(',').map((s) => positiveInt('--batch', s.trim()));
      // Ctrl-C: kill the measuring child at once (the global handler then exits 130).
      const controller = new AbortController();
      process.on('SIGINT', () => controller.abort());
      const report = await api.bench(
        models,
        {
          data: flags.data,
          runs: positiveInt('--runs', flags.runs),
          warmup: positiveInt('--warmup', flags.warmup, true),
          batchSizes,
          threads: positiveInt('--threads', flags.threads),
        },
        { signal: controller.signal, onProgress: (e) => e.phase === 'start' && process.stderr.isTTY && warn(`measuring ${e.model} (${e.index + 1}/${e.total})`) },
      );
      for (const w of report.warnings) warn(w);
      if (flags.json) printJson(report);
      else if (flags.markdown) printText(api.renderBenchMarkdown(report));
      else printText(api.renderBenchText(report));
    });
}
