/** The summary table `qtool batch` prints. */
import type { BatchSummary } from '../documents/index.js';
import { alignedTable, formatBytesShort } from './bench-text.js';

export function renderBatchText(s: BatchSummary): string {
  const rows = s.jobs.map((j) => [
    j.id,
    j.status === 'failed' ? `FAILED ${j.error?.code ?? ''}`.trim() : j.status,
    j.output,
    j.outputBytes !== undefined ? formatBytesShort(j.outputBytes) : '-',
    j.sizeRatio !== undefined ? `${j.sizeRatio.toFixed(2)}x` : '-',
    j.gate ? `${j.gate.metric} ${j.gate.value.toFixed(4)}${j.gate.passed ? '' : ' (fail)'}` : '-',
    `${(j.durationMs / 1000).toFixed(1)}s`,
  ]);
  const lines = [alignedTable(['job', 'status', 'output', 'size', 'ratio', 'gate', 'time'], rows)];
  const failed = s.jobs.filter((j) => j.status === 'failed');
  if (failed.length) lines.push('', ...failed.map((j) => `${j.id}: ${j.error?.code}: ${j.error?.message}`));
  const c = s.counts;
  lines.push('', `${c.ok} ok, ${c.skipped} skipped (unchanged), ${c.failed} failed${c.interrupted ? `, ${c.interrupted} interrupted` : ''}`);
  return `${lines.join('\n')}\n`;
}
