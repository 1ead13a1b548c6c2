import { UsageError } from '../errors.js';
import {
  SearchOptionsSchema,
  type EvalResult,
  type LayerBits,
  type LayerPlan,
  type Plan,
  type SearchEvaluation,
  type SearchOptions,
  type SearchReport,
  type SensitivityReport,
} from '../documents/index.js';
import { metricDrop } from '../quant/index.js';
import { solveKnapsack } from './knapsack.js';
import { latencyAt, latencyOrder, lossTerm, predictLatencyMs, type SearchLatencyHooks } from './latency.js';
import { orderLayers, omegaAt, sizeAt, type OrderBy } from './order.js';
import { paretoFront } from './pareto.js';

export type Evaluate = (plan: Plan) => Promise<EvalResult>;
export type Assignment = Record<string, LayerBits>;

export interface SearchProgress {
  phase: 'evaluate';
  /** Evaluations done so far, and the cap. */
  done: number;
  total: number;
  label: string;
}

export interface SearchHooks {
  onProgress?: (e: SearchProgress) => void;
  source?: { file: string; sha256: string };
  /** Terms that order the layers (default 'combined'; see OrderBy). */
  orderBy?: OrderBy;
  /**
   * Profiled per-layer latency costs and the real latency measurement: needed by objective latency and
   * maxLatencyMs; with only `measure`-less profile the predictions stand in for measured latencies.
   */
  latency?: SearchLatencyHooks;
}

export interface SearchResult {
  /** The best configuration found (the passing one with the smallest size, else the best seen). */
  plan: Plan;
  report: SearchReport;
}

const RANK: Record<string, number> = { float: 3, '16': 2, '8': 1, '4': 0 };
const levelKey = (b: LayerBits) => String(b);

/** Default cap on full evaluations for L layers: floor(2·log2 L) + 4. */
export function defaultMaxEvaluations(layers: number): number {
  return Math.floor(2 * Math.log2(Math.max(2, layers)) + 4);
}

/**
 * Mixed-precision search over a sensitivity report with an injected evaluate(plan).
 *
 * Bisection (default). Levels are taken from highest to lowest precision (e.g. float, 8, 4).
 * 1. Reference: the float model (evaluated, except for agreement/cosine whose float value is 1 by
 *    definition); for sqnr the reference is the all-highest-integer configuration.
 * 2. Endpoint: every layer at the highest level. If it misses the budget, stop: it is written as the
 *    result with budgetMet = false. (When the highest level is float this is the reference itself.)
 * 3. One demotion step per pair of adjacent levels (float→8, then 8→4): the layers currently at the
 *    upper level, ordered most sensitive first for this pair, define C_k = the top k stay, the rest are
 *    demoted. C_m (nothing demoted) is known to pass; C_0 (all demoted) is evaluated first and taken
 *    when it passes; otherwise bisection finds the smallest passing k in ⌈log2 m⌉ evaluations.
 *    Monotonicity check: when k* ≥ 2 and the cap allows, C_{k*−2} is evaluated (free when bisection
 *    already did); if it passes the order was not monotone there and k is refined linearly downward.
 * The number of evaluations never exceeds maxEvaluations; when the cap cuts a bisection short, the
 * smallest known passing k is used.
 *
 * Evaluation count. A step over m candidates costs at most 1 (C_0) + ⌈log2 m⌉ (bisection) + 1
 * (monotonicity; free when bisection already evaluated k*−2), before any linear refinement.
 * Two levels: reference + endpoint + step ≤ ⌈log2 L⌉ + 4 (accuracy/sqnr; with float as the top level
 * the endpoint is the reference, ⌈log2 L⌉ + 3), within the default cap floor(2·log2 L) + 4 for L ≥ 2.
 * Three levels (4, 8, float): 1 + (2 + ⌈log2 L⌉) + (2 + ⌈log2 m₂⌉) ≤ 2·⌈log2 L⌉ + 5 uncapped, m₂ being
 * the layers the first step demoted to 8. The default cap still bounds it at floor(2·log2 L) + 4; the
 * overshoot (at most 3, from the two ceilings and the second endpoint) is taken off the second step's
 * bisection, which then keeps the smallest passing k it has seen (noted in the report); give
 * maxEvaluations = 2·⌈log2 L⌉ + 5 to let both bisections finish.
 *
 * Knapsack (maxSizeBytes): minimise Σ Ω_i(b_i) subject to Σ size_i(b_i) ≤ maxSizeBytes − the rest of the
 * model, exactly by dynamic programming, then one real evaluation (plus the reference).
 */
export async function searchPlan(sens: SensitivityReport, evaluate: Evaluate, options: SearchOptions = {}, hooks: SearchHooks = {}): Promise<SearchResult> {
  const opts = SearchOptionsSchema.parse(options);
  const objective = opts.maxLatencyMs !== undefined ? 'latency' : opts.objective;
  if (objective === 'latency' && !hooks.latency) throw new UsageError('E_OPTION_CONFLICT', 'search: objective latency needs profiled per-layer latency costs (hooks.latency); the search() door measures them');
  if (objective === 'latency' && opts.maxSizeBytes !== undefined) throw new UsageError('E_OPTION_CONFLICT', 'search: --max-size and the latency objective (--objective latency, --max-latency) are alternatives: give one');
  const profile = hooks.latency?.profile;
  const costs = new Map((profile?.layers ?? []).map((l) => [l.id, l]));
  // The latency objective always has float as a level: a layer whose quantized kernel is slower stays float.
  const levels = [...new Set<LayerBits>(objective === 'latency' ? ['float', ...opts.bits] : opts.bits)].sort((a, b) => RANK[levelKey(b)] - RANK[levelKey(a)]);
  if (levels.length < 2) throw new UsageError('E_FLAG', `invalid search options: bits: expected at least two distinct levels, got ${levels.join(',')} (with --objective latency float is always a level)`);
  for (const b of levels) {
    if (b !== 'float' && !sens.settings.bits.includes(b)) {
      throw new UsageError('E_OPTION_CONFLICT', `--bits ${b}: expected a bit width the sensitivity report analysed (${sens.settings.bits.join(', ')}), got ${b}`);
    }
  }
  const layers = sens.layers;
  const L = layers.length;
  const maxEvaluations = opts.maxEvaluations ?? defaultMaxEvaluations(L);
  const dropUnit = opts.metric === 'accuracy' || opts.metric === 'agreement' ? 'points' : 'percent';
  const notes: string[] = [];
  const evaluations: SearchEvaluation[] = [];
  const cache = new Map<string, number>();
  let reference = { label: 'float', value: NaN };

  const sizeOf = (a: Assignment): number => sens.otherBytes + layers.reduce((s, l) => s + (sizeAt(l, a[l.id]) ?? l.floatBytes), 0);
  const dropOf = (v: number): number => {
    return metricDrop(reference.value, v, dropUnit, opts.metric === 'perplexity');
  };
  const uniform = (b: LayerBits): Assignment => Object.fromEntries(layers.map((l) => [l.id, b]));
  const keyOf = (a: Assignment) => layers.map((l) => levelKey(a[l.id])).join(',');
  const budgetLeft = () => maxEvaluations - evaluations.length;

  const run = async (a: Assignment, label: string, purpose: string, step: string | null, k: number | null): Promise<SearchEvaluation> => {
    const cached = cache.get(keyOf(a));
    if (cached !== undefined) return evaluations[cached];
    hooks.onProgress?.({ phase: 'evaluate', done: evaluations.length, total: maxEvaluations, label });
    const r = await evaluate(toPlan(a));
    const counts: Record<string, number> = {};
    for (const l of layers) counts[levelKey(a[l.id])] = (counts[levelKey(a[l.id])] ?? 0) + 1;
    const e: SearchEvaluation = {
      index: evaluations.length,
      label,
      purpose,
      step,
      k,
      value: r.value,
      drop: 0,
      passes: false,
      sizeBytes: sizeOf(a),
      measuredSizeBytes: r.sizeBytes ?? null,
      counts,
      assignment: { ...a },
      predictedLatencyMs: profile ? predictLatencyMs(profile, costs, a) : null,
      latencyMs: null,
      latencyRatio: null,
    };
    evaluations.push(e);
    cache.set(keyOf(a), e.index);
    if (Number.isFinite(reference.value)) {
      e.drop = dropOf(e.value);
      e.passes = e.drop <= opts.maxDrop + 1e-9;
    }
    hooks.onProgress?.({ phase: 'evaluate', done: evaluations.length, total: maxEvaluations, label });
    return e;
  };

  const toPlan = (a: Assignment): Plan => {
    const entries: Record<string, LayerPlan> = {};
    for (const l of layers) entries[l.id] = layerPlan(a[l.id], opts.blockSize);
    return { kind: 'qtool.plan', version: 1, ...(hooks.source ? { model: hooks.source } : {}), mode: opts.mode, defaults: { bits: 'float' }, layers: entries };
  };

  // Reference.
  const top = levels[0];
  if (opts.metric === 'agreement' || opts.metric === 'cosine') {
    reference = { label: 'float', value: 1 };
  } else if (opts.metric === 'sqnr') {
    const topInt = levels.find((b) => b !== 'float') ?? top;
    const e = await run(uniform(topInt), `all ${topInt}`, 'reference', null, null);
    reference = { label: `all ${topInt}`, value: e.value };
  } else {
    const e = await run(uniform('float'), 'float', 'reference', null, null);
    reference = { label: 'float', value: e.value };
  }
  for (const e of evaluations) {
    e.drop = dropOf(e.value);
    e.passes = e.drop <= opts.maxDrop + 1e-9;
  }

  const steps: SearchReport['steps'] = [];
  let strategy: SearchReport['strategy'] = 'bisection';
  let chosen: SearchEvaluation | undefined;
  let budgetMet = false;

  const latencyLevels = levels;
  const { lossAt, isMeasured } = lossTerm(layers, latencyLevels);
  const allFloat = (a: Assignment) => Object.values(a).every((b) => b === 'float');
  let latencyDone = false;
  if (objective === 'latency' && opts.maxLatencyMs !== undefined) {
    // Knapsack: minimise Σ loss_i(b_i) subject to Σ cost_i(b_i) ≤ the layer time left under the budget.
    const need = (profile!.baseMs - opts.maxLatencyMs) * 1000;
    if (need <= 0) {
      notes.push(`latency: float already measures ${profile!.baseMs.toFixed(3)} ms ≤ ${opts.maxLatencyMs} ms; minimising latency within the drop budget instead`);
    } else {
      strategy = 'latency-knapsack';
      latencyDone = true;
      const profiled = layers.filter((l) => latencyAt(costs, l.id, 'float') !== undefined);
      const floatSum = profiled.reduce((t, l) => t + latencyAt(costs, l.id, 'float')!, 0);
      const scale = 10; // DP resolution 0.1 µs
      const items = profiled.map((l) => ({
        options: latencyLevels
          .filter((b) => latencyAt(costs, l.id, b) !== undefined && Number.isFinite(lossAt(l, b)))
          .map((b) => ({ choice: b, sizeBytes: latencyAt(costs, l.id, b)! * scale, cost: lossAt(l, b) })),
      }));
      const ks = solveKnapsack(items, (floatSum - need) * scale);
      let a: Assignment = uniform('float');
      if (ks.choices) {
        profiled.forEach((l, i) => (a[l.id] = ks.choices![i]));
        notes.push(`latency knapsack: minimum summed ${isMeasured ? 'measured single-layer loss' : 'Omega'} ${ks.cost.toExponential(3)} with profiled layer time ${(ks.sizeBytes / scale / 1000).toFixed(3)} ms of ${(floatSum / 1000).toFixed(3)} ms float`);
      } else {
        for (const o of latencyOrder(layers, latencyLevels, costs, lossAt)) a[o.id] = o.bits;
        notes.push(`latency knapsack: no assignment reaches ${opts.maxLatencyMs} ms by the profile (fastest predicted ${predictLatencyMs(profile!, costs, a).toFixed(3)} ms); evaluated every layer at its fastest level`);
      }
      chosen = await run(a, 'latency knapsack', 'knapsack', null, null);
      budgetMet = Boolean(ks.choices) && chosen.passes && !allFloat(a);
      if (ks.choices && !chosen.passes) notes.push(`latency knapsack: the configuration under the latency budget misses the drop budget (drop ${chosen.drop.toFixed(3)} ${dropUnit} > ${opts.maxDrop}): no configuration meets both by the profile`);
    }
  }
  if (objective === 'latency' && !latencyDone) {
    // Greedy: switch layers to their fastest level in order of profiled saving per unit of loss; bisection
    // finds the largest prefix that passes (C_0, every layer float, passes by definition).
    strategy = 'latency-greedy';
    const order = latencyOrder(layers, latencyLevels, costs, lossAt);
    const skipped = layers.length - order.length;
    notes.push(`latency: ${order.length} of ${layers.length} layers profiled faster quantized (ordered by saving per ${isMeasured ? 'measured single-layer loss' : 'Omega'})${skipped ? `; ${skipped} stay float (no level profiled faster than float, or not matched in the profile)` : ''}`);
    const m = order.length;
    const config = (k: number): Assignment => {
      const a = uniform('float');
      for (let i = 0; i < k; i++) a[order[i].id] = order[i].bits;
      return a;
    };
    const stepEvals: number[] = [];
    const evalK = async (k: number, purpose: string) => {
      const e = await run(config(k), `latency k=${k}`, purpose, 'latency', k);
      if (!stepEvals.includes(e.index)) stepEvals.push(e.index);
      return e;
    };
    let lo = 0;
    let hi = m + 1;
    if (m > 0 && budgetLeft() > 0) {
      const em = await evalK(m, 'endpoint');
      if (em.passes) lo = m;
      else hi = m;
    }
    while (hi - lo > 1 && hi <= m && budgetLeft() > 0) {
      const mid = Math.floor((lo + hi) / 2);
      const e = await evalK(mid, 'bisection');
      if (e.passes) lo = mid;
      else hi = mid;
    }
    if (hi - lo > 1 && hi <= m) notes.push(`latency: evaluation cap reached during bisection; using the largest passing k found (${lo})`);
    steps.push({ from: 'float', to: levels[levels.length - 1], candidates: order.map((o) => o.id), k: lo, evaluations: stepEvals, isMonotone: null });
    chosen = lo > 0 ? evaluations.find((e) => e.step === 'latency' && e.k === lo) : evaluations.find((e) => allFloat(e.assignment));
    chosen ??= await run(config(0), 'latency k=0', 'endpoint', 'latency', 0);
    budgetMet = chosen.passes;
    // Screen by a real measurement: the profile sum misses the Q/DQ boundaries a mixed graph adds, so
    // shorter prefixes (which pass when the order is monotone) and every uniform integer level are
    // timed against float in one interleaved run, and the fastest is evaluated for accuracy (then the
    // next fastest, while the cap allows), instead of trusting the profile's choice.
    if (hooks.latency?.measure && lo > 0) {
      const ks = [...new Set([lo, Math.round((lo * 3) / 4), Math.round(lo / 2), Math.round(lo / 4)])].filter((k) => k > 0);
      const screen: { label: string; purpose: string; k: number | null; a: Assignment }[] = ks.map((k) => ({ label: `latency k=${k}`, purpose: 'latency-screen', k, a: config(k) }));
      for (const b of levels) if (b !== 'float') screen.push({ label: `all ${levelKey(b)}`, purpose: 'latency-screen', k: null, a: uniform(b) });
      const r = await hooks.latency.measure(screen.map((c) => toPlan(c.a)));
      const ranked = screen.map((c, i) => ({ ...c, ms: r.plans[i].medianMs, ratio: r.plans[i].ratio })).sort((x, y) => x.ms - y.ms);
      notes.push(`latency screen (${r.rounds} interleaved rounds vs float ${r.floatMs.toFixed(3)} ms): ${ranked.map((c) => `${c.label} ${c.ms.toFixed(3)} ms (${c.ratio.toFixed(2)}x)`).join(', ')}`);
      for (const c of ranked) {
        const known = cache.get(keyOf(c.a));
        if (known === undefined && budgetLeft() <= 0) break;
        const e = known !== undefined ? evaluations[known] : await run(c.a, c.label, c.purpose, c.k === null ? null : 'latency', c.k);
        if (e.passes && !allFloat(e.assignment)) break;
      }
    }
  } else if (objective === 'latency') {
    // knapsack done above
  } else if (opts.maxSizeBytes !== undefined) {
    strategy = 'knapsack';
    const items = layers.map((l) => ({ options: levels.map((b) => ({ choice: b, sizeBytes: sizeAt(l, b) ?? l.floatBytes, cost: omegaAt(l, b) ?? 0 })) }));
    const ks = solveKnapsack(items, opts.maxSizeBytes - sens.otherBytes);
    let a: Assignment;
    if (ks.choices) {
      a = Object.fromEntries(layers.map((l, i) => [l.id, ks.choices![i]]));
      notes.push(`knapsack: minimum summed Omega ${ks.cost.toExponential(3)} with weights ${ks.sizeBytes} bytes (DP unit ${ks.unitBytes} B)`);
    } else {
      a = uniform(levels[levels.length - 1]);
      notes.push(`knapsack: no assignment fits ${opts.maxSizeBytes} bytes (the rest of the model alone is ${sens.otherBytes} bytes); evaluated all ${levels[levels.length - 1]}`);
    }
    chosen = await run(a, 'knapsack', 'knapsack', null, null);
    budgetMet = Boolean(ks.choices) && chosen.passes && chosen.sizeBytes <= opts.maxSizeBytes;
  } else {
    let current = await run(uniform(top), `all ${top}`, 'endpoint', null, null);
    if (!current.passes) {
      notes.push(`all layers at ${top} miss the budget (drop ${current.drop.toFixed(3)} ${dropUnit} > ${opts.maxDrop}); stopped`);
      chosen = current;
    } else {
      let assign: Assignment = { ...current.assignment };
      for (let s = 0; s + 1 < levels.length; s++) {
        const from = levels[s];
        const to = levels[s + 1];
        const stepName = `${levelKey(from)}→${levelKey(to)}`;
        const atFrom = layers.filter((l) => assign[l.id] === from);
        const order = orderLayers(atFrom, from, to, hooks.orderBy).map((o) => o.id);
        const m = order.length;
        const stepEvals: number[] = [];
        if (m === 0) continue;
        const config = (k: number): Assignment => {
          const a = { ...assign };
          for (let i = k; i < m; i++) a[order[i]] = to;
          return a;
        };
        const results = new Map<number, SearchEvaluation>([[m, current]]);
        const evalK = async (k: number, purpose: string): Promise<SearchEvaluation> => {
          const e = await run(config(k), `${stepName} k=${k}`, purpose, stepName, k);
          if (!stepEvals.includes(e.index)) stepEvals.push(e.index);
          results.set(k, e);
          return e;
        };
        let hi = m;
        let lo = -1;
        let isMonotone: boolean | null = null;
        if (budgetLeft() > 0) {
          const e0 = await evalK(0, 'endpoint');
          if (e0.passes) hi = 0;
          else lo = 0;
        } else notes.push(`${stepName}: evaluation cap reached before the step; kept everything at ${levelKey(from)}`);
        while (lo >= 0 && hi - lo > 1 && budgetLeft() > 0) {
          const mid = Math.floor((lo + hi) / 2);
          const e = await evalK(mid, 'bisection');
          if (e.passes) hi = mid;
          else lo = mid;
        }
        if (lo >= 0 && hi - lo > 1) notes.push(`${stepName}: evaluation cap reached during bisection; using the smallest passing k found (${hi})`);
        if (opts.checkMonotonicity && hi >= 2 && lo === hi - 1) {
          const known = results.get(hi - 2);
          const probe = known ?? (budgetLeft() > 0 ? await evalK(hi - 2, 'monotonicity') : undefined);
          if (probe) {
            isMonotone = !probe.passes;
            if (probe.passes) {
              notes.push(`${stepName}: k=${hi - 2} passes although k=${hi - 1} fails (not monotone); refining linearly`);
              hi -= 2;
              while (hi > 0 && budgetLeft() > 0) {
                const e = results.get(hi - 1) ?? (await evalK(hi - 1, 'refine'));
                if (!e.passes) break;
                hi--;
              }
            }
          }
        }
        current = results.get(hi)!;
        assign = { ...current.assignment };
        steps.push({ from, to, candidates: order, k: hi, evaluations: stepEvals, isMonotone });
      }
      chosen = current;
      budgetMet = true;
    }
  }

  // The real measurement: float and every evaluated configuration, interleaved.
  let run_: Awaited<ReturnType<NonNullable<SearchLatencyHooks['measure']>>> | undefined;
  if (hooks.latency?.measure) {
    const measured = evaluations.filter((e) => !allFloat(e.assignment));
    run_ = await hooks.latency.measure(measured.map((e) => toPlan(e.assignment)));
    for (const e of evaluations) {
      const i = measured.indexOf(e);
      e.latencyMs = i < 0 ? run_.floatMs : run_.plans[i].medianMs;
      e.latencyRatio = i < 0 ? 1 : run_.plans[i].ratio;
    }
  }
  const latencyOf = (e: SearchEvaluation) => e.latencyMs ?? e.predictedLatencyMs ?? Infinity;
  if (strategy === 'latency-greedy' && budgetMet) {
    // Of the passing configurations seen, the fastest measured (the profile only ordered the layers).
    const fastest = evaluations.filter((e) => e.passes && !allFloat(e.assignment)).reduce((a, b) => (latencyOf(b) < latencyOf(a) ? b : a), chosen!);
    chosen = fastest;
  }
  if (objective === 'latency' && chosen) {
    const c = chosen;
    const what = c.latencyMs !== null ? `measured ${c.latencyMs.toFixed(3)} ms (${c.latencyRatio!.toFixed(2)}x float)` : 'not measured';
    notes.push(`latency of the chosen configuration: ${what}; profile-sum prediction ${c.predictedLatencyMs?.toFixed(3)} ms (the profile is only a guide: boundaries between float and quantized layers and session overhead are not in it)`);
    if (opts.maxLatencyMs !== undefined && latencyOf(c) > opts.maxLatencyMs + 1e-12 && strategy === 'latency-knapsack') {
      budgetMet = false;
      notes.push(`latency budget NOT met: ${c.latencyMs !== null ? 'verified' : 'predicted'} ${latencyOf(c).toFixed(3)} ms > ${opts.maxLatencyMs} ms`);
    }
    if (c.latencyRatio !== null && c.latencyRatio > 1 && !allFloat(c.assignment)) notes.push(`WARNING: the chosen configuration measured SLOWER than float (${c.latencyRatio.toFixed(2)}x) on this machine`);
  }
  const passing = evaluations.filter((e) => e.passes);
  if (strategy === 'bisection' && budgetMet) {
    // The bisection result is a passing configuration; prefer a smaller passing one seen on the way.
    const smallest = passing.reduce((a, b) => (b.sizeBytes < a.sizeBytes ? b : a), chosen!);
    chosen = smallest;
  }
  // A result that quantizes nothing (every layer float) is the input model again: never "budget met".
  if (budgetMet && Object.values(chosen!.assignment).every((b) => b === 'float')) {
    budgetMet = false;
    notes.push('budget not met: only the configuration with every layer float passes, which quantizes nothing (the input model unchanged); the budget cannot be met by keeping layers float');
  }
  const pareto = paretoFront(evaluations.map((e) => ({ sizeBytes: e.sizeBytes, drop: e.drop })));
  const timed = evaluations.filter((e) => e.latencyMs !== null);
  const paretoLatency = paretoFront(timed.map((e) => ({ sizeBytes: e.latencyMs!, drop: e.drop }))).map((i) => timed[i].index);
  const uniformSizes: Record<string, number> = {};
  for (const b of [...new Set<LayerBits>(['float', ...sens.settings.bits])]) uniformSizes[levelKey(b)] = sizeOf(uniform(b));
  const report: SearchReport = {
    kind: 'qtool.search-report',
    version: 1,
    model: hooks.source ?? sens.model,
    strategy,
    objective,
    maxLatencyMs: opts.maxLatencyMs ?? null,
    metric: opts.metric,
    dropUnit,
    maxDrop: opts.maxDrop,
    maxSizeBytes: opts.maxSizeBytes ?? null,
    bits: levels,
    reference,
    order: objective === 'latency' ? latencyOrder(layers, levels, costs, lossAt).map((o) => ({ id: o.id, score: o.savingMicros / 1000 })) : orderLayers(layers, levels[0], levels[levels.length - 1], hooks.orderBy),
    steps,
    evaluations,
    chosen: chosen!.index,
    budgetMet,
    pareto,
    paretoLatency,
    latency: profile
      ? {
          batchSize: profile.batchSize,
          floatProfileMicros: profile.floatProfileMicros,
          predictionBaseMs: profile.baseMs,
          layers: [...profile.layers],
          profileSource: profile.source,
          floatMs: run_?.floatMs ?? null,
          machine: profile.machine,
          rounds: run_?.rounds ?? 0,
          seconds: run_?.seconds ?? 0,
          loadAverage: run_?.loadAverage ?? 0,
        }
      : null,
    uniformSizes,
    evaluationCount: evaluations.length,
    maxEvaluations,
    notes,
  };
  return { plan: toPlan(chosen!.assignment), report };
}

/** The plan entry of one layer at a level (the rewriter's defaults made explicit). */
export function layerPlan(bits: LayerBits, blockSize: number): LayerPlan {
  if (bits === 4) return { bits, granularity: 'block', blockSize, symmetric: true };
  if (bits === 'float') return { bits };
  return { bits, granularity: 'channel', symmetric: true };
}
