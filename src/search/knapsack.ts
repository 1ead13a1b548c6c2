/** One item of the multiple-choice knapsack: a layer with one (size, cost) option per precision level. */
export interface KnapsackItem<C> {
  options: readonly { choice: C; sizeBytes: number; cost: number }[];
}

export interface KnapsackResult<C> {
  /** Chosen option per item, or undefined when no selection fits. */
  choices?: C[];
  cost: number;
  sizeBytes: number;
  /** Bytes per DP unit (sizes are rounded up to whole units, so the result never exceeds the budget). */
  unitBytes: number;
}

/**
 * Exact multiple-choice knapsack by dynamic programming: minimise Σ cost subject to Σ size ≤ budget,
 * one option per item. Sizes are rounded up to `unitBytes` = ceil(budget / maxUnits) (1 byte when the
 * budget is small), which keeps every returned selection within the budget; the optimum is exact on
 * the rounded sizes.
 */
export function solveKnapsack<C>(items: readonly KnapsackItem<C>[], budgetBytes: number, maxUnits = 200_000): KnapsackResult<C> {
  const unitBytes = Math.max(1, Math.ceil(budgetBytes / maxUnits));
  const cap = Math.floor(budgetBytes / unitBytes);
  if (cap < 0) return { cost: Infinity, sizeBytes: 0, unitBytes };
  let best = new Float64Array(cap + 1).fill(0);
  const pick: Int16Array[] = [];
  for (const item of items) {
    const next = new Float64Array(cap + 1).fill(Infinity);
    const choice = new Int16Array(cap + 1).fill(-1);
    const units = item.options.map((o) => Math.ceil(o.sizeBytes / unitBytes));
    for (let c = 0; c <= cap; c++) {
      for (let k = 0; k < item.options.length; k++) {
        const u = units[k];
        if (u > c) continue;
        const v = best[c - u] + item.options[k].cost;
        if (v < next[c]) {
          next[c] = v;
          choice[c] = k;
        }
      }
    }
    pick.push(choice);
    best = next;
  }
  if (!Number.isFinite(best[cap])) return { cost: Infinity, sizeBytes: 0, unitBytes };
  const choices: C[] = new Array(items.length);
  let c = cap;
  let size = 0;
  for (let i = items.length - 1; i >= 0; i--) {
    const k = pick[i][c];
    const o = items[i].options[k];
    choices[i] = o.choice;
    size += o.sizeBytes;
    c -= Math.ceil(o.sizeBytes / unitBytes);
  }
  return { choices, cost: best[cap], sizeBytes: size, unitBytes };
}
