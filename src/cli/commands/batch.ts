import * as path from 'node:path';
import type { Command } from 'commander';
import { BatchOptionsSchema, type BatchOptions } from '../../documents/index.js';
import { addFlags, flagParser, readFlags, type FlagSpec } from '../flags.js';
import { onInterrupt } from '../interrupt.js';
import { endProgress, printJson, printText, startProgress, STDOUT_PATH, warn } from '../output.js';
import { PROGRESS_PHASES, phaseFrame, type ProgressPhase } from '../progress.js';

/** The flags of `qtool batch`: each sets one field of BatchOptionsSchema (documents/batch-jobs.ts: help text and defaults). */
export const BATCH_FLAGS: readonly FlagSpec[] = [
  { flag: '--concurrency <n>', field: 'concurrency', number: { int: true } },
  { flag: '--force', field: 'force' },
  { flag: '--shard <i/n>', field: 'shard' },
  { flag: '--shards <n>', field: 'shards', number: { int: true } },
  { flag: '--cache <dir>', field: 'cache' },
  { flag: '--summary <file>', field: 'summaryFile', note: "('-': print it on stdout instead, as --json)" },
];

interface BatchFlags {
  json?: boolean;
  markdown?: boolean;
}

interface MergeFlags {
  output: string;
  json?: boolean;
  markdown?: boolean;
}

export function register(program: Command): void {
  const batch = addFlags(
    program
      .command('batch')
      .description('run batch compression jobs from a jobs file (qtool.batch-jobs/1), each in its own process; skips unchanged jobs; exit 6 if any failed')
      .argument('<jobs>', 'jobs file (JSON); paths inside are relative to it'),
    BatchOptionsSchema,
    BATCH_FLAGS,
  )
    .option('--json', 'print the summary document (qtool.batch-summary/1) instead of the table')
    .option('--markdown', 'print the table as GitHub Markdown')
    // `batch merge --json`: the flags after `merge` belong to merge.
    .enablePositionalOptions()
    .action(async (jobsFile: string, flags: BatchFlags & Record<string, unknown>) => {
      const api = await import('../../index.js');
      if (flags.json && flags.markdown) throw new api.UsageError('E_OPTION_CONFLICT', '--json and --markdown: expected one of them, got both');
      // Absent flags stay undefined: runBatch's one parse applies the schema's defaults.
      const options = readFlags(flags, BatchOptionsSchema, BATCH_FLAGS, flagParser(api.UsageError)) as BatchOptions;
      const summaryToStdout = Boolean(flags.json) || options.summaryFile === STDOUT_PATH;
      // Checked here too: the default summary name carries the shard.
      const shard = api.resolveShard({ shard: options.shard, shards: options.shards });
      const stem = path.join(path.dirname(jobsFile), path.basename(jobsFile).replace(/\.json$/i, ''));
      const summaryFile = options.summaryFile === STDOUT_PATH ? undefined : options.summaryFile ?? (shard ? `${stem}.shard-${shard.index}-of-${shard.count}.summary.json` : `${stem}.summary.json`);
      const controller = new AbortController();
      // The jobs running now, with the stage each one's child last reported.
      const running = new Map<string, string>();
      const bar = startProgress();
      const run = api.runBatch(jobsFile, {
        ...options,
        summaryFile,
        signal: controller.signal,
        onProgress: (e) => {
          if (e.phase === 'start') running.set(e.id, '');
          if (e.phase === 'job' && e.job) running.set(e.id, jobStage(e.job));
          if (e.phase === 'done') {
            running.delete(e.id);
            warn(`[${e.done}/${e.total}] ${e.id}: ${e.status}`);
          }
          bar.update(phaseFrame('batch', e.done, e.total, [...running].map(([id, st]) => (st ? `${id} ${st}` : id)).join(', ')));
        },
      });
      // Ctrl-C: kill the children and wait until they have exited and their temp files are removed.
      const off = onInterrupt(async () => {
        controller.abort();
        await run.catch(() => undefined);
      });
      let summary: Awaited<typeof run>;
      try {
        summary = await run;
      } finally {
        off();
        endProgress();
      }
      if (controller.signal.aborted) throw api.interruptedError();
      if (summaryToStdout) printJson(summary);
      else printText(flags.markdown ? api.renderBatchMarkdown(summary) : api.renderBatchText(summary));
      if (summary.counts.failed > 0) {
        const ids = summary.jobs.filter((j) => j.status === 'failed').map((j) => j.id);
        throw new api.BatchError('E_BATCH_PARTIAL', `${ids.length} of ${summary.jobs.length} jobs failed: ${ids.join(', ')} (summary: ${summaryFile ?? 'stdout'})`);
      }
    });

  batch
    .command('merge')
    .description('merge the summaries of a sharded batch run into one; duplicate or missing jobs are errors (exit 3); exit 6 if any job failed')
    .argument('<summaries...>', 'shard summaries (qtool.batch-summary/1 with a shard field)')
    .requiredOption('-o, --output <file>', 'merged summary (qtool.batch-summary/1)')
    .option('--json', 'print the merged summary document instead of the table')
    .option('--markdown', 'print the table as GitHub Markdown (for $GITHUB_STEP_SUMMARY)')
    .exitOverride()
    .option('--verbose', 'print stack traces for errors')
    .action(async (files: string[], flags: MergeFlags) => {
      const api = await import('../../index.js');
      if (flags.json && flags.markdown) throw new api.UsageError('E_OPTION_CONFLICT', '--json and --markdown: expected one of them, got both');
      const resolvedOut = path.resolve(flags.output);
      if (files.some((f) => path.resolve(f) === resolvedOut)) throw new api.UsageError('E_FLAG', `-o ${flags.output}: expected a new file, got one of the input summaries`);
      const { summary, shards } = api.mergeBatchSummaries(files);
      api.writeDocument(flags.output, summary);
      if (flags.json) printJson(summary);
      else printText(flags.markdown ? api.renderBatchMarkdown(summary, shards) : api.renderBatchText(summary, shards));
      if (summary.counts.failed > 0) {
        const ids = summary.jobs.filter((j) => j.status === 'failed').map((j) => j.id);
        throw new api.BatchError('E_BATCH_PARTIAL', `${ids.length} of ${summary.jobs.length} jobs failed: ${ids.join(', ')} (summary: ${flags.output})`);
      }
    });
}

/** "calibrating 128/512" for a job's stage (the stage's name alone when it has no count). */
function jobStage(p: { stage: string; done?: number; total?: number }): string {
  const known = p.stage in PROGRESS_PHASES ? PROGRESS_PHASES[p.stage as ProgressPhase] : undefined;
  const label = known?.label ?? p.stage;
  return p.done !== undefined && p.total !== undefined ? `${label} ${p.done}/${p.total}` : label;
}
