import type { LayerBits, LayerLatency, LatencyMachine, Plan, SensitivityReport } from '../documents/index.js';
import { measuredAt, omegaAt } from './order.js';

type ReportLayer = SensitivityReport['layers'][number];

/** The profiled per-layer costs a latency search is driven by (the pipeline profiles them; tests give them). */
export interface LatencyProfile {
  batchSize: number;
  /** Float latency (ms) measured briefly before the search: predictions are this minus the profiled savings. */
  baseMs: number;
  /** Sum of every node's profiled time in the float model (µs per run). */
  floatProfileMicros: number;
  /** µs per run by level key ("float", "8", "4"). Layers missing here are never changed for speed. */
  layers: readonly LayerLatency[];
  source: 'measured' | 'cache';
  machine: LatencyMachine;
}

/** One interleaved run of float and the given plans (float first, the reference of every ratio). */
export interface LatencyRun {
  floatMs: number;
  /** Per plan, in the order given. */
  plans: { medianMs: number; ratio: number }[];
  rounds: number;
  seconds: number;
  loadAverage: number;
}

export interface SearchLatencyHooks {
  profile: LatencyProfile;
  /** Time float and these plans interleaved (a real measurement; injected by tests). */
  measure?: (plans: readonly Plan[]) => Promise<LatencyRun>;
}

const key = (b: LayerBits) => String(b);

/** A layer's profiled cost at a level (µs per run), undefined when not profiled. */
export function latencyAt(costs: ReadonlyMap<string, LayerLatency>, id: string, bits: LayerBits): number | undefined {
  const v = costs.get(id)?.micros[key(bits)];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Predicted latency (ms) of an assignment: the float base minus the profiled savings of the changed layers. */
export function predictLatencyMs(profile: LatencyProfile, costs: ReadonlyMap<string, LayerLatency>, a: Readonly<Record<string, LayerBits>>): number {
  let saving = 0;
  for (const [id, b] of Object.entries(a)) {
    const f = latencyAt(costs, id, 'float');
    const c = latencyAt(costs, id, b);
    if (f !== undefined && c !== undefined) saving += f - c;
  }
  return profile.baseMs - saving / 1000;
}

/**
 * The accuracy cost of a layer at a level: its measured single-layer loss when the report measured
 * every layer at every level, else Ω (the Hessian proxy); 0 for float.
 */
export function lossTerm(layers: readonly ReportLayer[], levels: readonly LayerBits[]): { lossAt: (l: ReportLayer, b: LayerBits) => number; isMeasured: boolean } {
  const isMeasured = layers.every((l) => levels.every((b) => b === 'float' || Number.isFinite(measuredAt(l, b) ?? NaN)));
  return {
    isMeasured,
    lossAt: (l, b) => {
      const v = isMeasured ? measuredAt(l, b) : omegaAt(l, b);
      return Math.max(0, v ?? Infinity);
    },
  };
}

/** A layer's fastest profiled level (lower latency than float; lower loss breaks ties), or undefined when no level is faster than float. */
export function fastestLevel(l: ReportLayer, levels: readonly LayerBits[], costs: ReadonlyMap<string, LayerLatency>, lossAt: (l: ReportLayer, b: LayerBits) => number): { bits: LayerBits; savingMicros: number; loss: number } | undefined {
  const f = latencyAt(costs, l.id, 'float');
  if (f === undefined) return undefined;
  let best: { bits: LayerBits; savingMicros: number; loss: number } | undefined;
  for (const b of levels) {
    if (b === 'float') continue;
    const c = latencyAt(costs, l.id, b);
    if (c === undefined || c >= f) continue;
    const cand = { bits: b, savingMicros: f - c, loss: lossAt(l, b) };
    if (!Number.isFinite(cand.loss)) continue;
    if (!best || cand.savingMicros > best.savingMicros || (cand.savingMicros === best.savingMicros && cand.loss < best.loss)) best = cand;
  }
  return best;
}

/**
 * Greedy order for the latency objective: the layers that run faster quantized, by profiled saving per
 * unit of loss (largest first; zero-loss layers first, by saving), each with its fastest level.
 */
export function latencyOrder(layers: readonly ReportLayer[], levels: readonly LayerBits[], costs: ReadonlyMap<string, LayerLatency>, lossAt: (l: ReportLayer, b: LayerBits) => number): { id: string; bits: LayerBits; savingMicros: number; loss: number; score: number }[] {
  const out: { id: string; bits: LayerBits; savingMicros: number; loss: number; score: number; i: number }[] = [];
  layers.forEach((l, i) => {
    const f = fastestLevel(l, levels, costs, lossAt);
    if (f) out.push({ id: l.id, ...f, score: f.loss > 0 ? f.savingMicros / f.loss : Infinity, i });
  });
  out.sort((a, b) => (a.score === b.score ? b.savingMicros - a.savingMicros : b.score - a.score) || a.i - b.i);
  return out.map(({ i: _i, ...o }) => o);
}
