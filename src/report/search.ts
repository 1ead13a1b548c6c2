import type { SearchReport } from '../documents/index.js';
import { escapeXml, formatNumber as f, htmlPage, htmlTable, markdownTable, scatterChartSvg, type ScatterPoint } from './svg.js';

const unit = (r: SearchReport) => (r.dropUnit === 'points' ? 'points' : '%');
/** Sizes are shown in KiB everywhere in the report (table, summary, chart axis). */
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)}`;

function evalRows(r: SearchReport): { header: string[]; rows: string[][] } {
  const header = ['#', 'configuration', 'purpose', 'layers per level', r.metric, `drop (${unit(r)})`, 'passes', 'size (KiB)', 'pareto'];
  const rows = r.evaluations.map((e) => [
    String(e.index) + (e.index === r.chosen ? ' (chosen)' : ''),
    e.label,
    e.purpose,
    Object.entries(e.counts).map(([k, v]) => `${k}:${v}`).join(' '),
    f(e.value),
    f(e.drop),
    e.passes ? 'yes' : 'no',
    kib(e.sizeBytes),
    r.pareto.includes(e.index) ? 'yes' : '',
  ]);
  return { header, rows };
}

function summary(r: SearchReport): string[] {
  const c = r.evaluations[r.chosen];
  const lines = [
    `model ${r.model.file}; strategy ${r.strategy}; metric ${r.metric}; reference ${r.reference.label} = ${f(r.reference.value)}; max drop ${r.maxDrop} ${unit(r)}${r.maxSizeBytes !== null ? `; max size ${kib(r.maxSizeBytes)} KiB` : ''}`,
    `chosen: ${c.label} (${Object.entries(c.counts).map(([k, v]) => `${v} at ${k}`).join(', ')}): ${r.metric} ${f(c.value)}, drop ${f(c.drop)} ${unit(r)}, size ${kib(c.sizeBytes)} KiB (uniform ${Object.entries(r.uniformSizes).map(([k, v]) => `${k}: ${kib(v)} KiB`).join(', ')})`,
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

/**
 * The search chart: every evaluated configuration as (size, drop), in the table's units (KiB; the drop in
 * points or percent), the budget as a dashed line, the float reference past an axis break when it is far
 * larger than the candidates.
 */
export function searchChartSvg(r: SearchReport): string {
  const points: ScatterPoint[] = r.evaluations.map((e) => ({
    x: e.sizeBytes / 1024,
    y: e.drop,
    label: e.purpose === 'reference' ? `#${e.index} ${e.label}` : e.index === r.chosen ? `#${e.index} chosen` : `#${e.index}`,
    tooltip: `#${e.index} ${e.label} (${e.purpose}): ${r.metric} ${f(e.value)}, drop ${f(e.drop)} ${unit(r)}, ${kib(e.sizeBytes)} KiB`,
    kind: e.purpose === 'reference' ? 'reference' : e.index === r.chosen ? 'chosen' : r.pareto.includes(e.index) ? 'front' : 'candidate',
  }));
  return scatterChartSvg(points, {
    title: `Size vs ${r.metric} drop of every evaluated configuration`,
    xLabel: 'model size (KiB, qtool size accounting)',
    yLabel: `${r.metric} drop vs float (${unit(r)}; lower is better)`,
    hLine: { y: r.maxDrop, label: `budget: drop ≤ ${r.maxDrop} ${unit(r)}` },
    vLine: r.maxSizeBytes !== null ? { x: r.maxSizeBytes / 1024, label: `size budget ${kib(r.maxSizeBytes)} KiB` } : undefined,
    front: r.pareto,
  });
}

/** Self-contained HTML page with the size-vs-drop chart of every evaluated configuration and its Pareto front. */
export function searchHtml(r: SearchReport): string {
  const t = evalRows(r);
  return htmlPage(
    `qtool search: ${r.model.file}`,
    `<h1>Mixed-precision search: ${escapeXml(r.model.file)}</h1><ul>${summary(r).map((s) => `<li>${escapeXml(s)}</li>`).join('')}</ul>${searchChartSvg(r)}<h2>Evaluations</h2>${htmlTable(t.header, t.rows)}<h2>Chosen plan</h2>${htmlTable(['layer', 'score', 'bits'], planRows(r))}`,
  );
}
