import type { CalibrationTable, Plan } from '../documents/index.js';
import { UsageError } from '../errors.js';
import { tensorDataBytes, type Model } from '../onnx/index.js';
import { meanSquaredError } from '../quant/index.js';
import { applyPlan, scaleInputChannels, type ApplyPlanOptions, type ChannelScalingFold, type WeightQuantizer } from '../rewrite/index.js';
import { openMatMulSession, Session, type Feeds } from '../runtime/index.js';
import { awqScalings, smoothScalings, chooseInt4Symmetry, collectLayerInputStats, hessianLayers, mergeGptqHooks, prepareGptq, scaledStats, type GptqHook, type LayerInputStats } from '../sensitivity/index.js';
import { toFloat32 } from '../tensor/index.js';

/** Accuracy recovery beyond round-to-nearest (issue #12), as the pipeline runs it. */
export interface RecoveryOptions {
  /** rtn (default), gptq, awq (weight-only/dynamic), or awq+gptq. */
  algorithm: 'rtn' | 'gptq' | 'awq' | 'awq+gptq';
  /** GPTQ act-order (default true). */
  actOrder?: boolean;
  /** GPTQ dampening relative to the mean Hessian diagonal (default 0.01). */
  dampRel?: number;
  /** Static INT8 bias correction: on, off, or auto (default: kept when it lowers the output MSE on the calibration data). */
  biasCorrection?: 'auto' | 'on' | 'off';
  /** LLM.int8() split for dynamic INT8 MatMul/Gemm: input channels whose calibrated max |x| exceeds this run in float (default off). */
  outlierThreshold?: number;
  threads?: number;
  /**
   * GPTQ: most bytes of E[x xᵀ] held at once. Layers are split into groups by input, one statistics pass
   * per group, each group's Hessians released right after its sweep (default: half the model's tensor
   * bytes, and at least the largest single input; Infinity: one pass).
   */
  statsBytes?: number;
  /**
   * SmoothQuant α for dynamic INT8 MatMul/Gemm: s_j = max|X_j|^α / max|W_j|^(1−α) per input channel,
   * folded into the producer (LayerNorm γ/β, a decomposed LayerNorm, a MatMul/Gemm's output channels)
   * or a Mul (default: off). 'auto': α 0.5, kept when the round-to-nearest INT8 output MSE on the first
   * calibration batches is lower with it.
   */
  smooth?: number | 'auto' | 'off';
}

export interface RecoveryProgress {
  stage: 'layer-stats' | 'smooth' | 'awq' | 'gptq' | 'bias-correction';
  done?: number;
  total?: number;
  layer?: string;
}

export interface RecoveryResult {
  /** The model to rewrite (AWQ-scaled when AWQ ran; otherwise the input model). */
  model: Model;
  /** Rewrite options with the GPTQ hook and bias-correction means added. */
  rewriteOptions: ApplyPlanOptions;
  /** The plan with `algorithm` set on its defaults when GPTQ runs. */
  plan: Plan;
  notes: string[];
  folds: ChannelScalingFold[];
  /** Bias correction decision: 'on'/'off' as asked, or what auto measured (output MSE on calibration data). */
  biasCorrection?: { used: boolean; mseWithout?: number; mseWith?: number };
  /** SmoothQuant decision: whether it was applied, its α, and for 'auto' the measured output MSEs. */
  smooth?: { used: boolean; alpha: number; mseWithout?: number; mseWith?: number };
}

/** The α of `--smooth auto` (SmoothQuant's default). */
const AUTO_SMOOTH_ALPHA = 0.5;

/**
 * Run the layer-statistics pass and whatever the options ask for on top of round-to-nearest: AWQ
 * scaling (folded into the graph), GPTQ (parallel mode: one statistics pass on the float model, every
 * layer's H from it — a sequential pass per layer would cost one calibration run per layer), bias
 * correction for static INT8. `batches` are the calibration feeds (read twice at most).
 */
export async function prepareRecovery(
  model: Model,
  plan: Plan,
  table: CalibrationTable | undefined,
  rewriteOptions: ApplyPlanOptions,
  batches: () => AsyncIterable<Feeds> | Iterable<Feeds>,
  opts: RecoveryOptions,
  onProgress: (p: RecoveryProgress) => void = () => {},
): Promise<RecoveryResult> {
  const alg = opts.algorithm;
  const wantBias = plan.mode === 'static' && (opts.biasCorrection ?? 'auto') !== 'off';
  // INT4 blocks: symmetric or asymmetric per layer by measured error, unless the plan says.
  const wantSymmetry = plan.defaults.bits === 4 && plan.defaults.symmetric === undefined;
  const wantSplit = opts.outlierThreshold !== undefined && plan.mode === 'dynamic';
  if (opts.outlierThreshold !== undefined && plan.mode !== 'dynamic') throw new UsageError('E_OPTION_CONFLICT', `--outlier-threshold splits dynamic INT8 MatMuls: use it with --mode dynamic (got ${plan.mode})`);
  if (opts.smooth !== undefined && opts.smooth !== 'off') {
    if (plan.mode !== 'dynamic') throw new UsageError('E_OPTION_CONFLICT', `--smooth scales activations for dynamic INT8 MatMuls: use it with --mode dynamic (got ${plan.mode}; static ranges would have to be calibrated after it)`);
    onProgress({ stage: 'smooth' });
    const auto = opts.smooth === 'auto';
    const alpha = auto ? AUTO_SMOOTH_ALPHA : (opts.smooth as number);
    const st = await collectLayerInputStats(model, batches(), { threads: opts.threads, meanOnly: true });
    const scalings = smoothScalings(model, st, alpha);
    const r = scaleInputChannels(model, scalings);
    let decision = '';
    let measured: { mseWithout?: number; mseWith?: number } = {};
    if (auto) {
      // On when the round-to-nearest rewrite of the smoothed model has the lower output MSE on the
      // first calibration batches (the folds are exact in float, so the float reference is shared).
      const ref = await firstOutputs(model, batches());
      const without = await outputMse(ref, applyPlan(model, plan, table, rewriteOptions).model, batches());
      const withS = scalings.length > 0 ? await outputMse(ref, applyPlan(r.model, plan, table, rewriteOptions).model, batches()) : without;
      const used = withS < without;
      measured = { mseWithout: without, mseWith: withS };
      decision = `smoothquant auto ${used ? 'on' : 'off'} (α ${alpha}): int8 output MSE on the first ${DECISION_BATCHES} calibration batches ${without.toPrecision(3)} without, ${withS.toPrecision(3)} with`;
      if (!used) {
        const rest = await prepareRecovery(model, plan, table, rewriteOptions, batches, { ...opts, smooth: undefined }, onProgress);
        return { ...rest, notes: [decision, ...rest.notes], smooth: { used: false, alpha, mseWithout: without, mseWith: withS } };
      }
    }
    const rest = await prepareRecovery(r.model, plan, table, rewriteOptions, batches, { ...opts, smooth: undefined }, onProgress);
    const count = (into: string) => r.folds.filter((f) => f.into === into).length;
    const note = `smoothquant α ${alpha}: ${r.folds.length} inputs scaled, folded into ${count('layernorm')} LayerNormalization γ/β, ${count('decomposed-layernorm')} decomposed LayerNorms, ${count('matmul')} MatMul/Gemm output channels, ${count('mul')} Mul nodes`;
    return { ...rest, notes: [...(decision ? [decision] : []), note, ...rest.notes], folds: [...r.folds, ...rest.folds], smooth: { used: true, alpha, ...measured } };
  }
  if (alg === 'rtn' && !wantBias && !wantSymmetry && !wantSplit) return { model, rewriteOptions, plan, notes: [], folds: [] };
  if (alg.startsWith('awq') && plan.mode === 'static') {
    throw new UsageError('E_OPTION_CONFLICT', `--algorithm ${alg} scales activations, so static ranges would have to be calibrated after it: use it with --mode weight-only or dynamic`);
  }
  if (alg.endsWith('gptq')) return prepareGrouped(model, plan, table, rewriteOptions, batches, opts, onProgress, { wantBias, wantSymmetry, wantSplit });
  onProgress({ stage: 'layer-stats' });
  // What the statistics pass must collect: E[x xᵀ] for GPTQ/AWQ (every layer) and the INT4 symmetry
  // choice (MatMul/Gemm only); bias correction and the outlier split need only E[x] and max |x|.
  const rtnOnly = alg === 'rtn';
  const statLayers = rtnOnly && wantSymmetry ? hessianLayers(model).filter((l) => l.layer.opType !== 'Conv').map((l) => l.layer.id) : undefined;
  let stats: ReadonlyMap<string, LayerInputStats> = await collectLayerInputStats(model, batches(), { threads: opts.threads, meanOnly: rtnOnly && !wantSymmetry, layers: statLayers });
  if (statLayers && wantBias) {
    // Static INT4 is not a mode, but keep the two needs apart anyway: conv means from the graph.
    const means = await collectLayerInputStats(model, batches(), { threads: opts.threads, meanOnly: true });
    stats = new Map([...means, ...stats]);
  }
  const notes: string[] = [];
  let folds: ChannelScalingFold[] = [];
  let current = model;
  let outPlan = plan;
  if (wantSymmetry) {
    const choices = chooseInt4Symmetry(model, stats, { blockSize: plan.defaults.blockSize });
    const layers = { ...plan.layers };
    for (const c of choices) if (layers[c.layer]?.symmetric === undefined && (layers[c.layer]?.bits ?? plan.defaults.bits) === 4) layers[c.layer] = { ...(layers[c.layer] ?? { bits: 4 }), symmetric: c.symmetric };
    outPlan = { ...plan, layers };
    const asym = choices.filter((c) => !c.symmetric).length;
    notes.push(`int4 blocks: ${choices.length - asym} layers symmetric, ${asym} asymmetric (lower measured layer error Σ Δᵀ E[xxᵀ] Δ)`);
  }
  if (alg.startsWith('awq')) {
    onProgress({ stage: 'awq' });
    const bits = plan.defaults.bits === 4 ? 4 : 8;
    const scalings = awqScalings(model, stats, { bits, blockSize: plan.defaults.blockSize, symmetric: plan.defaults.symmetric ?? bits === 8 });
    const r = scaleInputChannels(model, scalings);
    current = r.model;
    folds = r.folds;
    stats = scaledStats(stats, scalings);
    for (const sc of scalings) {
      const f = r.folds.find((x) => x.activation === sc.activation)!;
      notes.push(`awq: ${sc.layers.join(', ')} input scaled (α ${sc.alpha}, β ${sc.beta}; layer error ${sc.errorBefore.toPrecision(3)} → ${sc.errorAfter.toPrecision(3)}), folded into ${foldText(f)}`);
    }
    if (scalings.length === 0) notes.push('awq: no layer measured a lower error with scaling; nothing changed');
  }
  const out: ApplyPlanOptions = { ...rewriteOptions };
  const biasCorrection = await splitAndBias(current, outPlan, table, out, stats, batches, opts, onProgress, notes, wantSplit, wantBias);
  return { model: current, rewriteOptions: out, plan: outPlan, notes, folds, biasCorrection };
}

/** The LLM.int8() split and the bias-correction decision (both from E[x] / max |x| of `stats`). */
async function splitAndBias(
  current: Model,
  outPlan: Plan,
  table: CalibrationTable | undefined,
  out: ApplyPlanOptions,
  stats: ReadonlyMap<string, LayerInputStats>,
  batches: () => AsyncIterable<Feeds> | Iterable<Feeds>,
  opts: RecoveryOptions,
  onProgress: (p: RecoveryProgress) => void,
  notes: string[],
  wantSplit: boolean,
  wantBias: boolean,
): Promise<RecoveryResult['biasCorrection']> {
  let biasCorrection: RecoveryResult['biasCorrection'];
  if (wantSplit) {
    const t = opts.outlierThreshold!;
    const channels = new Map<string, number[]>();
    for (const [id, st] of stats) {
      if (!st.maxAbs) continue;
      const c = [...st.maxAbs].flatMap((v, k) => (v > t ? [k] : []));
      if (c.length > 0 && c.length < st.maxAbs.length / 4) channels.set(id, c);
    }
    out.outlierChannels = (id) => channels.get(id);
    notes.push(`outlier split (|x| > ${t}): ${channels.size} layers, ${[...channels.values()].reduce((a, c) => a + c.length, 0)} input channels in float`);
  }
  if (wantBias) {
    const means = (id: string) => stats.get(id)?.mean;
    if (opts.biasCorrection === 'on') {
      out.layerInputMeans = means;
      biasCorrection = { used: true };
    } else {
      onProgress({ stage: 'bias-correction' });
      const ref = await firstOutputs(current, batches());
      const without = await outputMse(ref, applyPlan(current, outPlan, table, out).model, batches());
      const withBc = await outputMse(ref, applyPlan(current, outPlan, table, { ...out, layerInputMeans: means }).model, batches());
      const used = withBc < without;
      if (used) out.layerInputMeans = means;
      biasCorrection = { used, mseWithout: without, mseWith: withBc };
      notes.push(`bias correction ${used ? 'on' : 'off'}: output MSE on the first ${DECISION_BATCHES} calibration batches ${without.toPrecision(3)} without, ${withBc.toPrecision(3)} with`);
    }
  }
  return biasCorrection;
}

/** Layer ids in groups whose distinct inputs hold at most `budget` bytes of E[x xᵀ] (graph order). */
export function statsGroups(model: Model, budget: number): string[][] {
  const inputs = new Map<string, { layers: string[]; bytes: number }>();
  for (const { layer, view, activation } of hessianLayers(model)) {
    const key = `${activation}\u0000${JSON.stringify(view)}`;
    const e = inputs.get(key);
    if (e) e.layers.push(layer.id);
    else inputs.set(key, { layers: [layer.id], bytes: 4 * view.dim * view.dim * (view.kind === 'conv' ? view.groups : 1) });
  }
  const groups: string[][] = [];
  let cur: string[] = [];
  let bytes = 0;
  for (const e of inputs.values()) {
    if (cur.length > 0 && bytes + e.bytes > budget) {
      groups.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(...e.layers);
    bytes += e.bytes;
  }
  if (cur.length > 0) groups.push(cur);
  return groups;
}

/**
 * GPTQ (and AWQ+GPTQ) in groups of layers: per group one statistics pass on the model as it stands
 * (AWQ folds of earlier groups are exact in float, so later groups see the same inputs), AWQ for the
 * group, the INT4 symmetry choice, GPTQ, and the group's Hessians dropped before the next pass.
 */
async function prepareGrouped(
  model: Model,
  plan: Plan,
  table: CalibrationTable | undefined,
  rewriteOptions: ApplyPlanOptions,
  batches: () => AsyncIterable<Feeds> | Iterable<Feeds>,
  opts: RecoveryOptions,
  onProgress: (p: RecoveryProgress) => void,
  want: { wantBias: boolean; wantSymmetry: boolean; wantSplit: boolean },
): Promise<RecoveryResult> {
  const alg = opts.algorithm;
  const budget = opts.statsBytes ?? tensorDataBytes(model) / 2;
  const groups = statsGroups(model, budget);
  const notes: string[] = [];
  if (groups.length > 1) notes.push(`gptq: ${groups.length} statistics passes (E[xxᵀ] of at most ${(budget / 2 ** 20).toFixed(0)} MiB held at once)`);
  const folds: ChannelScalingFold[] = [];
  const stats = new Map<string, LayerInputStats>();
  const hooks: GptqHook[] = [];
  let current = model;
  let outPlan: Plan = { ...plan, defaults: { ...plan.defaults, algorithm: 'gptq' } };
  const engine = await openMatMulSession({ threads: opts.threads ?? 1 });
  let symmetric = 0;
  let asymmetric = 0;
  const done = new Set<string>();
  try {
    for (const [gi, group] of groups.entries()) {
      onProgress({ stage: 'layer-stats', done: gi, total: groups.length });
      let st: ReadonlyMap<string, LayerInputStats> = await collectLayerInputStats(current, batches(), { threads: opts.threads, layers: group });
      if (alg === 'awq+gptq') {
        onProgress({ stage: 'awq', done: gi, total: groups.length });
        const bits = plan.defaults.bits === 4 ? 4 : 8;
        const scalings = awqScalings(current, st, { bits, blockSize: plan.defaults.blockSize, symmetric: plan.defaults.symmetric ?? bits === 8 });
        // Layers of earlier groups have their GPTQ result: their weights are not folded into.
        const r = scaleInputChannels(current, scalings, { keepWeights: done });
        current = r.model;
        folds.push(...r.folds);
        st = scaledStats(st, scalings);
        for (const sc of scalings) {
          const f = r.folds.find((x) => x.activation === sc.activation)!;
          notes.push(`awq: ${sc.layers.join(', ')} input scaled (α ${sc.alpha}, β ${sc.beta}; layer error ${sc.errorBefore.toPrecision(3)} → ${sc.errorAfter.toPrecision(3)}), folded into ${foldText(f)}`);
        }
      }
      if (want.wantSymmetry) {
        const choices = chooseInt4Symmetry(current, st, { blockSize: plan.defaults.blockSize });
        const layers = { ...outPlan.layers };
        for (const c of choices) if (layers[c.layer]?.symmetric === undefined && (layers[c.layer]?.bits ?? plan.defaults.bits) === 4) layers[c.layer] = { ...(layers[c.layer] ?? { bits: 4 }), symmetric: c.symmetric };
        outPlan = { ...outPlan, layers };
        asymmetric += choices.filter((c) => !c.symmetric).length;
        symmetric += choices.filter((c) => c.symmetric).length;
      }
      const m = current;
      const p = outPlan;
      hooks.push(
        await prepareGptq(st, group, (layer, h) => void applyPlan(m, p, table, { ...rewriteOptions, includeNodes: [layer], weightQuantizer: h }), {
          actOrder: opts.actOrder ?? true,
          dampRel: opts.dampRel,
          engine: engine.matmul,
          releaseHessians: true,
          onProgress: (pr) => onProgress({ stage: 'gptq', ...pr }),
        }),
      );
      for (const [k, v] of st) stats.set(k, v);
      for (const l of group) done.add(l);
    }
  } finally {
    await engine.release();
  }
  if (alg === 'awq+gptq' && folds.length === 0) notes.push('awq: no layer measured a lower error with scaling; nothing changed');
  if (want.wantSymmetry) notes.push(`int4 blocks: ${symmetric} layers symmetric, ${asymmetric} asymmetric (lower measured layer error Σ Δᵀ E[xxᵀ] Δ)`);
  const out: ApplyPlanOptions = { ...rewriteOptions, weightQuantizer: mergeGptqHooks(hooks) as WeightQuantizer };
  const biasCorrection = await splitAndBias(current, outPlan, table, out, stats, batches, opts, onProgress, notes, want.wantSplit, want.wantBias);
  return { model: current, rewriteOptions: out, plan: outPlan, notes, folds, biasCorrection };
}

const foldText = (f: ChannelScalingFold) =>
  f.into === 'layernorm' ? `LayerNormalization ${f.node} γ/β` : f.into === 'decomposed-layernorm' ? `the decomposed LayerNorm's γ Mul / β Add (${f.node})` : f.into === 'matmul' ? `the output channels of ${f.node}` : `a Mul (${f.node})`;

/** Batches compared for the bias-correction decision (the first few of the calibration data). */
const DECISION_BATCHES = 2;

/** The first output of `model` on the first DECISION_BATCHES batches. */
async function firstOutputs(model: Model, batches: AsyncIterable<Feeds> | Iterable<Feeds>): Promise<Float32Array[]> {
  const s = await Session.open(model, { name: model.file });
  try {
    const out: Float32Array[] = [];
    for await (const f of batches) {
      if (out.length >= DECISION_BATCHES) break;
      const name = s.outputNames[0];
      out.push(toFloat32((await s.run(f, [name]))[name]));
    }
    return out;
  } finally {
    await s.release();
  }
}

/** Mean squared error of the quantized model's first output against `ref` (same batches, same order). */
async function outputMse(ref: readonly Float32Array[], quant: Model, batches: AsyncIterable<Feeds> | Iterable<Feeds>): Promise<number> {
  const y = await firstOutputs(quant, batches);
  let total = 0;
  let n = 0;
  ref.forEach((x, i) => {
    total += meanSquaredError(x, y[i]) * x.length;
    n += x.length;
  });
  return n > 0 ? total / n : 0;
}
