/**
 * The latency side of `qtool search`: per-layer costs from onnxruntime's profiler (float and each
 * uniform level, cached like the latency cache) and the interleaved measurement of evaluated plans.
 */
import { latencyCacheKey, latencyMachine, layerCosts, layerTimesByOrder, profileNodes, readCacheValue, writeLatencyCache, type LatencyCandidate, type NodeCost } from '../bench/index.js';
import type { LayerBits, LayerLatency, Plan } from '../documents/index.js';
import type { Model } from '../onnx/index.js';
import type { Feeds } from '../runtime/index.js';
import type { LatencyProfile, LatencyRun, SearchLatencyHooks } from '../search/index.js';
import { measureLatencyInterleaved, type LatencyBatch, type MeasureLatency } from './formats.js';

/** Per-node profiles of the candidates on the same feeds (default: profileNodes, 10 runs after 2 warm-ups). */
export type ProfileLatency = (candidates: readonly LatencyCandidate[], feeds: Feeds) => Promise<NodeCost[][]>;

export interface SearchLatencyOptions {
  /** Seconds of interleaved timing of the evaluated configurations (a fifth more for the float base). */
  seconds: number;
  /** The inputs the latency is profiled and measured on. */
  batch: LatencyBatch;
  /** Cache folder and the float model's sha256 (no cache when absent). */
  cache?: { dir: string; modelSha256: string; variant: unknown };
  /** Injected by tests (no timing): the interleaved measurement and the profiler. */
  measure?: MeasureLatency;
  profile?: ProfileLatency;
}

const isProfile = (v: unknown): v is Omit<LatencyProfile, 'source' | 'machine'> =>
  typeof v === 'object' && v !== null && Array.isArray((v as LatencyProfile).layers) && typeof (v as LatencyProfile).baseMs === 'number' && typeof (v as LatencyProfile).floatProfileMicros === 'number';

/**
 * Profile float and every integer level as a uniform plan (`uniformPlan(b)`, rewritten by `build`) and
 * attribute node times to layers (layerTimesByOrder; by node name, layerCosts, when a profile's kernels
 * cannot be matched by order). Then the latency hooks of searchPlan: the profile and a measure that
 * times float and the given plans interleaved.
 */
export async function searchLatencyHooks(float: Model, levels: readonly LayerBits[], uniformPlan: (b: LayerBits) => Plan, build: (plan: Plan) => Model, opts: SearchLatencyOptions): Promise<SearchLatencyHooks & { notes: string[] }> {
  const machine = latencyMachine(1);
  const ints = levels.filter((b) => b !== 'float');
  const measure = opts.measure ?? measureLatencyInterleaved;
  const plans = ints.map((b) => uniformPlan(b));
  const key = opts.cache ? latencyCacheKey(opts.cache.modelSha256, { kind: 'search-layer-profile', variant: opts.cache.variant, plans, batch: opts.batch.batchSize }, machine) : undefined;
  const notes: string[] = [];
  const cached = opts.cache && key ? readCacheValue(opts.cache.dir, key, isProfile) : undefined;
  let profile: LatencyProfile;
  if (cached) {
    profile = { ...cached, source: 'cache', machine };
  } else {
    const models = plans.map(build);
    const candidates: LatencyCandidate[] = [{ label: 'float', source: float }, ...models.map((m, i) => ({ label: String(ints[i]), source: m }))];
    const nodes = await (opts.profile ?? ((c, feeds) => profileNodes(c, feeds, { runs: 10, warmup: 2 })))(candidates, opts.batch.feeds);
    const times = layerTimesByOrder(float, nodes);
    const byId = new Map<string, Record<string, number>>(times.ids.map((id) => [id, {}]));
    const floatTimes = times.perLayer[0];
    for (let j = 1; j < nodes.length; j++) {
      const lv = String(ints[j - 1]);
      const q = times.perLayer[j];
      if (floatTimes && q) {
        times.ids.forEach((id, i) => {
          byId.get(id)!.float = floatTimes[i];
          byId.get(id)![lv] = q[i];
        });
      } else {
        // Not one layer kernel per layer: by node names (fewer layers found), said in the report.
        const byName = layerCosts(float, nodes[0], nodes[j]);
        for (const c of byName) {
          const e = byId.get(c.id)!;
          e.float ??= c.floatMicros;
          e[lv] = c.quantizedMicros;
        }
        notes.push(`latency profile at ${lv} bits: onnxruntime's kernels did not match the ${times.ids.length} layers one to one; ${byName.length} layers attributed by node name`);
      }
    }
    const layers: LayerLatency[] = [...byId].filter(([, m]) => m.float !== undefined && Object.keys(m).length > 1).map(([id, micros]) => ({ id, micros }));
    const base = await measure([{ label: 'float', source: float }], opts.batch, Math.max(0.3, opts.seconds / 5));
    profile = { batchSize: opts.batch.batchSize, baseMs: base.candidates[0].medianMs, floatProfileMicros: times.totals[0], layers, source: 'measured', machine };
    if (opts.cache && key) {
      const { source: _s, machine: _m, ...value } = profile;
      writeLatencyCache(opts.cache.dir, key, value);
    }
  }
  const run = async (ps: readonly Plan[]): Promise<LatencyRun> => {
    const candidates: LatencyCandidate[] = [{ label: 'float', source: float }, ...ps.map((p, i) => ({ label: `#${i}`, source: build(p) }))];
    const r = await measure(candidates, opts.batch, opts.seconds);
    return { floatMs: r.candidates[0].medianMs, plans: r.candidates.slice(1).map((c) => ({ medianMs: c.medianMs, ratio: c.ratio })), rounds: r.rounds, seconds: r.seconds, loadAverage: r.loadAverage };
  };
  return { profile, measure: run, notes };
}
