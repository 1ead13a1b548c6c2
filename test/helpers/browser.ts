/**
 * Render an HTML page in a real headless Chromium and read back the geometry of what it drew.
 *
 * A measuring script is appended to a copy of the page (the reports themselves carry no scripts); it reads
 * getBoundingClientRect() of every chart element and table cell after layout and writes them as JSON
 * into a <pre>, which `chromium --headless --dump-dom` prints. Chromium comes from Debian (`apt-get
 * install chromium`, done by .ci/run); `findChromium()` returns undefined when it is missing so tests can skip.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export function findChromium(): string | undefined {
  const candidates = [process.env.CHROMIUM, 'chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'].filter((c): c is string => !!c);
  for (const c of candidates) {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8', timeout: 30_000 });
    if (r.status === 0 && /chrom/i.test(r.stdout)) return c;
  }
  return undefined;
}

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--no-first-run', '--disable-dev-shm-usage', '--mute-audio'];

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}
export interface SvgGeometry extends Box {
  cls: string | null;
  plot: Box | null;
  points: (Box & { cls: string; title: string })[];
  labels: (Box & { cls: string; text: string })[];
  xTicks: (Box & { text: string })[];
  yTicks: (Box & { text: string })[];
  budgetY: Box | null;
  budgetX: Box | null;
  hasBreak: boolean;
  bars: (Box & { value: string })[];
}
export interface PageGeometry {
  viewportWidth: number;
  svgs: SvgGeometry[];
  tables: { headers: { text: string; lines: number }[]; rows: { text: string; lines: number }[][] }[];
  symbols: string[];
}

const MEASURE = `<script>(() => {
  const rel = (el, base) => { const b = el.getBoundingClientRect(); return { x: b.left - base.left, y: b.top - base.top, w: b.width, h: b.height }; };
  const lines = (el) => { const r = document.createRange(); r.selectNodeContents(el); return new Set([...r.getClientRects()].filter((q) => q.width > 0).map((q) => Math.round(q.top))).size; };
  const out = { viewportWidth: innerWidth, svgs: [], tables: [], symbols: [] };
  for (const svg of document.querySelectorAll('svg')) {
    const base = svg.getBoundingClientRect();
    const one = (sel) => { const e = svg.querySelector(sel); return e ? rel(e, base) : null; };
    out.svgs.push({ cls: svg.getAttribute('class'), x: 0, y: 0, w: base.width, h: base.height, plot: one('.plot-area'),
      points: [...svg.querySelectorAll('.point')].map((p) => ({ cls: p.getAttribute('class'), title: p.querySelector('title')?.textContent ?? '', ...rel(p, base) })),
      labels: [...svg.querySelectorAll('.point-label, .budget text')].map((t) => ({ cls: t.getAttribute('class') ?? t.parentNode.getAttribute('class'), text: t.textContent, ...rel(t, base) })),
      xTicks: [...svg.querySelectorAll('.x-tick')].map((t) => ({ text: t.textContent, ...rel(t, base) })),
      yTicks: [...svg.querySelectorAll('.y-tick')].map((t) => ({ text: t.textContent, ...rel(t, base) })),
      budgetY: one('.budget-y line'), budgetX: one('.budget-x line'), hasBreak: !!svg.querySelector('.axis-break'),
      bars: [...svg.querySelectorAll('rect.bar')].map((b) => ({ value: b.nextElementSibling?.textContent ?? '', ...rel(b, base) })) });
  }
  for (const t of document.querySelectorAll('table')) out.tables.push({
    headers: [...t.querySelectorAll('thead th')].map((c) => ({ text: c.textContent, lines: lines(c) })),
    rows: [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.children].map((c) => ({ text: c.textContent, lines: lines(c) }))) });
  out.symbols = [...document.querySelectorAll('dl.symbols dt')].map((d) => d.textContent);
  const pre = document.createElement('pre'); pre.id = 'qtool-geometry'; pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();</script>`;

/** Lay the page out at `width`×`height` CSS pixels and return the measured geometry. */
export function measurePage(chromium: string, html: string, dir: string, opts: { width?: number; height?: number } = {}): PageGeometry {
  const file = path.join(dir, `measure-${process.pid}-${Date.now()}.html`);
  fs.writeFileSync(file, html.replace('</body>', `${MEASURE}</body>`));
  const r = spawnSync(chromium, [...FLAGS, `--window-size=${opts.width ?? 1000},${opts.height ?? 900}`, '--virtual-time-budget=3000', '--dump-dom', `file://${file}`], {
    encoding: 'utf8',
    timeout: 90_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const m = /<pre id="qtool-geometry">([\s\S]*?)<\/pre>/.exec(r.stdout ?? '');
  if (!m) throw new Error(`chromium printed no geometry (exit ${r.status}): ${(r.stderr ?? '').slice(-2000)}`);
  const text = m[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&nbsp;/g, '\u00a0').replace(/&amp;/g, '&');
  return JSON.parse(text) as PageGeometry;
}
