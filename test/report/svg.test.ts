import { describe, expect, it } from 'vitest';
import { niceTicks, scatterChartSvg, type ScatterPoint } from '../../src/report/svg.js';

describe('niceTicks', () => {
  it('round steps of 1, 2 or 5 × 10^k covering the range', () => {
    expect(niceTicks(0, 1)).toEqual({ lo: 0, hi: 1, ticks: [0, 0.2, 0.4, 0.6, 0.8, 1] });
    expect(niceTicks(66.5, 120.6)).toEqual({ lo: 60, hi: 130, ticks: [60, 70, 80, 90, 100, 110, 120, 130] });
    expect(niceTicks(-0.23, 1.1).ticks).toEqual([-0.4, -0.2, 0, 0.2, 0.4, 0.6, 0.8, 1, 1.2]);
    expect(niceTicks(5, 5).ticks.length).toBeGreaterThan(1); // a flat range still gets an axis
  });
});

describe('scatterChartSvg', () => {
  const pts = (refX: number): ScatterPoint[] => [
    { x: refX, y: 0, label: '#0 float', tooltip: 'float', kind: 'reference' },
    { x: 115, y: 0.2, label: '#1', tooltip: 'all 8', kind: 'front' },
    { x: 71, y: 1, label: '#2 chosen', tooltip: 'chosen', kind: 'chosen' },
  ];
  const cx = (svg: string, cls: string) => [...svg.matchAll(new RegExp(`class="point ${cls}"[^>]*?(?:cx|x)="([\\d.]+)"`, 'g'))].map((m) => Number(m[1]));

  it('puts a far reference past an axis break and keeps the candidates spread over the plot', () => {
    const svg = scatterChartSvg(pts(454), { title: 't', xLabel: 'x', yLabel: 'y', hLine: { y: 1, label: 'budget' } });
    expect(svg).toContain('class="axis-break"');
    const plotRight = Number(/class="plot-area" x="(\d+)" y="\d+" width="(\d+)"/.exec(svg)!.slice(1).reduce((a, b) => String(Number(a) + Number(b))));
    expect(cx(svg, 'point-reference')[0]).toBeGreaterThan(plotRight);
    const [c1] = cx(svg, 'point-front');
    const [c2] = cx(svg, 'point-chosen');
    expect(c1 - c2).toBeGreaterThan(0.5 * (plotRight - 70));
    expect(svg.match(/class="point-label"/g)).toHaveLength(3);
    expect(svg).toContain('class="budget budget-y"');
  });

  it('keeps a near reference on the axis (no break)', () => {
    const svg = scatterChartSvg(pts(140), { title: 't', xLabel: 'x', yLabel: 'y' });
    expect(svg).not.toContain('axis-break');
  });

  it('says how many points were not finite instead of drawing them', () => {
    const p = pts(454);
    p.push({ x: 80, y: Number.NaN, label: '#3', tooltip: 'nan', kind: 'candidate' });
    expect(scatterChartSvg(p, { title: 't', xLabel: 'x', yLabel: 'y' })).toContain('1 point(s) not finite, not drawn');
  });
});
