/**
 * The HTML reports as a browser draws them (Debian's chromium, headless): the search chart's scale fits
 * the candidates (float past an axis break), every point is labelled and no label overlaps another label
 * or a point, the budget line sits at the budget, and chart positions read back through the axis ticks
 * equal the table's numbers (one unit); the sensitivity table defines its symbols and no cell wraps.
 * Reports: fixtures/reports/*.json, written by `qtool search`/`qtool sensitivity` on fmnist_cnn (the
 * README commands), plus a crowded variant of the search report to stress the label placement.
 * Skipped when no chromium is installed (.ci/run installs it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SearchReportSchema, SensitivityReportSchema, type SearchReport } from '../../src/documents/index.js';
import { searchHtml, sensitivityHtml } from '../../src/report/index.js';
import { findChromium, measurePage, type Box, type SvgGeometry } from '../helpers/browser.js';
import { FIXTURES } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

const chromium = findChromium();
const dir = makeTempDir('qtool-html-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const searchReport = SearchReportSchema.parse(JSON.parse(fs.readFileSync(path.join(FIXTURES, 'reports/search-fmnist-cnn-static.json'), 'utf8')));
const sensReport = SensitivityReportSchema.parse(JSON.parse(fs.readFileSync(path.join(FIXTURES, 'reports/sensitivity-fmnist-cnn.json'), 'utf8')));

/** The same search with 9 more candidates packed between the endpoints (sizes 1-3 KiB apart, drops close). */
function crowded(r: SearchReport): SearchReport {
  const c = structuredClone(r);
  const lo = c.evaluations[2];
  const hi = c.evaluations[1];
  for (let k = 1; k <= 9; k++) {
    const t = k / 10;
    c.evaluations.push({ ...structuredClone(lo), index: c.evaluations.length, label: `8→4 k=${k}`, purpose: 'bisection', sizeBytes: Math.round(lo.sizeBytes + t * (hi.sizeBytes - lo.sizeBytes) * 0.2), drop: lo.drop - t * 0.1, value: lo.value + t * 0.001, passes: true });
  }
  return SearchReportSchema.parse(c);
}

const center = (b: Box) => ({ x: b.x + b.w / 2, y: b.y + b.h / 2 });
const overlap = (a: Box, b: Box, slack = 0.5) => a.x + slack < b.x + b.w && b.x + slack < a.x + a.w && a.y + slack < b.y + b.h && b.y + slack < a.y + a.h;

/** A linear map value → pixel fitted through the tick labels (least squares over all ticks). */
function axis(ticks: { text: string; pos: number }[]): (v: number) => number {
  const pts = ticks.map((t) => ({ v: Number(t.text), p: t.pos })).filter((t) => Number.isFinite(t.v));
  expect(pts.length).toBeGreaterThanOrEqual(2);
  const mv = pts.reduce((s, t) => s + t.v, 0) / pts.length;
  const mp = pts.reduce((s, t) => s + t.p, 0) / pts.length;
  const k = pts.reduce((s, t) => s + (t.v - mv) * (t.p - mp), 0) / pts.reduce((s, t) => s + (t.v - mv) ** 2, 0);
  for (const t of pts) expect(Math.abs(mp + k * (t.v - mv) - t.p), 'ticks are evenly spaced').toBeLessThan(1);
  return (v) => mp + k * (v - mv);
}

function checkSearchChart(r: SearchReport, svg: SvgGeometry, table: { text: string }[][]) {
  const plot = svg.plot!;
  expect(plot).not.toBeNull();
  const col = (row: { text: string }[], i: number) => Number(row[i].text);
  const byIndex = new Map(table.map((row) => [Number.parseInt(row[0].text, 10), row]));
  // Main-axis x ticks are those inside the plot; the one past the break labels the reference.
  const xTicks = svg.xTicks.filter((t) => center(t).x <= plot.x + plot.w + 1).map((t) => ({ text: t.text, pos: center(t).x }));
  const toX = axis(xTicks);
  const toY = axis(svg.yTicks.map((t) => ({ text: t.text, pos: center(t).y }))); // a tick label is centred on its grid line
  expect(svg.points).toHaveLength(r.evaluations.length);
  const candidates = svg.points.filter((p) => !p.cls.includes('point-reference'));
  for (const p of svg.points) {
    const idx = Number(/^#(\d+)/.exec(p.title)![1]);
    const row = byIndex.get(idx)!;
    const c = center(p);
    // Same units as the table: its size (KiB) and drop columns read back from the point positions.
    expect(Math.abs(c.y - toY(col(row, 5))), `point #${idx} y vs table drop ${row[5].text}`).toBeLessThan(1.5);
    if (p.cls.includes('point-reference')) {
      expect(svg.hasBreak).toBe(true);
      expect(c.x).toBeGreaterThan(plot.x + plot.w);
      expect(c.x).toBeLessThan(svg.w);
    } else {
      expect(Math.abs(c.x - toX(col(row, 7))), `point #${idx} x vs table size ${row[7].text}`).toBeLessThan(1.5);
      expect(c.x).toBeGreaterThan(plot.x);
      expect(c.x).toBeLessThan(plot.x + plot.w);
      expect(c.y).toBeGreaterThan(plot.y);
      expect(c.y).toBeLessThan(plot.y + plot.h);
    }
  }
  // The scale fits the candidates: they spread over at least half of the plot's width.
  const xs = candidates.map((p) => center(p).x);
  expect(Math.max(...xs) - Math.min(...xs)).toBeGreaterThan(0.5 * plot.w);
  // The budget line is where the budget is.
  expect(svg.budgetY).not.toBeNull();
  expect(Math.abs(center(svg.budgetY!).y - toY(r.maxDrop))).toBeLessThan(1.5);
  // Every point has a label; labels overlap neither each other nor any point, and stay inside the chart.
  const labels = svg.labels.filter((l) => l.cls === 'point-label');
  expect(labels).toHaveLength(svg.points.length);
  const all = svg.labels;
  for (let i = 0; i < all.length; i++) {
    expect(all[i].x).toBeGreaterThanOrEqual(0);
    expect(all[i].x + all[i].w).toBeLessThanOrEqual(svg.w);
    for (let j = i + 1; j < all.length; j++) expect(overlap(all[i], all[j]), `labels "${all[i].text}" and "${all[j].text}" overlap`).toBe(false);
    for (const p of svg.points) expect(overlap(all[i], p), `label "${all[i].text}" covers point ${p.title}`).toBe(false);
  }
  expect(labels.find((l) => l.text.includes('chosen'))).toBeDefined();
}

describe.skipIf(!chromium)('HTML reports in headless chromium', () => {
  it('search: scale, labels, budget line and units agree with the table (real fmnist_cnn report)', () => {
    const g = measurePage(chromium!, searchHtml(searchReport), dir);
    const svg = g.svgs.find((s) => s.cls === 'scatter')!;
    expect(svg).toBeDefined();
    expect(g.tables[0].headers.map((h) => h.text)).toContain('size (KiB)');
    checkSearchChart(searchReport, svg, g.tables[0].rows);
  });

  it('search: 12 close candidates still get non-overlapping labels', () => {
    const r = crowded(searchReport);
    const g = measurePage(chromium!, searchHtml(r), dir);
    checkSearchChart(r, g.svgs.find((s) => s.cls === 'scatter')!, g.tables[0].rows);
  });

  it('sensitivity: every column symbol is defined, no cell wraps at 900 px, bars are proportional', () => {
    const g = measurePage(chromium!, sensitivityHtml(sensReport), dir, { width: 900 });
    const t = g.tables[0];
    const generic = (h: string) => h.replace(/\(\d+\)$/, '(b)');
    for (const h of t.headers.map((x) => x.text)) if (h !== 'layer' && h !== 'op') expect(g.symbols, `symbol "${h}" is defined`).toContain(generic(h));
    expect(g.symbols).toContain('L');
    for (const c of [...t.headers, ...t.rows.flat()]) expect(c.lines, `cell "${c.text}" wraps`).toBe(1);
    for (const svg of g.svgs.filter((s) => s.cls === 'bars')) {
      const bars = svg.bars.filter((b) => Number(b.value) > 0);
      expect(bars.length).toBe(sensReport.layers.length);
      const top = bars.reduce((a, b) => (Number(b.value) > Number(a.value) ? b : a));
      const k = top.w / Number(top.value);
      for (const b of bars) expect(Math.abs(b.w - k * Number(b.value))).toBeLessThan(1.5);
    }
  });
});

it('chromium is available, or the browser tests say they were skipped', () => {
  if (!chromium) console.warn('html-browser: no chromium found (apt-get install chromium); the browser checks were skipped');
  expect(true).toBe(true);
});
