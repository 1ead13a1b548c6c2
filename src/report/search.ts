import type { SearchReport } from '../documents/index.js';
import { escapeXml, formatNumber as f, htmlPage, htmlTable, markdownTable, scatterChartSvg } from './svg.js';

const unit = (r: SearchReport) => (r.dropUnit === 'points' ? 'points' : '%');

function evalRows(r: SearchReport): { header: string[]; rows: string[][] } {
  const header = ['#', 'configuration', 'purpose', 'layers per level', r.metric, `drop (${unit(r)})`, 'passes', 'size (bytes)', 'pareto'];
  const rows = r.evaluations.map((e) => [
    String(e.index) + (e.index === r.chosen ? ' (chosen)' : ''),
    e.label,
    e.purpose,
    Object.entries(e.counts).map(([k, v]) => `${k}:${v}`).join(' '),
    f(e.value),
    f(e.drop),
    e.passes ? 'yes' : 'no',
    String(e.sizeBytes),
    r.pareto.includes(e.index) ? 'yes' : '',
  ]);
  return { header, rows };
}

function summary(r: SearchReport): string[] {
  const c = r.evaluations[r.chosen];
  const lines = [
    `model ${r.model.file}; strategy ${r.strategy}; metric ${r.metric}; reference ${r.reference.label} = ${f(r.reference.value)}; max drop ${r.maxDrop} ${unit(r)}${r.maxSizeBytes !== null ? `; max size ${r.maxSizeBytes} bytes` : ''}`,
    `chosen: ${c.label} (${Object.entries(c.counts).map(([k, v]) => `${v} at ${k}`).join(', ')}): ${r.metric} ${f(c.value)}, drop ${f(c.drop)} ${unit(r)}, size ${c.sizeBytes} bytes (uniform ${Object.entries(r.uniformSizes).map(([k, v]) => `${k}: ${v}`).join(', ')})`,
    `budget ${r.budgetMet ? 'met' : 'NOT met'}; ${r.evaluationCount} full evaluations (cap ${r.maxEvaluations})`,
    ...r.steps.map((s) => `step ${s.from}→${s.to}: ${s.candidates.length} candidates, k = ${s.k} kept at ${s.from}; monotonicity ${s.isMonotone === null ? 'not checked' : s.isMonotone ? 'holds at the boundary' : 'violated, refined linearly'}`),
    ...r.notes,
  ];
  return lines;
}

function planRows(r: SearchReport): string[][] {
  const a = r.evaluations[r.chosen].assignment;
  return r.order.map((o) => [o.id, o.score.toFixed(3), String(a[o.id])]);
}

export function searchMarkdown(r: SearchReport): string {
  const t = evalRows(r);
  return (
    `# Mixed-precision search\n\n${summary(r).map((s) => `- ${s}`).join('\n')}\n\n## Evaluations\n\n${markdownTable(t.header, t.rows)}\n\n` +
    `## Chosen plan (layers by sensitivity)\n\n${markdownTable(['layer', 'score', 'bits'], planRows(r))}\n`
  );
}

/** Self-contained HTML page with an SVG size-vs-quality chart of every evaluated configuration and its Pareto front. */
export function searchHtml(r: SearchReport): string {
  const t = evalRows(r);
  const chart = scatterChartSvg(
    r.evaluations.map((e) => ({ x: e.sizeBytes / 1024, y: e.value, label: `#${e.index} ${e.label}: ${f(e.value)}`, highlight: e.index === r.chosen })),
    r.pareto,
    { title: `Size vs ${r.metric} (red: Pareto front, green: chosen)`, xLabel: 'model size (KiB, size accounting)', yLabel: r.metric },
  );
  return htmlPage(
    `qtool search: ${r.model.file}`,
    `<h1>Mixed-precision search: ${escapeXml(r.model.file)}</h1><ul>${summary(r).map((s) => `<li>${escapeXml(s)}</li>`).join('')}</ul>${chart}<h2>Evaluations</h2>${htmlTable(t.header, t.rows)}<h2>Chosen plan</h2>${htmlTable(['layer', 'score', 'bits'], planRows(r))}`,
  );
}
