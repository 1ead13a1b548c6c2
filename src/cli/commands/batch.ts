import * as path from 'node:path';
import type { Command } from 'commander';
import { onInterrupt } from '../interrupt.js';
import { printJson, printText, warn } from '../output.js';

interface BatchFlags {
  concurrency: string;
  force?: boolean;
  summary?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('batch')
    .description('run batch compression jobs from a jobs file (qtool.batch-jobs/1), each in its own process; skips unchanged jobs; exit 6 if any failed')
    .argument('<jobs>', 'jobs file (JSON); paths inside are relative to it')
    .option('--concurrency <n>', 'jobs run at once', '1')
    .option('--force', 'redo jobs whose output and inputs are unchanged')
    .option('--summary <file>', 'where to write the JSON summary (default: <jobs>.summary.json next to the jobs file)')
    .option('--json', 'print the summary document (qtool.batch-summary/1) instead of the table')
    .action(async (jobsFile: string, flags: BatchFlags) => {
      const api = await import('../../index.js');
      const concurrency = Number(flags.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1) throw new api.UsageError('E_FLAG', `--concurrency: expected a positive integer, got "${flags.concurrency}"`);
      const summaryFile = flags.summary ?? path.join(path.dirname(jobsFile), `${path.basename(jobsFile).replace(/\.json$/i, '')}.summary.json`);
      const controller = new AbortController();
      const run = api.runBatch(jobsFile, {
        concurrency,
        force: flags.force,
        summaryFile,
        signal: controller.signal,
        onProgress: (e) => {
          if (e.phase === 'done') warn(`[${e.done}/${e.total}] ${e.id}: ${e.status}`);
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
      }
      if (controller.signal.aborted) throw api.interruptedError();
      if (flags.json) printJson(summary);
      else printText(api.renderBatchText(summary));
      if (summary.counts.failed > 0) {
        const ids = summary.jobs.filter((j) => j.status === 'failed').map((j) => j.id);
        throw new api.BatchError('E_BATCH_PARTIAL', `${ids.length} of ${summary.jobs.length} jobs failed: ${ids.join(', ')} (summary: ${summaryFile})`);
      }
    });
}
