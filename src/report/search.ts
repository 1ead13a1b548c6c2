import type { SearchReport } from '../documents/index.js';
import { escapeXml, formatNumber as f, htmlPage, htmlTable, markdownTable, scatterChartSvg, type ScatterPoint } from './svg.js';

const unit = (r: SearchReport) => (r.dropUnit === 'points' ? 'points' : '%');
/** Sizes are shown in KiB everywhere in the report (table, summary, chart axis). */
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)}`;

const ms = (v: number | null) => (v === null ? '' : v.toFixed(3));
const hasLatency = (r: SearchReport) => r.evaluations.some((e) => e.latencyMs !== null || e.predictedLatencyMs !== null);

function evalRows(r: SearchReport): { header: string[]; rows: string[][] } {
  const lat = hasLatency(r);
  const header = ['#', 'configuration', 'purpose', 'layers per level', r.metric, `drop (${unit(r)})`, 'passes', 'size (KiB)', 'pareto', ...(lat ? ['latency (ms)', 'vs float', 'predicted (ms)', 'pareto (latency)'] : [])];
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
    ...(lat ? [ms(e.latencyMs), e.latencyRatio === null ? '' : `${e.latencyRatio.toFixed(2)}x`, ms(e.predictedLatencyMs), r.paretoLatency.includes(e.index) ? 'yes' : ''] : []),
  ]);
  return { header, rows };
}

function summary(r: SearchReport): string[] {
  const c = r.evaluations[r.chosen];
  const lines = [
    `model ${r.model.file}; objective ${r.objective}; strategy ${r.strategy}; metric ${r.metric}; reference ${r.reference.label} = ${f(r.reference.value)}; max drop ${r.maxDrop} ${unit(r)}${r.maxSizeBytes !== null ? `; max size ${kib(r.maxSizeBytes)} KiB` : ''}${r.maxLatencyMs !== null ? `; max latency ${r.maxLatencyMs} ms` : ''}`,
    `chosen: ${c.label} (${Object.entries(c.counts).map(([k, v]) => `${v} at ${k}`).join(', ')}): ${r.metric} ${f(c.value)}, drop ${f(c.drop)} ${unit(r)}, size ${kib(c.sizeBytes)} KiB (uniform ${Object.entries(r.uniformSizes).map(([k, v]) => `${k}: ${kib(v)} KiB`).join(', ')})`,
    `budget ${r.budgetMet ? 'met' : 'NOT met'}; ${r.evaluationCount} full evaluations (cap ${r.maxEvaluations})`,
    ...(r.latency
      ? [`latency at batch ${r.latency.batchSize}: float ${ms(r.latency.floatMs) || 'not measured'} ms (${r.latency.rounds} interleaved rounds, ${r.latency.seconds.toFixed(1)} s, load ${r.latency.loadAverage.toFixed(1)}, ${r.latency.machine.cpu}, onnxruntime ${r.latency.machine.onnxruntime}); per-layer profile ${r.latency.profileSource}`]
      : []),
    ...r.steps.map((s) =>
      r.strategy === 'latency-greedy'
        ? `latency step: ${s.candidates.length} layers faster quantized, the first k = ${s.k} (by saving per loss) switched to their fastest level`
        : `step ${s.from}→${s.to}: ${s.candidates.length} candidates, k = ${s.k} kept at ${s.from}; monotonicity ${s.isMonotone === null ? 'not checked' : s.isMonotone ? 'holds at the boundary' : 'violated, refined linearly'}`,
    ),
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
    `## Chosen plan (layers ${r.objective === 'latency' ? 'in latency order; score: profiled saving in ms' : 'by sensitivity'})\n\n${markdownTable(['layer', 'score', 'bits'], planRows(r))}\n`
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

/**
 * The latency chart: every configuration timed in the interleaved run as (measured ms, drop), with its
 * own Pareto front (paretoLatency) and the latency budget; undefined when nothing was measured.
 */
export function searchLatencyChartSvg(r: SearchReport): string | undefined {
  const timed = r.evaluations.filter((e) => e.latencyMs !== null);
  if (timed.length === 0) return undefined;
  const points: ScatterPoint[] = timed.map((e) => ({
    x: e.latencyMs!,
    y: e.drop,
    label: e.purpose === 'reference' ? `#${e.index} ${e.label}` : e.index === r.chosen ? `#${e.index} chosen` : `#${e.index}`,
    tooltip: `#${e.index} ${e.label} (${e.purpose}): ${r.metric} ${f(e.value)}, drop ${f(e.drop)} ${unit(r)}, ${ms(e.latencyMs)} ms measured (${e.latencyRatio!.toFixed(2)}x float), ${ms(e.predictedLatencyMs)} ms predicted`,
    kind: e.index === r.chosen ? 'chosen' : r.paretoLatency.includes(e.index) ? 'front' : 'candidate',
  }));
  return scatterChartSvg(points, {
    title: `Latency vs ${r.metric} drop of every evaluated configuration (batch ${r.latency?.batchSize ?? 1})`,
    xLabel: 'measured latency (ms per run, median of the interleaved run)',
    yLabel: `${r.metric} drop vs float (${unit(r)}; lower is better)`,
    hLine: { y: r.maxDrop, label: `budget: drop ≤ ${r.maxDrop} ${unit(r)}` },
    vLine: r.maxLatencyMs !== null ? { x: r.maxLatencyMs, label: `latency budget ${r.maxLatencyMs} ms` } : undefined,
    front: timed.map((e, i) => (r.paretoLatency.includes(e.index) ? i : -1)).filter((i) => i >= 0),
  });
}

/** Self-contained HTML page with the size-vs-drop chart (and, when timed, the latency-vs-drop chart) of every evaluated configuration and their Pareto fronts. */
export function searchHtml(r: SearchReport): string {
  const t = evalRows(r);
  return htmlPage(
    `qtool search: ${r.model.file}`,
    `<h1>Mixed-precision search: ${escapeXml(r.model.file)}</h1><ul>${summary(r).map((s) => `<li>${escapeXml(s)}</li>`).join('')}</ul>${searchChartSvg(r)}${searchLatencyChartSvg(r) ?? ''}<h2>Evaluations</h2>${htmlTable(t.header, t.rows)}<h2>Chosen plan</h2>${htmlTable(['layer', 'score', 'bits'], planRows(r))}`,
  );
}
