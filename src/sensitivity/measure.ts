import { InputError } from '../errors.js';
import {
  SensitivityOptionsSchema,
  type CandidateBits,
  type LayerBits,
  type LayerSensitivity,
  type SensitivityLoss,
  type SensitivityOptions,
  type SensitivityReport,
} from '../documents/index.js';
import { GraphIndex, quantizableLayers, tensorDataBytes, type Model } from '../onnx/index.js';
import {
  combineScores,
  crossEntropy,
  defaultWeightSpec,
  fakeQuantizeWeight,
  klDivergence,
  meanSquaredError,
  quantErrorSq,
  weightSizeBytes,
} from '../quant/index.js';
import { Session, modelSha256, type Feeds } from '../runtime/index.js';
import { makeTensor, toFloat32, type Tensor } from '../tensor/index.js';
import { hutchinsonTrace } from './hutchinson.js';
import { ActivationStats, layerwiseView, reconstructionError, type ActivationStatsResult, type LayerwiseView } from './layerwise.js';
import { tailModel, tailSlice, withCutOutputs, type TailSlice } from './tail.js';
import { weightsAsInputs, type WeightInputLayer } from './weight-inputs.js';

/** The fixed probe subset: batches of model feeds, and labels (one per output row, over all batches) for ce. */
export interface SensitivityData {
  batches: readonly Feeds[];
  labels?: ArrayLike<number | bigint>;
}

export interface SensitivityProgress {
  phase: 'reference' | 'hessian' | 'measured';
  done: number;
  total: number;
  layer?: string;
}

export interface SensitivityHooks {
  onProgress?: (e: SensitivityProgress) => void;
  /**
   * The real rewrite path for the measured terms: the loss (same L, same subset) of the rewritten
   * model for a per-layer assignment (layers not listed stay float). Without it, fake-quantized
   * weights go through the weights-as-inputs session (weight quantization only).
   */
  assignmentLoss?: (assignment: Readonly<Record<string, LayerBits>>) => Promise<number>;
  /**
   * The real rewrite path, returning outputs instead of a loss: the first output of the rewritten
   * model for each of `data.batches`, in order (layers not listed stay float). measureSensitivity then
   * applies its own L, so the measured terms use exactly the loss of the float reference. Takes
   * precedence over assignmentLoss.
   */
  assignmentOutputs?: (assignment: Readonly<Record<string, LayerBits>>) => Promise<readonly Float32Array[]>;
  /** Model identity for the report (default: the model's file and the sha256 of its bytes). */
  source?: { file: string; sha256: string };
}

/** Where the time went (not part of the report: timings are not deterministic). */
export interface SensitivityStats {
  ms: { reference: number; hessian: number; layerwise: number; measured: number; total: number };
  runs: { reference: number; hessian: number; measured: number };
}

/**
 * Per-layer sensitivity: Hutchinson Hessian trace (forward only), layer-wise reconstruction proxy from
 * the float reference pass, HAWQ-v2 Ω per bit width, measured single-layer and leave-one-out losses.
 */
export async function measureSensitivity(
  model: Model,
  data: SensitivityData,
  options: SensitivityOptions = {},
  hooks: SensitivityHooks = {},
): Promise<{ report: SensitivityReport; stats: SensitivityStats }> {
  const opts = SensitivityOptionsSchema.parse(options);
  const bits = [...new Set(opts.bits)].sort((a, b) => a - b) as CandidateBits[];
  const t0 = performance.now();
  const index = GraphIndex.of(model);
  const wim = weightsAsInputs(model, index, quantizableLayers(index), { activationOutputs: true });
  if (data.batches.length === 0) throw new InputError('E_DATA_EMPTY', 'sensitivity needs at least one calibration sample, got none', { file: model.file });
  const session = await Session.open(wim.model, { name: model.file });
  const runs = { reference: 0, hessian: 0, measured: 0 };
  const ms = { reference: 0, hessian: 0, layerwise: 0, measured: 0, total: 0 };
  const output = wim.outputs[0];
  try {
    const weightFeeds: Record<string, Tensor> = {};
    for (const l of wim.layers) weightFeeds[l.input] = makeTensor('float32', l.dims, l.w0);

    // Float reference pass: reference outputs and the layer-wise activation statistics.
    let tStart = performance.now();
    const totalSamples = data.batches.reduce((a, b) => a + batchSize(b), 0);
    const views = new Map<WeightInputLayer, LayerwiseView>();
    const actStats = new Map<WeightInputLayer, ActivationStats>();
    wim.layers.forEach((l, i) => {
      const view = l.activation ? layerwiseView(l.layer, l.dims) : undefined;
      if (!view) return;
      views.set(l, view);
      actStats.set(l, new ActivationStats(view, { maxRows: opts.covarianceRows, maxDim: opts.maxCovarianceDim, totalSamples, seed: opts.seed + 31 * i }));
    });
    const activationNames = [...new Set([...actStats.keys()].map((l) => l.activation!))];
    const refOutputs: Float32Array[] = [];
    let refDims: readonly number[] = [];
    for (const [bi, batch] of data.batches.entries()) {
      const out = await session.run({ ...batch, ...weightFeeds }, [output, ...activationNames]);
      runs.reference++;
      refOutputs.push(toFloat32(out[output]));
      refDims = out[output].dims;
      const tl = performance.now();
      for (const [l, s] of actStats) s.update(out[l.activation!]);
      ms.layerwise += performance.now() - tl;
      hooks.onProgress?.({ phase: 'reference', done: bi + 1, total: data.batches.length });
    }
    ms.reference = performance.now() - tStart - ms.layerwise;
    const classes = refDims.length > 0 ? refDims[refDims.length - 1] : 1;
    const loss: SensitivityLoss = opts.loss ?? (data.labels ? 'ce' : refDims.length === 2 && classes > 1 ? 'kl' : 'mse');
    if (loss === 'ce') checkLabels(data.labels, refOutputs, classes, model.file);
    const labelOffsets: number[] = [];
    {
      let off = 0;
      for (const r of refOutputs) {
        labelOffsets.push(off);
        off += r.length / classes;
      }
    }
    const lossOfOutputs = (bi: number, y: Float32Array): number => {
      if (loss === 'kl') return klDivergence(refOutputs[bi], y, classes);
      if (loss === 'mse') return meanSquaredError(refOutputs[bi], y);
      const rows = y.length / classes;
      const labels = Array.from({ length: rows }, (_, r) => Number(data.labels![labelOffsets[bi] + r]));
      return crossEntropy(y, labels, classes);
    };
    const weights = refOutputs.map((r) => r.length);
    const totalWeight = weights.reduce((a, b) => a + b, 0);
    let baseLoss = 0;
    refOutputs.forEach((r, bi) => (baseLoss += (lossOfOutputs(bi, r) * weights[bi]) / totalWeight));

    /** L with some weights replaced (one run per batch). */
    const lossWith = async (overrides: ReadonlyMap<string, Float32Array>, purpose: 'hessian' | 'measured'): Promise<number> => {
      const feeds: Record<string, Tensor> = { ...weightFeeds };
      for (const [name, w] of overrides) feeds[name] = makeTensor('float32', weightFeeds[name].dims, w);
      let total = 0;
      for (const [bi, batch] of data.batches.entries()) {
        const out = await session.run({ ...batch, ...feeds }, [output]);
        runs[purpose]++;
        total += (lossOfOutputs(bi, toFloat32(out[output])) * weights[bi]) / totalWeight;
      }
      return total;
    };

    /**
     * The loss with one layer's weight replaced, running only the part of the graph downstream of that
     * weight (tail.ts): the upstream tensors it reads are fetched once (one full run per batch), then
     * every probe runs the tail alone. Returns the tail's own L(W₀) too, so each second difference
     * compares runs of the same graph. undefined when the output does not depend on the weight or
     * QTOOL_HESSIAN_TAIL=0 (full-model probes, for benchmarks).
     */
    const slices = new Map<WeightInputLayer, TailSlice>();
    if (process.env.QTOOL_HESSIAN_TAIL !== '0') {
      for (const l of wim.layers) {
        const slice = tailSlice(wim.model, l.input, output);
        if (slice) slices.set(l, slice);
      }
    }
    // One session outputs every layer's cut tensors; each layer's run fetches only its own.
    const allCuts = [...new Set([...slices.values()].flatMap((s) => s.cut))];
    const cutSession = allCuts.length > 0 ? await Session.open(withCutOutputs(wim.model, allCuts), { name: model.file }) : undefined;
    const tailLoss = async (l: WeightInputLayer): Promise<{ loss: (w: Float32Array) => Promise<number>; base: number; release: () => Promise<void> } | undefined> => {
      const slice = slices.get(l);
      if (!slice) return undefined;
      const cutValues: Record<string, Tensor>[] = [];
      const cutTypes = new Map<string, Tensor['dtype']>();
      for (const batch of data.batches) {
        const out = slice.cut.length > 0 ? await cutSession!.run({ ...batch, ...weightFeeds }, slice.cut) : {};
        if (slice.cut.length > 0) runs.hessian++;
        for (const [k, v] of Object.entries(out)) cutTypes.set(k, v.dtype);
        cutValues.push(out);
      }
      // The other layers' weights are constants of the tail (QTOOL_HESSIAN_TAIL=inputs keeps them inputs).
      const fixed = new Map<string, Tensor>();
      if (process.env.QTOOL_HESSIAN_TAIL !== 'inputs') for (const g of slice.graphInputs) if (g !== l.input && weightFeeds[g] && !data.batches.some((b) => b[g])) fixed.set(g, weightFeeds[g]);
      const tail = await Session.open(tailModel(wim.model, slice, output, cutTypes, fixed), { name: model.file });
      const loss = async (w: Float32Array): Promise<number> => {
        let total = 0;
        for (const [bi, batch] of data.batches.entries()) {
          const feeds: Record<string, Tensor> = { ...cutValues[bi] };
          for (const g of slice.graphInputs) if (!fixed.has(g)) feeds[g] = g === l.input ? makeTensor('float32', l.dims, w) : (batch[g] ?? weightFeeds[g]);
          const out = await tail.run(feeds, [output]);
          runs.hessian++;
          total += (lossOfOutputs(bi, toFloat32(out[output])) * weights[bi]) / totalWeight;
        }
        return total;
      };
      return { loss, base: await loss(l.w0), release: () => tail.release() };
    };

    // (a) Hessian trace per layer.
    tStart = performance.now();
    const hessians: Awaited<ReturnType<typeof hutchinsonTrace>>[] = [];
    for (const [i, l] of wim.layers.entries()) {
      hooks.onProgress?.({ phase: 'hessian', done: i, total: wim.layers.length, layer: l.layer.id });
      const tail = await tailLoss(l);
      const h = await hutchinsonTrace({
        w0: l.w0,
        baseLoss: tail?.base ?? baseLoss,
        loss: tail?.loss ?? ((w) => lossWith(new Map([[l.input, w]]), 'hessian')),
        seed: opts.seed + 7919 * (i + 1),
        maxProbes: opts.probes,
        minProbes: Math.min(opts.minProbes, opts.probes),
        relStderr: opts.relStderr,
        epsilonRel: opts.epsilonRel,
        stabilityProbes: Math.min(opts.stabilityProbes, opts.probes),
      }).finally(() => tail?.release());
      hessians.push(h);
    }
    await cutSession?.release();
    hooks.onProgress?.({ phase: 'hessian', done: wim.layers.length, total: wim.layers.length });
    ms.hessian = performance.now() - tStart;

    // (b) layer-wise proxy, (c) Ω, quantized weights per bit width.
    tStart = performance.now();
    const statsOf = new Map<WeightInputLayer, ActivationStatsResult>();
    for (const [l, s] of actStats) statsOf.set(l, s.result());
    const quantized = wim.layers.map((l) => new Map(bits.map((b) => [b, fakeQuantizeWeight(l.w0, l.dims, defaultWeightSpec(l.axes, b, opts.blockSize, l.dims))] as const)));
    ms.layerwise += performance.now() - tStart;

    // (d) measured single-layer and leave-one-out losses.
    tStart = performance.now();
    const measuredPath = hooks.assignmentOutputs || hooks.assignmentLoss ? 'rewrite' : 'weights';
    const low = bits[0];
    const high = bits[bits.length - 1];
    const singleRuns = wim.layers.length * bits.length + (opts.leaveOneOut && bits.length > 1 ? wim.layers.length + 1 : 0);
    let doneRuns = 0;
    const measure = async (assign: ReadonlyMap<number, CandidateBits>): Promise<number> => {
      hooks.onProgress?.({ phase: 'measured', done: doneRuns, total: singleRuns });
      doneRuns++;
      if (hooks.assignmentOutputs || hooks.assignmentLoss) {
        const a: Record<string, LayerBits> = {};
        for (const [i, b] of assign) a[wim.layers[i].layer.id] = b;
        if (hooks.assignmentOutputs) {
          const outs = await hooks.assignmentOutputs(a);
          runs.measured += data.batches.length;
          let total = 0;
          outs.forEach((y, bi) => (total += (lossOfOutputs(bi, y) * weights[bi]) / totalWeight));
          return total;
        }
        const v = await hooks.assignmentLoss!(a);
        runs.measured += data.batches.length;
        return v;
      }
      const overrides = new Map<string, Float32Array>();
      for (const [i, b] of assign) overrides.set(wim.layers[i].input, quantized[i].get(b)!);
      return lossWith(overrides, 'measured');
    };
    const measured: Map<CandidateBits, number>[] = [];
    for (let i = 0; i < wim.layers.length; i++) {
      const perBits = new Map<CandidateBits, number>();
      for (const b of bits) perBits.set(b, await measure(new Map([[i, b]])));
      measured.push(perBits);
    }
    let allLowLoss: number | null = null;
    const loo: ({ loss: number; recovered: number } | null)[] = wim.layers.map(() => null);
    if (opts.leaveOneOut && bits.length > 1) {
      const allLow = new Map(wim.layers.map((_, i) => [i, low] as const));
      allLowLoss = await measure(allLow);
      for (let i = 0; i < wim.layers.length; i++) {
        const v = await measure(new Map([...allLow, [i, high]]));
        loo[i] = { loss: v, recovered: allLowLoss - v };
      }
    }
    hooks.onProgress?.({ phase: 'measured', done: singleRuns, total: singleRuns });
    ms.measured = performance.now() - tStart;

    const layers: LayerSensitivity[] = wim.layers.map((l, i) => {
      const n = l.w0.length;
      const h = hessians[i];
      const stats = statsOf.get(l);
      const view = views.get(l);
      const { runs: _r, ...hessian } = h;
      return {
        id: l.layer.id,
        opType: l.layer.opType,
        weight: l.input,
        weightDims: [...l.dims],
        parameters: n,
        floatBytes: 4 * n,
        hessian,
        layerwise: stats ? { traceH: stats.traceH, rows: stats.rows, covarianceRows: stats.covarianceRows, covariance: stats.covariance } : null,
        bits: bits.map((b) => {
          const wq = quantized[i].get(b)!;
          const qe = quantErrorSq(l.w0, wq);
          return {
            bits: b,
            quantErrorSq: qe,
            omega: (0.5 * h.trace * qe) / n,
            reconstructionError: stats && view ? reconstructionError(view, stats, l.w0, wq) : null,
            measuredLoss: measured[i].get(b)! - baseLoss,
            sizeBytes: weightSizeBytes(l.dims, b, l.axes, opts.blockSize),
          };
        }),
        leaveOneOut: loo[i],
        score: 0,
      };
    });
    const lowEntry = (l: LayerSensitivity) => l.bits.find((e) => e.bits === low)!;
    const scores = combineScores([
      layers.map((l) => lowEntry(l).omega),
      layers.map((l) => lowEntry(l).measuredLoss),
      ...(allLowLoss !== null ? [layers.map((l) => l.leaveOneOut?.recovered ?? 0)] : []),
    ]);
    layers.forEach((l, i) => (l.score = scores[i]));
    const layerBytes = layers.reduce((a, l) => a + l.floatBytes, 0);
    ms.total = performance.now() - t0;
    const report: SensitivityReport = {
      kind: 'qtool.sensitivity',
      version: 1,
      model: hooks.source ?? { file: model.file, sha256: modelSha256(model) },
      loss,
      output,
      measuredPath,
      settings: {
        bits,
        probes: opts.probes,
        minProbes: opts.minProbes,
        relStderr: opts.relStderr,
        epsilonRel: opts.epsilonRel,
        stabilityProbes: opts.stabilityProbes,
        samples: totalSamples,
        covarianceRows: opts.covarianceRows,
        seed: opts.seed,
        blockSize: opts.blockSize,
      },
      baseLoss,
      allLowLoss: allLowLoss === null ? null : allLowLoss - baseLoss,
      otherBytes: Math.max(0, tensorDataBytes(model) - layerBytes),
      layers,
      runs: { ...runs },
    };
    return { report, stats: { ms, runs: { ...runs } } };
  } finally {
    await session.release();
  }
}

function batchSize(feeds: Feeds): number {
  const first = Object.values(feeds)[0];
  return first && first.dims.length > 0 ? first.dims[0] : 1;
}

function checkLabels(labels: ArrayLike<number | bigint> | undefined, outputs: readonly Float32Array[], classes: number, file: string): void {
  const rows = outputs.reduce((a, o) => a + o.length / classes, 0);
  if (!labels) throw new InputError('E_LABELS', 'loss ce: expected --labels, got none', { file });
  if (labels.length < rows) throw new InputError('E_LABELS', `labels: expected ${rows} labels (one per output row), got ${labels.length}`, { file });
  for (let i = 0; i < rows; i++) {
    const y = Number(labels[i]);
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw new InputError('E_LABELS', `labels[${i}]: expected a class in 0..${classes - 1}, got ${y}`, { file });
  }
}
