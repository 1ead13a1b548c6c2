import { describe, expect, it } from 'vitest';
import { PlanSchema, SearchReportSchema, type Plan } from '../../src/documents/index.js';
import { defaultMaxEvaluations, paretoFront, searchPlan, solveKnapsack } from '../../src/search/index.js';
import { fakeReport } from './fake-report.js';

/** Accuracy falls by penalty[i] points when layer i is at 4 bits, by penalty[i]/50 at 8 bits. */
function monotoneEvaluate(penalty: readonly number[], base = 0.9) {
  let calls = 0;
  const evaluate = async (plan: Plan) => {
    calls++;
    let acc = base;
    penalty.forEach((p, i) => {
      const b = plan.layers[`layer${i}`].bits;
      if (b === 4) acc -= p / 100;
      else if (b === 8) acc -= p / 5000;
    });
    return { value: acc };
  };
  return { evaluate, calls: () => calls };
}

describe('searchPlan (bisection, synthetic monotone evaluate)', () => {
  it('finds the smallest k within the budget in O(log L) evaluations', async () => {
    const L = 16;
    const penalty = Array.from({ length: L }, (_, i) => ((i * 7) % L) / 10 + 0.01);
    const { evaluate, calls } = monotoneEvaluate(penalty);
    const { plan, report } = await searchPlan(fakeReport(penalty), evaluate, { bits: [4, 8], maxDrop: 1 });
    PlanSchema.parse(plan);
    SearchReportSchema.parse(report);
    expect(calls()).toBe(report.evaluationCount);
    expect(report.evaluationCount).toBeLessThanOrEqual(2 * Math.log2(L) + 4);
    const chosen = report.evaluations[report.chosen];
    expect(chosen.passes).toBe(true);
    expect(report.budgetMet).toBe(true);
    // Optimal under the sensitivity order: keep the k most penalised at 8 so that the rest fits.
    const sorted = [...penalty].sort((a, b) => b - a);
    let k = 0;
    const dropAt = (k: number) => sorted.slice(k).reduce((a, p) => a + p, 0) + sorted.slice(0, k).reduce((a, p) => a + p / 50, 0);
    while (dropAt(k) > 1) k++;
    expect(report.steps[0].k).toBe(k);
    expect(chosen.counts['8']).toBe(k);
    expect(chosen.sizeBytes).toBeLessThan(report.uniformSizes['8']);
  });

  it('takes all-low when it already meets the budget, with 3 evaluations', async () => {
    const { evaluate, calls } = monotoneEvaluate([0.1, 0.1, 0.1, 0.1]);
    const { report } = await searchPlan(fakeReport([0.1, 0.1, 0.1, 0.1]), evaluate, { bits: [4, 8], maxDrop: 1 });
    expect(calls()).toBe(3);
    expect(report.evaluations[report.chosen].counts['4']).toBe(4);
  });

  it('stops with budgetMet false when all-high misses the budget', async () => {
    const penalty = [200, 200, 200];
    const { evaluate, calls } = monotoneEvaluate(penalty);
    const { report, plan } = await searchPlan(fakeReport(penalty), evaluate, { bits: [4, 8], maxDrop: 1 });
    expect(report.budgetMet).toBe(false);
    expect(calls()).toBe(2);
    expect(plan.layers.layer0.bits).toBe(8);
    expect(report.notes.join(' ')).toMatch(/miss the budget/);
  });

  it('decides float→8 then 8→4 with bits 4,8,float', async () => {
    // layer0 cannot leave float (penalty at 8 already too big), the others can go to 4.
    const layers = 8;
    const weights = Array.from({ length: layers }, (_, i) => (i === 0 ? 100 : 0.05));
    let calls = 0;
    const evaluate = async (plan: Plan) => {
      calls++;
      let acc = 0.9;
      for (let i = 0; i < layers; i++) {
        const b = plan.layers[`layer${i}`].bits;
        if (i === 0 && b !== 'float') acc -= 0.05;
        else if (b === 4) acc -= 0.0005;
      }
      return { value: acc };
    };
    const { report, plan } = await searchPlan(fakeReport(weights), evaluate, { bits: [4, 8, 'float'], maxDrop: 1 });
    expect(report.steps.map((s) => `${s.from}→${s.to}`)).toEqual(['float→8', '8→4']);
    expect(plan.layers.layer0.bits).toBe('float');
    for (let i = 1; i < layers; i++) expect(plan.layers[`layer${i}`].bits).toBe(4);
    expect(calls).toBe(report.evaluationCount);
    expect(report.evaluationCount).toBeLessThanOrEqual(report.maxEvaluations);
  });

  it('detects a non-monotone boundary and refines linearly', async () => {
    // Passes for k >= 5 and k = 3: bisection ends at k = 5 (k = 4 fails), the check at k = 3 passes, k = 2 fails.
    const weights = [8, 7, 6, 5, 4, 3, 2, 1];
    const evaluate = async (plan: Plan) => {
      const k = Object.values(plan.layers).filter((l) => l.bits === 8).length;
      const passes = k >= 5 || k === 3;
      return { value: passes ? 0.9 : 0.8 };
    };
    const { report } = await searchPlan(fakeReport(weights), async (p) => (Object.keys(p.layers).every((id) => p.layers[id].bits === 'float') ? { value: 0.9 } : evaluate(p)), {
      bits: [4, 8],
      maxDrop: 1,
      maxEvaluations: 12,
    });
    expect(report.steps[0].isMonotone).toBe(false);
    expect(report.steps[0].k).toBe(3);
    expect(report.evaluations[report.chosen].passes).toBe(true);
  });

  it('defaultMaxEvaluations is floor(2 log2 L) + 4', () => {
    expect(defaultMaxEvaluations(3)).toBe(7);
    expect(defaultMaxEvaluations(8)).toBe(10);
  });
});

describe('searchPlan (knapsack)', () => {
  it('minimises the summed Omega under the size budget, then evaluates once', async () => {
    const weights = [5, 1, 3, 0.5];
    const rep = fakeReport(weights);
    const budget = rep.otherBytes + 2 * 1040 + 2 * (500 + 128);
    const { evaluate, calls } = monotoneEvaluate([0.01, 0.01, 0.01, 0.01]);
    const { report, plan } = await searchPlan(rep, evaluate, { bits: [4, 8], maxSizeBytes: budget });
    expect(calls()).toBe(2);
    expect(report.strategy).toBe('knapsack');
    expect(plan.layers.layer0.bits).toBe(8);
    expect(plan.layers.layer2.bits).toBe(8);
    expect(plan.layers.layer1.bits).toBe(4);
    expect(plan.layers.layer3.bits).toBe(4);
    expect(report.evaluations[report.chosen].sizeBytes).toBeLessThanOrEqual(budget);
    expect(report.budgetMet).toBe(true);
  });

  it('solveKnapsack matches brute force', () => {
    const items = [0, 1, 2, 3, 4].map((i) => ({ options: [{ choice: 'a', sizeBytes: 10 + i, cost: 0 }, { choice: 'b', sizeBytes: 3 + (i % 2), cost: 1 + i * 0.3 }] }));
    for (const budget of [15, 25, 35, 45, 60]) {
      const r = solveKnapsack(items, budget);
      let best = Infinity;
      for (let mask = 0; mask < 32; mask++) {
        let size = 0;
        let cost = 0;
        items.forEach((it, i) => {
          const o = it.options[(mask >> i) & 1];
          size += o.sizeBytes;
          cost += o.cost;
        });
        if (size <= budget) best = Math.min(best, cost);
      }
      expect(r.cost).toBeCloseTo(best, 9);
      if (r.choices) expect(r.sizeBytes).toBeLessThanOrEqual(budget);
    }
  });
});

describe('paretoFront', () => {
  it('keeps the non-dominated points', () => {
    const pts = [
      { sizeBytes: 10, drop: 5 },
      { sizeBytes: 20, drop: 1 },
      { sizeBytes: 15, drop: 6 },
      { sizeBytes: 30, drop: 0 },
      { sizeBytes: 25, drop: 1 },
    ];
    expect(paretoFront(pts)).toEqual([0, 1, 3]);
  });
});

describe('a result that quantizes nothing is never budget met (issue 11)', () => {
  it('levels float/8: when only every-layer-float passes, budgetMet is false and the notes say why', async () => {
    // Any layer at 8 bits costs 2 points; the budget is 1 point.
    const evaluate = async (plan: Plan) => ({ value: 0.9 - 0.02 * Object.values(plan.layers).filter((e) => e.bits === 8).length });
    const { plan, report } = await searchPlan(fakeReport([1, 2, 3, 4]), evaluate, { bits: [8, 'float'], maxDrop: 1, metric: 'accuracy' });
    expect(Object.values(plan.layers).every((e) => e.bits === 'float')).toBe(true);
    expect(report.budgetMet).toBe(false);
    expect(report.notes.join(' ')).toMatch(/quantizes nothing/);
  });
});
