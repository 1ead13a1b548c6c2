import type { CalibrationTable, Plan } from '../documents/index.js';
import { UsageError } from '../errors.js';
import type { Model } from '../onnx/index.js';
import { meanSquaredError } from '../quant/index.js';
import { applyPlan, scaleInputChannels, type ApplyPlanOptions, type ChannelScalingFold, type WeightQuantizer } from '../rewrite/index.js';
import { openMatMulSession, Session, type Feeds } from '../runtime/index.js';
import { awqScalings, chooseInt4Symmetry, collectLayerInputStats, hessianLayers, prepareGptq, scaledStats, type LayerInputStats } from '../sensitivity/index.js';
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
}

export interface RecoveryProgress {
  stage: 'layer-stats' | 'awq' | 'gptq' | 'bias-correction';
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
}

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
  if (alg === 'rtn' && !wantBias && !wantSymmetry && !wantSplit) return { model, rewriteOptions, plan, notes: [], folds: [] };
  if (alg.startsWith('awq') && plan.mode === 'static') {
    throw new UsageError('E_OPTION_CONFLICT', `--algorithm ${alg} scales activations, so static ranges would have to be calibrated after it: use it with --mode weight-only or dynamic`);
  }
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
      notes.push(`awq: ${sc.layers.join(', ')} input scaled (α ${sc.alpha}, β ${sc.beta}; layer error ${sc.errorBefore.toPrecision(3)} → ${sc.errorAfter.toPrecision(3)}), folded into ${f.into === 'layernorm' ? `LayerNormalization ${f.node} γ/β` : `a Mul (${f.node})`}`);
    }
    if (scalings.length === 0) notes.push('awq: no layer measured a lower error with scaling; nothing changed');
  }
  const out: ApplyPlanOptions = { ...rewriteOptions };
  if (alg.endsWith('gptq')) {
    outPlan = { ...outPlan, defaults: { ...outPlan.defaults, algorithm: 'gptq' } };
    const engine = await openMatMulSession({ threads: opts.threads ?? 1 });
    try {
      const layers = [...stats.keys()];
      const hook = await prepareGptq(
        stats,
        layers,
        (layer, h) => void applyPlan(current, outPlan, table, { ...rewriteOptions, includeNodes: [layer], weightQuantizer: h }),
        { actOrder: opts.actOrder ?? true, dampRel: opts.dampRel, engine: engine.matmul, onProgress: (p) => onProgress({ stage: 'gptq', ...p }) },
      );
      out.weightQuantizer = hook as WeightQuantizer;
    } finally {
      await engine.release();
    }
  }
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
  let biasCorrection: RecoveryResult['biasCorrection'];
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
  return { model: current, rewriteOptions: out, plan: outPlan, notes, folds, biasCorrection };
}

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
