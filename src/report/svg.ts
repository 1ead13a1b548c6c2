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
        `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${row - 6}" fill="#4a7ab7"/>` +
        `<text x="${(labelW + w + 4).toFixed(1)}" y="${y + 15}" font-size="11">${fmt(it.value)}</text>`
      );
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif"><text x="8" y="18" font-size="14" font-weight="bold">${escapeXml(opts.title)}</text>${bars}</svg>`;
}

/** Scatter chart of (x, y) points; `front` indices are joined by a line and drawn filled. */
export function scatterChartSvg(
  points: readonly { x: number; y: number; label: string; highlight?: boolean }[],
  front: readonly number[],
  opts: { title: string; xLabel: string; yLabel: string; width?: number; height?: number },
): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 420;
  const m = { l: 70, r: 20, t: 30, b: 50 };
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y).filter(Number.isFinite);
  const pad = (lo: number, hi: number) => (hi > lo ? [lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)] : [lo - 1, hi + 1]);
  const [x0, x1] = pad(Math.min(...xs), Math.max(...xs));
  const [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (width - m.l - m.r);
  const sy = (y: number) => height - m.b - ((y - y0) / (y1 - y0)) * (height - m.t - m.b);
  const ticks = (lo: number, hi: number) => [0, 0.25, 0.5, 0.75, 1].map((f) => lo + f * (hi - lo));
  const axes =
    `<line x1="${m.l}" y1="${height - m.b}" x2="${width - m.r}" y2="${height - m.b}" stroke="#333"/>` +
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${height - m.b}" stroke="#333"/>` +
    ticks(x0, x1).map((t) => `<text x="${sx(t).toFixed(1)}" y="${height - m.b + 15}" font-size="10" text-anchor="middle">${fmt(t)}</text>`).join('') +
    ticks(y0, y1).map((t) => `<text x="${m.l - 5}" y="${sy(t).toFixed(1)}" font-size="10" text-anchor="end">${fmt(t)}</text>`).join('') +
    `<text x="${(m.l + width - m.r) / 2}" y="${height - 10}" font-size="12" text-anchor="middle">${escapeXml(opts.xLabel)}</text>` +
    `<text x="14" y="${(m.t + height - m.b) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${(m.t + height - m.b) / 2})">${escapeXml(opts.yLabel)}</text>`;
  const fr = [...front].sort((a, b) => points[a].x - points[b].x);
  const line = fr.length > 1 ? `<polyline fill="none" stroke="#c0392b" stroke-width="1.5" points="${fr.map((i) => `${sx(points[i].x).toFixed(1)},${sy(points[i].y).toFixed(1)}`).join(' ')}"/>` : '';
  const dots = points
    .map((p, i) => {
      if (!Number.isFinite(p.y)) return '';
      const onFront = front.includes(i);
      const fill = p.highlight ? '#27ae60' : onFront ? '#c0392b' : '#fff';
      return `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="${p.highlight ? 6 : 4}" fill="${fill}" stroke="#333"><title>${escapeXml(p.label)}</title></circle>`;
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif"><text x="8" y="18" font-size="14" font-weight="bold">${escapeXml(opts.title)}</text>${axes}${line}${dots}</svg>`;
}

/** A self-contained HTML page (inline CSS, no scripts, no external resources). */
export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.bad{color:#c0392b}.ok{color:#27ae60}</style>
</head><body>
${body}
</body></html>
`;
}

export function htmlTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return `<table><thead><tr>${header.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${escapeXml(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
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
