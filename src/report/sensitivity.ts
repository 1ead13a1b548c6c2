import type { SensitivityReport } from '../documents/index.js';
import { barChartSvg, escapeXml, formatNumber as f, htmlPage, htmlTable, markdownTable } from './svg.js';

function rows(r: SensitivityReport): { header: string[]; rows: string[][] } {
  const bits = r.settings.bits;
  const header = ['layer', 'op', 'params', 'tr(H) ± stderr', 'probes', 'eps stab.', 'tr(H) layer-wise'];
  for (const b of bits) header.push(`Ω(${b})`, `recon(${b})`, `measured(${b})`);
  header.push('LOO recovered', 'score');
  const out = r.layers.map((l) => {
    const row = [
      l.id,
      l.opType,
      String(l.parameters),
      `${f(l.hessian.trace)} ± ${f(l.hessian.stderr)}`,
      String(l.hessian.probes),
      l.hessian.stabilityRelDiff === null ? '-' : `${(100 * l.hessian.stabilityRelDiff).toFixed(1)}%`,
      f(l.layerwise?.traceH),
    ];
    for (const b of bits) {
      const e = l.bits.find((x) => x.bits === b)!;
      row.push(f(e.omega), f(e.reconstructionError), f(e.measuredLoss));
    }
    row.push(f(l.leaveOneOut?.recovered), l.score.toFixed(3));
    return row;
  });
  return { header, rows: out };
}

function summary(r: SensitivityReport): string[] {
  return [
    `model ${r.model.file}; loss ${r.loss} on output "${r.output}" over ${r.settings.samples} calibration samples (seed ${r.settings.seed}); base loss ${f(r.baseLoss)}`,
    `measured terms: ${r.measuredPath === 'weights' ? 'fake-quantized weights through the weights-as-inputs session (weight quantization only)' : 'the real rewritten model (applyPlan + onnxruntime)'}`,
    `all layers at ${Math.min(...r.settings.bits)} bits: loss ${f(r.allLowLoss)}; onnxruntime runs: reference ${r.runs.reference}, Hessian probes ${r.runs.hessian}, measured ${r.runs.measured}`,
  ];
}

/** What each column means (the table's symbols), shown under the table in Markdown and HTML. */
function symbols(r: SensitivityReport): [string, string][] {
  const bits = r.settings.bits;
  const hi = Math.max(...bits);
  const lo = Math.min(...bits);
  return [
    ['L', `the loss: ${r.loss} on output "${r.output}" (${r.loss === 'kl' ? 'KL divergence from the float model\'s softmax outputs' : r.loss === 'ce' ? 'cross-entropy against the labels' : 'mean squared error against the float outputs'})`],
    ['params', 'number of weights in the layer (n)'],
    ['tr(H) ± stderr', 'Hutchinson estimate of the trace of the Hessian of L with respect to the layer\'s weights, and its standard error over the probes'],
    ['probes', 'Rademacher probes v used for tr(H) (probing stops when stderr < 5% of |tr(H)|)'],
    ['eps stab.', 'relative change of tr(H) when the finite-difference step ε is halved (small = the step is trustworthy)'],
    ['tr(H) layer-wise', 'the layer-wise proxy tr(2·E[x xᵀ]) = 2·E‖x‖² over the layer\'s input x (im2col patches for Conv)'],
    ['Ω(b)', 'HAWQ-v2 perturbation at b bits: ½ · tr(H)/n · ‖Q_b(W) − W‖²'],
    ['recon(b)', 'layer-wise reconstruction error at b bits: Σ Δwᵀ E[x xᵀ] Δw over output rows, Δw = Q_b(w) − w'],
    ['measured(b)', 'L measured end to end with only this layer quantized at b bits, all others float'],
    ['LOO recovered', `leave-one-out: L with every layer at ${lo} bits minus L with this one restored to ${hi} bits (how much of the all-low loss restoring this layer recovers)`],
    ['score', 'the combined ordering score used by qtool search (normalised Ω, measured and LOO terms, averaged; higher = more sensitive)'],
  ];
}

/** Markdown table of a sensitivity report. */
export function sensitivityMarkdown(r: SensitivityReport): string {
  const t = rows(r);
  return `# Sensitivity\n\n${summary(r).map((s) => `- ${s}`).join('\n')}\n\n${markdownTable(t.header, t.rows)}\n\n${symbols(r).map(([k, v]) => `- **${k}**: ${v}`).join('\n')}\n`;
}

/** Self-contained HTML page with an inline SVG bar chart of the per-layer scores. */
export function sensitivityHtml(r: SensitivityReport): string {
  const t = rows(r);
  const low = Math.min(...r.settings.bits);
  const chart = barChartSvg(r.layers.map((l) => ({ label: l.id, value: l.score })), { title: 'Combined sensitivity score (higher = more sensitive)' });
  const omega = barChartSvg(r.layers.map((l) => ({ label: l.id, value: l.bits.find((e) => e.bits === low)!.measuredLoss })), { title: `Measured loss, this layer alone at ${low} bits` });
  return htmlPage(
    `qtool sensitivity: ${r.model.file}`,
    `<h1>Sensitivity: ${escapeXml(r.model.file)}</h1><ul>${summary(r).map((s) => `<li>${escapeXml(s)}</li>`).join('')}</ul>${chart}${omega}<h2>Per layer</h2>${htmlTable(t.header, t.rows)}<dl class="symbols">${symbols(r).map(([k, v]) => `<dt>${escapeXml(k)}</dt><dd>${escapeXml(v)}</dd>`).join('')}</dl>`,
  );
}
