import * as path from 'node:path';
import type { Command } from 'commander';
import { BenchOptionsSchema, type BenchOptions } from '../../documents/index.js';
import { DATA_FLAGS, addFlags, flagParser, readFlags, type FlagSpec } from '../flags.js';
import { endProgress, printJson, printText, startProgress, warn } from '../output.js';
import { phaseFrame } from '../progress.js';

/** The flags of `qtool bench`: each sets one field of BenchOptionsSchema (documents/bench-report.ts: help text and defaults). */
export const BENCH_FLAGS: readonly FlagSpec[] = [
  { flag: '--data <path>', field: 'data' },
  { flag: '--runs <n>', field: 'runs', number: { int: true } },
  { flag: '--warmup <n>', field: 'warmup', number: { int: true, min: 0 } },
  { flag: '--batch <sizes>', field: 'batchSizes', number: { int: true } },
  { flag: '--threads <n>', field: 'threads', number: { int: true } },
  ...DATA_FLAGS,
];

interface BenchFlags {
  json?: boolean;
  markdown?: boolean;
}

export function register(program: Command): void {
  addFlags(
    program
      .command('bench')
      .description('measure latency (p50/p90/p99), throughput, session creation time, peak memory and size of one or more models; ratios against the first')
      .argument('<models...>', 'ONNX model files (the first is the baseline, e.g. the float model)'),
    BenchOptionsSchema,
    BENCH_FLAGS,
  )
    .option('--json', 'print one JSON document (qtool.bench/1)')
    .option('--markdown', 'print a Markdown table (for PRs and CI job summaries)')
    .action(async (models: string[], flags: BenchFlags & Record<string, unknown>) => {
      const api = await import('../../index.js');
      const flag = flagParser(api.UsageError);
      if (flags.json && flags.markdown) throw new api.UsageError('E_OPTION_CONFLICT', '--json and --markdown: expected at most one, got both');
      const options = readFlags(flags, BenchOptionsSchema, BENCH_FLAGS, flag) as BenchOptions;
      // Ctrl-C: kill the measuring child at once (the global handler then exits 130).
      const controller = new AbortController();
      process.on('SIGINT', () => controller.abort());
      const bar = startProgress();
      const report = await api
        .bench(models, options, {
          signal: controller.signal,
          onProgress: (e) => bar.update(phaseFrame('bench', e.phase === 'start' ? e.index : e.index + 1, e.total, path.basename(e.model))),
        })
        .finally(endProgress);
      for (const w of report.warnings) warn(w);
      if (flags.json) printJson(report);
      else if (flags.markdown) printText(api.renderBenchMarkdown(report));
      else printText(api.renderBenchText(report));
    });
}
