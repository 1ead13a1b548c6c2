/** The summary table `qtool batch` and `qtool batch merge` print, as text or GitHub Markdown. */
import type { BatchSummary } from '../documents/index.js';
import { alignedTable, formatBytesShort, markdownTable } from './bench-text.js';

/** One shard of a merged run: its jobs, their estimated cost and their summed job time. */
export interface BatchShardLine {
  index: number;
  count: number;
  jobs: number;
  costEstimate: number;
  durationMs: number;
}

const HEADER = ['job', 'status', 'output', 'size', 'ratio', 'gate', 'time'];

function rows(s: BatchSummary): string[][] {
  return s.jobs.map((j) => [
    j.id,
    j.status === 'failed' ? `FAILED ${j.error?.code ?? ''}`.trim() : j.cache === 'hit' ? `${j.status} (cached)` : j.status,
    j.output,
    j.outputBytes !== undefined ? formatBytesShort(j.outputBytes) : '-',
    j.sizeRatio !== undefined ? `${j.sizeRatio.toFixed(2)}x` : '-',
    j.gate ? `${j.gate.metric} ${j.gate.value.toFixed(4)}${j.gate.passed ? '' : ' (fail)'}` : '-',
    `${(j.durationMs / 1000).toFixed(1)}s`,
  ]);
}

function countsLine(s: BatchSummary): string {
  const c = s.counts;
  const hits = s.jobs.filter((j) => j.cache === 'hit').length;
  return `${c.ok} ok, ${c.skipped} skipped (unchanged), ${c.failed} failed${c.interrupted ? `, ${c.interrupted} interrupted` : ''}${hits ? `; ${hits} from the cache` : ''}${s.shard ? ` (shard ${s.shard.index}/${s.shard.count}: ${s.jobs.length} of ${s.shard.assignment.length} jobs)` : ''}`;
}

function shardRows(shards: readonly BatchShardLine[]): string[][] {
  const total = shards.reduce((a, s) => a + s.costEstimate, 0) || 1;
  return shards.map((s) => [`${s.index}/${s.count}`, String(s.jobs), `${((100 * s.costEstimate) / total).toFixed(1)}%`, `${(s.durationMs / 1000).toFixed(1)}s`]);
}
const SHARD_HEADER = ['shard', 'jobs', 'est. cost', 'job time'];

export function renderBatchText(s: BatchSummary, shards: readonly BatchShardLine[] = []): string {
  const lines = [alignedTable(HEADER, rows(s))];
  const failed = s.jobs.filter((j) => j.status === 'failed');
  if (failed.length) lines.push('', ...failed.map((j) => `${j.id}: ${j.error?.code}: ${j.error?.message}`));
  if (shards.length) lines.push('', alignedTable(SHARD_HEADER, shardRows(shards)));
  lines.push('', countsLine(s));
  return `${lines.join('\n')}\n`;
}

/** The same table for a GitHub job summary ($GITHUB_STEP_SUMMARY) or a pull-request comment. */
export function renderBatchMarkdown(s: BatchSummary, shards: readonly BatchShardLine[] = []): string {
  const parts = [`### qtool batch: ${countsLine(s)}`, markdownTable(HEADER, rows(s))];
  const failed = s.jobs.filter((j) => j.status === 'failed');
  if (failed.length) parts.push(failed.map((j) => `- **${j.id}**: \`${j.error?.code}\` ${j.error?.message ?? ''}`).join('\n'));
  if (shards.length) parts.push(markdownTable(SHARD_HEADER, shardRows(shards)));
  return `${parts.join('\n\n')}\n`;
}
