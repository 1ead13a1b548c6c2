import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GraphIndex, quantizableLayers, type Model } from '../onnx/index.js';
import { Session, type Feeds } from '../runtime/index.js';
import { percentile } from './stats.js';
import type { LatencyCandidate } from './interleaved.js';

/** One node of onnxruntime's optimized graph: its kernel time per run (median over the profiled runs). */
export interface NodeCost {
  /** Node name in the optimized graph (fused nodes carry the original name plus a suffix). */
  name: string;
  opType: string;
  microsPerRun: number;
}

interface ProfileEvent {
  cat?: string;
  name?: string;
  dur?: number;
  args?: { op_name?: string };
}

/**
 * Per-node kernel times of several models on the same feeds, from onnxruntime's profiler
 * (SessionOptions.enableProfiling). The sessions run interleaved, `runs` times each after `warmup`
 * runs whose events are dropped; each node's time is its median over the runs.
 */
export async function profileNodes(candidates: readonly LatencyCandidate[], feeds: Feeds, opts: { runs?: number; warmup?: number; threads?: number } = {}): Promise<NodeCost[][]> {
  const runs = opts.runs ?? 10;
  const warmup = opts.warmup ?? 2;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-profile-'));
  const sessions: Session[] = [];
  try {
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i];
      fs.mkdirSync(path.join(dir, String(i)));
      sessions.push(await Session.open(c.source, { threads: opts.threads ?? 1, config: c.config, name: c.label, profileFilePrefix: path.join(dir, String(i), 'p') }));
    }
    for (let r = 0; r < warmup + runs; r++) for (const s of sessions) await s.run(feeds);
    const out: NodeCost[][] = [];
    for (let i = 0; i < sessions.length; i++) {
      sessions[i].endProfiling();
      const files = fs.readdirSync(path.join(dir, String(i))).filter((f) => f.endsWith('.json'));
      const events: ProfileEvent[] = files.length ? (JSON.parse(fs.readFileSync(path.join(dir, String(i), files[0]), 'utf8')) as ProfileEvent[]) : [];
      const times = new Map<string, { opType: string; t: number[] }>();
      for (const e of events) {
        if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || typeof e.dur !== 'number') continue;
        const name = e.name.slice(0, -'_kernel_time'.length);
        const entry = times.get(name) ?? { opType: e.args?.op_name ?? '', t: [] };
        times.set(name, entry);
        entry.t.push(e.dur);
      }
      out.push(
        [...times].map(([name, { opType, t }]) => {
          const timed = Float64Array.from(t.slice(Math.min(warmup, Math.max(0, t.length - 1)))).sort();
          return { name, opType, microsPerRun: percentile(timed, 50) };
        }),
      );
    }
    return out;
  } finally {
    for (const s of sessions) await s.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A main-graph layer's measured kernel time as float and as quantized (µs per run). */
export interface LayerCost {
  id: string;
  opType: string;
  floatMicros: number;
  quantizedMicros: number;
}

/** Activations (and BatchNormalization, ConvBNFusion) onnxruntime fuses into a float Conv/Gemm (the fused node is named after the last fused op's output). */
const FUSED_ACTIVATIONS = new Set(['BatchNormalization', 'Relu', 'Clip', 'LeakyRelu', 'HardSigmoid', 'Sigmoid', 'Tanh', 'Add', 'Sum']);

/**
 * Attribute optimized-graph node times to the float model's layers (Conv/MatMul/Gemm with constant
 * weights): a node belongs to layer L when it is named L or L_<suffix> (onnxruntime's QDQ and fusion
 * transformers keep the target node's name: "conv1_token_3" is QLinearConv from conv1), or
 * <t>_nchwc for an output t of L or of an activation fused into it (NCHWc Conv nodes are named after
 * the tensor they produce). Layers missing from either profile are left out.
 */
export function layerCosts(float: Model, floatNodes: readonly NodeCost[], quantizedNodes: readonly NodeCost[]): LayerCost[] {
  const index = new GraphIndex(float.proto.graph!, float.file);
  const main = index.main;
  const costOf = (nodes: readonly NodeCost[], names: ReadonlySet<string>, prefix: string): number | undefined => {
    let sum = 0;
    let found = false;
    for (const n of nodes) {
      if (names.has(n.name) || (prefix && n.name.startsWith(`${prefix}_token`))) {
        sum += n.microsPerRun;
        found = true;
      }
    }
    return found ? sum : undefined;
  };
  const out: LayerCost[] = [];
  for (const l of quantizableLayers(index)) {
    if (l.scope !== main) continue;
    const names = new Set<string>();
    if (l.node.name) names.add(l.node.name);
    let t = l.node.output[0];
    for (;;) {
      names.add(`${t}_nchwc`);
      names.add(t);
      const consumers = main.consumers.get(t) ?? [];
      if (consumers.length !== 1 || !FUSED_ACTIVATIONS.has(consumers[0].node.opType)) break;
      t = consumers[0].node.output[0];
    }
    const f = costOf(floatNodes, names, l.node.name);
    const q = costOf(quantizedNodes, names, l.node.name);
    if (f !== undefined && q !== undefined) out.push({ id: l.id, opType: l.opType, floatMicros: f, quantizedMicros: q });
  }
  return out;
}

/** Kernels that compute a layer (float, fused, NCHWc, QDQ-fused, dynamic, MatMulNBits): one per layer in the optimized graph. */
const LAYER_KERNELS = new Set([
  'Conv',
  'FusedConv',
  'ConvInteger',
  'QLinearConv',
  'ConvTranspose',
  'Gemm',
  'FusedGemm',
  'QGemm',
  'MatMul',
  'FusedMatMul',
  'MatMulNBits',
  'MatMulInteger',
  'MatMulIntegerToFloat',
  'DynamicQuantizeMatMul',
  'QLinearMatMul',
]);

/** Per-layer times of several profiles of one model's variants (profile 0: float), by execution order. */
export interface LayerTimes {
  /** Layer ids (main graph, topological order). */
  ids: string[];
  /** Per profile: µs per run of each layer (same order as ids), or undefined when its kernels could not be matched to the layers. */
  perLayer: (number[] | undefined)[];
  /** Per profile: the sum of every node's time (µs per run). */
  totals: number[];
}

/**
 * Attribute profiled node times to the float model's layers by execution order. onnxruntime renames
 * nodes when it fuses them (FusedGemm "fused /fc1/Gemm", MatMulNBits "Gemm_MatMulNBits_1", NCHWc Conv
 * named after its output), so names do not identify layers; the order does: with the sequential
 * executor the k-th layer kernel (Conv, QLinearConv, MatMulNBits, …, LAYER_KERNELS) run is the k-th
 * layer in topological order, when a profile has exactly one kernel per layer. Nodes that are not in
 * every profile (Q/DQ, DynamicQuantizeLinear, reorders, an unfused Relu) count to the layer kernel run
 * before them (to the first layer when none ran before); nodes every profile has are the shared rest.
 * A profile whose kernel count differs from the layer count is left unmatched (undefined). Branches
 * that onnxruntime runs in another order than the model's topological order swap two layers' times:
 * the result is a guide, verified by a real measurement.
 */
export function layerTimesByOrder(float: Model, profiles: readonly (readonly NodeCost[])[]): LayerTimes {
  const index = new GraphIndex(float.proto.graph!, float.file);
  const ids = quantizableLayers(index)
    .filter((l) => l.scope === index.main)
    .map((l) => l.id);
  const counts = new Map<string, number>();
  for (const p of profiles) for (const name of new Set(p.map((n) => n.name))) counts.set(name, (counts.get(name) ?? 0) + 1);
  const shared = (name: string) => counts.get(name) === profiles.length;
  const perLayer = profiles.map((p) => {
    const kernels = p.filter((n) => LAYER_KERNELS.has(n.opType));
    if (kernels.length !== ids.length || ids.length === 0) return undefined;
    const t = new Array<number>(ids.length).fill(0);
    let k = -1;
    for (const n of p) {
      if (LAYER_KERNELS.has(n.opType)) t[++k] += n.microsPerRun;
      else if (!shared(n.name)) t[Math.max(0, k)] += n.microsPerRun;
    }
    return t;
  });
  return { ids, perLayer, totals: profiles.map((p) => p.reduce((s, n) => s + n.microsPerRun, 0)) };
}
