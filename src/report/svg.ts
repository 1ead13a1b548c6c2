/** Minimal inline SVG charts (no scripts, no external fetches). */

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const fmt = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : Number(v.toPrecision(4)).toString());

/** Horizontal bar chart, one bar per item, values ≥ 0. */
export function barChartSvg(items: readonly { label: string; value: number }[], opts: { title: string; width?: number } = { title: '' }): string {
  const width = opts.width ?? 720;
  const labelW = 220;
  const row = 22;
  const top = 30;
  const height = top + row * items.length + 10;
  const max = Math.max(1e-30, ...items.map((i) => (Number.isFinite(i.value) ? Math.max(0, i.value) : 0)));
  const barMax = width - labelW - 90;
  const bars = items
    .map((it, i) => {
      const y = top + i * row;
      const w = Number.isFinite(it.value) ? (Math.max(0, it.value) / max) * barMax : 0;
      return (
        `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end" font-size="12">${escapeXml(it.label)}</text>` +
        `<rect class="bar" x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${row - 6}" fill="#4a7ab7"/>` +
        `<text class="bar-value" x="${(labelW + w + 4).toFixed(1)}" y="${y + 15}" font-size="11">${fmt(it.value)}</text>`
      );
    })
    .join('');
  return `<svg class="bars" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif"><text x="8" y="18" font-size="14" font-weight="bold">${escapeXml(opts.title)}</text>${bars}</svg>`;
}

/** Round tick values covering [lo, hi] (steps of 1, 2 or 5 × 10^k); the domain is widened to the outer ticks. */
export function niceTicks(lo: number, hi: number, count = 5): { lo: number; hi: number; ticks: number[] } {
  if (!(hi > lo)) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return niceTicks(lo - d, hi + d, count);
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const a = Math.floor(lo / step + 1e-9) * step;
  const b = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; a + i * step <= b + step * 1e-9; i++) ticks.push(Number((a + i * step).toPrecision(12)));
  return { lo: a, hi: b, ticks };
}

export interface ScatterPoint {
  x: number;
  y: number;
  /** Short label drawn next to the point (e.g. "#3"). */
  label: string;
  /** Full description (SVG <title>, shown on hover). */
  tooltip: string;
  /** 'reference' points (the float model) may sit past a break of the x axis. */
  kind: 'candidate' | 'front' | 'chosen' | 'reference';
}

export interface ScatterOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** A horizontal budget line (e.g. the largest allowed drop). */
  hLine?: { y: number; label: string };
  /** A vertical budget line (e.g. the size budget). */
  vLine?: { x: number; label: string };
  /** Indices of the points joined by a line (the Pareto front), in any order. */
  front?: readonly number[];
}

const LABEL_CHAR_PX = 7; // generous average glyph width at font-size 11 (sans-serif), for label collision checks

/**
 * Scatter chart with round ticks. The x domain fits the non-reference points; a reference point far to the
 * right of them (the float model, 4x the size of any candidate) is drawn past a break in the x axis instead
 * of squeezing every candidate into the left edge. Points are labelled (labels are moved off each other),
 * budget lines are dashed. Every element carries a class (`point`, `point-label`, `budget`, `plot-area`,
 * `axis-break`) so a test can find it.
 */
export function scatterChartSvg(points: readonly ScatterPoint[], opts: ScatterOptions): string {
  const width = opts.width ?? 760;
  const height = opts.height ?? 440;
  const m = { l: 70, r: 24, t: 56, b: 50 };
  const finite = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const main = finite.filter((p) => p.kind !== 'reference');
  const xsMain = (main.length ? main : finite).map((p) => p.x);
  if (opts.vLine) xsMain.push(opts.vLine.x);
  let xMin = Math.min(...xsMain);
  let xMax = Math.max(...xsMain);
  const span = Math.max(xMax - xMin, Math.abs(xMax) * 0.05, 1e-9);
  // References beyond the candidates by more than their own span go past a break.
  const broken = finite.filter((p) => p.kind === 'reference' && (p.x > xMax + span || p.x < xMin - span));
  for (const p of finite) if (!broken.includes(p)) (xMin = Math.min(xMin, p.x)), (xMax = Math.max(xMax, p.x));
  const xPad = Math.max((xMax - xMin) * 0.05, Math.abs(xMax) * 0.01, 1e-9);
  const xt = niceTicks(xMin >= 0 ? Math.max(0, xMin - xPad) : xMin - xPad, xMax + xPad);
  const ys = finite.map((p) => p.y);
  if (opts.hLine) ys.push(opts.hLine.y);
  ys.push(0);
  const yLo = Math.min(...ys);
  const yHi = Math.max(...ys);
  const yPad = Math.max((yHi - yLo) * 0.08, 1e-9);
  const yt = niceTicks(yLo - yPad, yHi + yPad); // padded both ways, so no point sits on an axis
  const breakW = broken.length ? 90 : 0;
  const plot = { x0: m.l, x1: width - m.r - breakW, y0: m.t, y1: height - m.b };
  const sx = (x: number) => plot.x0 + ((x - xt.lo) / (xt.hi - xt.lo)) * (plot.x1 - plot.x0);
  const sy = (y: number) => plot.y1 - ((y - yt.lo) / (yt.hi - yt.lo)) * (plot.y1 - plot.y0);
  const bandX = plot.x1 + breakW / 2 + 10;
  const px = (p: ScatterPoint) => (broken.includes(p) ? bandX : sx(p.x));
  const n = (v: number) => v.toFixed(1);

  const parts: string[] = [];
  parts.push(`<text x="8" y="18" font-size="14" font-weight="bold">${escapeXml(opts.title)}</text>`);
  parts.push(`<rect class="plot-area" x="${plot.x0}" y="${plot.y0}" width="${plot.x1 - plot.x0}" height="${plot.y1 - plot.y0}" fill="none" stroke="#eee"/>`);
  for (const t of xt.ticks) {
    parts.push(`<line x1="${n(sx(t))}" y1="${plot.y0}" x2="${n(sx(t))}" y2="${plot.y1}" stroke="#f0f0f0"/>`);
    parts.push(`<text class="x-tick" x="${n(sx(t))}" y="${plot.y1 + 15}" font-size="10" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of yt.ticks) {
    parts.push(`<line x1="${plot.x0}" y1="${n(sy(t))}" x2="${plot.x1}" y2="${n(sy(t))}" stroke="#f0f0f0"/>`);
    parts.push(`<text class="y-tick" x="${plot.x0 - 5}" y="${n(sy(t) + 3)}" font-size="10" text-anchor="end">${fmt(t)}</text>`);
  }
  parts.push(`<line x1="${plot.x0}" y1="${plot.y1}" x2="${plot.x1}" y2="${plot.y1}" stroke="#333"/>`);
  parts.push(`<line x1="${plot.x0}" y1="${plot.y0}" x2="${plot.x0}" y2="${plot.y1}" stroke="#333"/>`);
  if (broken.length) {
    // The axis resumes after two slanted strokes; the reference's own tick shows its x value.
    const bx = plot.x1 + 12;
    parts.push(
      `<g class="axis-break" stroke="#333"><line x1="${plot.x1}" y1="${plot.y1}" x2="${plot.x1 + 6}" y2="${plot.y1}"/>` +
        `<line x1="${plot.x1 + 3}" y1="${plot.y1 + 6}" x2="${plot.x1 + 9}" y2="${plot.y1 - 6}"/><line x1="${bx - 3}" y1="${plot.y1 + 6}" x2="${bx + 3}" y2="${plot.y1 - 6}"/>` +
        `<line x1="${bx}" y1="${plot.y1}" x2="${width - m.r}" y2="${plot.y1}"/></g>`,
    );
    for (const p of broken) parts.push(`<text class="x-tick" x="${n(bandX)}" y="${plot.y1 + 15}" font-size="10" text-anchor="middle">${fmt(p.x)}</text>`);
  }
  parts.push(`<text x="${(plot.x0 + plot.x1) / 2}" y="${height - 10}" font-size="12" text-anchor="middle">${escapeXml(opts.xLabel)}</text>`);
  parts.push(`<text x="14" y="${(plot.y0 + plot.y1) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${(plot.y0 + plot.y1) / 2})">${escapeXml(opts.yLabel)}</text>`);
  // Budget labels sit at the right end of their line; their boxes join the label collision set below.
  const reserved: { x0: number; y0: number; x1: number; y1: number }[] = [];
  if (opts.hLine && Number.isFinite(opts.hLine.y)) {
    const y = sy(opts.hLine.y);
    const xEnd = broken.length ? width - m.r : plot.x1;
    const w = opts.hLine.label.length * LABEL_CHAR_PX;
    reserved.push({ x0: xEnd - 4 - w, y0: y - 16, x1: xEnd - 4, y1: y - 2 });
    parts.push(`<g class="budget budget-y"><line x1="${plot.x0}" y1="${n(y)}" x2="${xEnd}" y2="${n(y)}" stroke="#e67e22" stroke-width="1.5" stroke-dasharray="6 4"/><text x="${xEnd - 4}" y="${n(y - 5)}" font-size="11" text-anchor="end" fill="#b9610f">${escapeXml(opts.hLine.label)}</text></g>`);
  }
  if (opts.vLine && Number.isFinite(opts.vLine.x)) {
    const x = sx(opts.vLine.x);
    const w = opts.vLine.label.length * LABEL_CHAR_PX;
    reserved.push({ x0: x + 2, y0: plot.y0, x1: x + 6 + w, y1: plot.y0 + 16 });
    parts.push(`<g class="budget budget-x"><line x1="${n(x)}" y1="${plot.y0}" x2="${n(x)}" y2="${plot.y1}" stroke="#e67e22" stroke-width="1.5" stroke-dasharray="6 4"/><text x="${n(x + 4)}" y="${plot.y0 + 12}" font-size="11" fill="#b9610f">${escapeXml(opts.vLine.label)}</text></g>`);
  }
  const front = (opts.front ?? []).map((i) => points[i]).filter((p) => p && finite.includes(p) && !broken.includes(p)).sort((a, b) => a.x - b.x);
  if (front.length > 1) parts.push(`<polyline class="front" fill="none" stroke="#c0392b" stroke-width="1.5" points="${front.map((p) => `${n(px(p))},${n(sy(p.y))}`).join(' ')}"/>`);

  // Labels: try a few positions around each point and keep the first that hits no earlier label or point.
  const boxes: { x0: number; y0: number; x1: number; y1: number }[] = [...reserved, ...finite.map((p) => ({ x0: px(p) - 7, y0: sy(p.y) - 7, x1: px(p) + 7, y1: sy(p.y) + 7 }))];
  const hit = (b: { x0: number; y0: number; x1: number; y1: number }) => boxes.some((o) => b.x0 < o.x1 && b.x1 > o.x0 && b.y0 < o.y1 && b.y1 > o.y0);
  const labels: string[] = [];
  const order = [...finite].sort((a, b) => (a.kind === 'chosen' ? -1 : b.kind === 'chosen' ? 1 : 0));
  for (const p of order) {
    const cx = px(p);
    const cy = sy(p.y);
    const w = p.label.length * LABEL_CHAR_PX;
    const h = 12;
    const tries: [number, number][] = [[9, -8], [9, 2], [-9 - w, -8], [-9 - w, 2], [-w / 2, -20], [-w / 2, 10], [9, -22], [9, 16], [-9 - w, -22], [-9 - w, 16]];
    let chosen: [number, number] = tries[0];
    for (const t of tries) {
      const b = { x0: cx + t[0], y0: cy + t[1], x1: cx + t[0] + w, y1: cy + t[1] + h };
      if (b.x0 < 0 || b.x1 > width || b.y0 < m.t - 20 || b.y1 > height - m.b + 2) continue;
      if (!hit(b)) {
        chosen = t;
        break;
      }
    }
    const b = { x0: cx + chosen[0], y0: cy + chosen[1], x1: cx + chosen[0] + w, y1: cy + chosen[1] + h };
    boxes.push(b);
    labels.push(`<text class="point-label" x="${n(b.x0)}" y="${n(b.y1 - 2)}" font-size="11">${escapeXml(p.label)}</text>`);
  }
  const dots = finite.map((p) => {
    const cx = n(px(p));
    const cy = n(sy(p.y));
    const title = `<title>${escapeXml(p.tooltip)}</title>`;
    if (p.kind === 'reference') return `<rect class="point point-reference" x="${Number(cx) - 5}" y="${Number(cy) - 5}" width="10" height="10" fill="#999" stroke="#333" transform="rotate(45 ${cx} ${cy})">${title}</rect>`;
    const fill = p.kind === 'chosen' ? '#27ae60' : p.kind === 'front' ? '#c0392b' : '#fff';
    return `<circle class="point point-${p.kind}" cx="${cx}" cy="${cy}" r="${p.kind === 'chosen' ? 6 : 4}" fill="${fill}" stroke="#333">${title}</circle>`;
  });
  const offScale = points.length - finite.length;
  const legendItems: [string, string][] = [
    [`<circle cx="6" cy="-4" r="5" fill="#27ae60" stroke="#333"/>`, 'chosen'],
    [`<circle cx="6" cy="-4" r="4" fill="#c0392b" stroke="#333"/>`, 'Pareto front'],
    [`<circle cx="6" cy="-4" r="4" fill="#fff" stroke="#333"/>`, 'other'],
    [`<rect x="2" y="-8" width="8" height="8" fill="#999" stroke="#333" transform="rotate(45 6 -4)"/>`, 'float reference'],
    [`<line x1="0" y1="-4" x2="14" y2="-4" stroke="#e67e22" stroke-width="1.5" stroke-dasharray="4 3"/>`, 'budget'],
  ];
  let lx = 8;
  const legend = legendItems
    .map(([sym, text]) => {
      const g = `<g transform="translate(${lx} 40)">${sym}<text x="18" y="0" font-size="11">${text}</text></g>`;
      lx += 30 + text.length * 6.5;
      return g;
    })
    .join('');
  const note = offScale ? `<text x="${width - m.r}" y="40" font-size="11" text-anchor="end">${offScale} point(s) not finite, not drawn</text>` : '';
  return `<svg class="scatter" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">${parts.join('')}<g class="legend">${legend}</g>${note}${dots.join('')}${labels.join('')}</svg>`;
}

/** A self-contained HTML page (inline CSS, no scripts, no external resources). */
export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>body{font-family:sans-serif;margin:2em}ul,dl,p,h1,h2{max-width:1100px}.table-wrap{overflow-x:auto;max-width:100%}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.bad{color:#c0392b}.ok{color:#27ae60}dl.symbols{font-size:13px;display:grid;grid-template-columns:max-content auto;gap:2px 12px}dl.symbols dt{font-weight:bold;white-space:nowrap}dl.symbols dd{margin:0}</style>
</head><body>
${body}
</body></html>
`;
}

export function htmlTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return `<div class="table-wrap"><table><thead><tr>${header.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${escapeXml(c)}</td>`).join('')}</tr>`).join('')}</tbody></table></div>`;
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [`| ${header.map(esc).join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

export function formatNumber(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  return fmt(v);
}
