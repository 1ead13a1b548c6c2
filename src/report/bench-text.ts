/** Text and Markdown renderings of a BenchReport: one column per model, ratios against the first. */
import * as path from 'node:path';
import type { BenchModelResult, BenchReport } from '../documents/index.js';

/** A plain aligned text table (first column left-aligned, the rest right-aligned). */
export function alignedTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (i === 0 ? (c ?? '').padEnd(widths[i]) : (c ?? '').padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** A GitHub-flavoured Markdown table (numbers right-aligned). */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

export function formatBytesShort(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

function ms(v: number): string {
  return v >= 100 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
}

function ratio(r: number | undefined): string {
  return r === undefined ? '' : ` (${r.toFixed(2)}x)`;
}

interface Row {
  label: string;
  cell: (m: BenchModelResult) => string;
}

function rowsOf(report: BenchReport): Row[] {
  const rows: Row[] = [
    { label: 'size', cell: (m) => formatBytesShort(m.size.totalBytes) + ratio(m.ratios?.size) },
    { label: 'session create (ms)', cell: (m) => ms(m.sessionCreateMs) + ratio(m.ratios?.sessionCreate) },
    { label: 'peak RSS', cell: (m) => formatBytesShort(m.peakRssBytes) + ratio(m.ratios?.peakRss) },
  ];
  const batchSizes = [...new Set(report.models.flatMap((m) => m.results.map((r) => r.batchSize)))].sort((a, b) => a - b);
  for (const b of batchSizes) {
    const res = (m: BenchModelResult) => m.results.find((r) => r.batchSize === b);
    const rat = (m: BenchModelResult) => m.ratios?.batches.find((r) => r.batchSize === b);
    const lat = (key: 'p50Ms' | 'p90Ms' | 'p99Ms' | 'meanMs', withRatio: boolean) => (m: BenchModelResult) => {
      const r = res(m);
      if (!r) return '-';
      return ms(r.latency[key]) + (withRatio ? ratio(rat(m)?.latencyP50) : '');
    };
    rows.push(
      { label: `batch ${b} p50 (ms)`, cell: lat('p50Ms', true) },
      { label: `batch ${b} p90 (ms)`, cell: lat('p90Ms', false) },
      { label: `batch ${b} p99 (ms)`, cell: lat('p99Ms', false) },
      { label: `batch ${b} mean (ms)`, cell: lat('meanMs', false) },
      { label: `batch ${b} runs`, cell: (m) => String(res(m)?.latency.runs ?? '-') },
      {
        label: `batch ${b} samples/s`,
        cell: (m) => {
          const r = res(m);
          return r ? r.throughputSamplesPerSec.toFixed(1) + ratio(rat(m)?.throughput) : '-';
        },
      },
    );
  }
  return rows;
}

function header(report: BenchReport): string[] {
  return ['', ...report.models.map((m) => path.basename(m.file))];
}

function footer(report: BenchReport): string {
  const s = report.settings;
  const inputs = s.inputs === 'data' ? `inputs from ${s.data}` : 'generated inputs';
  return `${s.runs} runs after ${s.warmup} warm-up, ${s.threads} thread(s), ${inputs}; each model in ${s.isolation === 'process' ? 'its own process' : 'this process'}; ${report.environment.cpuModel} (${report.environment.cpus} CPUs), Node ${report.environment.node}`;
}

/** The readable table `qtool bench` prints. Ratios are against the first model. */
export function renderBenchText(report: BenchReport): string {
  const rows = rowsOf(report).map((r) => [r.label, ...report.models.map(r.cell)]);
  return `${alignedTable(header(report), rows)}\n\n${footer(report)}\n`;
}

/** The same table as GitHub Markdown, for PR comments and CI job summaries. */
export function renderBenchMarkdown(report: BenchReport): string {
  const rows = rowsOf(report).map((r) => [r.label, ...report.models.map(r.cell)]);
  const h = header(report);
  h[0] = 'metric';
  return `${markdownTable(h, rows)}\n\n_${footer(report)}_\n`;
}
