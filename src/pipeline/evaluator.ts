import type { CalibrationTable, EvalResult, LayerBits, Plan, SearchMetric } from '../documents/index.js';
import { UsageError } from '../errors.js';
import type { LoadedData } from './load-data.js';
import { GraphIndex, quantizableLayers, type Model } from '../onnx/index.js';
import { FidelityAccumulator, defaultWeightSpec, fakeQuantizeWeight, perplexity, topKHits } from '../quant/index.js';
import { applyPlan, type ApplyPlanOptions } from '../rewrite/index.js';
import { Session, modelBytesForRuntime, type Feeds } from '../runtime/index.js';
import { weightsAsInputs } from '../sensitivity/index.js';
import { makeTensor, toFloat32, type Tensor } from '../tensor/index.js';

export interface EvaluatorOptions {
  metric: SearchMetric;
  /**
   * 'weights': fake-quantized weights fed through one weights-as-inputs session (weight quantization
   * only; the same layouts as the rewriter, see defaultWeightSpec); 'rewrite': applyPlan + a new
   * onnxruntime session per plan (the real quantized model, its kernels and its size).
   */
  path: 'weights' | 'rewrite';
  table?: CalibrationTable;
  blockSize?: number;
  /** Rewrite options of every evaluated plan ('rewrite' path), as `qtool quantize` applies them. */
  rewrite?: ApplyPlanOptions;
  /** The model's GraphIndex (ModelContext.index), shared with every applyPlan of the 'rewrite' path. */
  index?: GraphIndex;
}

export interface Evaluator {
  evaluate: (plan: Plan) => Promise<EvalResult>;
  /** onnxruntime runs made so far and the milliseconds spent in evaluate. */
  runs: () => number;
  ms: () => number;
  close: () => Promise<void>;
}

/** Build evaluate(plan) for the search (and the real-rewrite path of sensitivity). */
export async function makeEvaluator(model: Model, data: LoadedData, opts: EvaluatorOptions): Promise<Evaluator> {
  if ((opts.metric === 'accuracy' || opts.metric === 'perplexity') && !data.labels) {
    throw new UsageError('E_FLAG', `--metric ${opts.metric}: expected --eval-labels, got none`);
  }
  let runs = 0;
  let ms = 0;
  // 'weights': one weights-as-inputs session for the reference and every plan; 'rewrite': the float
  // model itself gives the reference outputs, each plan gets its own session.
  const index = opts.index ?? GraphIndex.of(model);
  const wim = opts.path === 'weights' ? weightsAsInputs(model, index, quantizableLayers(index)) : undefined;
  const weightSession = await Session.open(wim ? wim.model : model, { name: model.file });
  const output = wim ? wim.outputs[0] : model.proto.graph!.output[0].name;
  const floatFeeds: Record<string, Tensor> = {};
  for (const l of wim?.layers ?? []) floatFeeds[l.input] = makeTensor('float32', l.dims, l.w0);
  const runAll = async (session: Session, extra: Record<string, Tensor>): Promise<Float32Array[]> => {
    const outs: Float32Array[] = [];
    for (const b of data.batches) {
      const r = await session.run({ ...b, ...extra }, [output]);
      runs++;
      outs.push(toFloat32(r[output]));
    }
    return outs;
  };
  const reference = await runAll(weightSession, floatFeeds);
  const score = (outs: Float32Array[], classes: number): number => {
    switch (opts.metric) {
      case 'accuracy': {
        let hits = 0;
        let rows = 0;
        let off = 0;
        for (const o of outs) {
          const n = o.length / classes;
          hits += topKHits(o, Array.from({ length: n }, (_, r) => Number(data.labels![off + r])), classes, 1);
          rows += n;
          off += n;
        }
        return hits / rows;
      }
      case 'perplexity': {
        let nll = 0;
        let tokens = 0;
        let off = 0;
        for (const o of outs) {
          const n = o.length / classes;
          const p = perplexity(o, Array.from({ length: n }, (_, r) => Number(data.labels![off + r])), classes);
          nll += p.nll * p.tokens;
          tokens += p.tokens;
          off += n;
        }
        return Math.exp(nll / Math.max(1, tokens));
      }
      default: {
        const acc = new FidelityAccumulator();
        outs.forEach((o, i) => acc.update(reference[i], o, classes));
        const f = acc.result();
        if (opts.metric === 'agreement') return f.top1Agreement ?? 0;
        if (opts.metric === 'cosine') return f.cosine;
        return Number.isFinite(f.sqnrDb) ? f.sqnrDb : 1e9;
      }
    }
  };
  const probe = await weightSession.run({ ...data.batches[0], ...floatFeeds }, [output]);
  runs++;
  const classes = probe[output].dims[probe[output].dims.length - 1] ?? 1;
  const blockSize = opts.blockSize ?? 32;
  const bitsOf = (plan: Plan, id: string): LayerBits => (plan.layers[id] ?? plan.defaults).bits;

  const evaluate = async (plan: Plan): Promise<EvalResult> => {
    const t0 = performance.now();
    try {
      if (opts.path === 'rewrite') {
        const r = await rewriteOutputs(model, plan, opts.table, data.batches, output, { ...opts.rewrite, index });
        runs += data.batches.length;
        return { value: score(r.outputs, classes), sizeBytes: r.sizeBytes };
      }
      const feeds: Record<string, Tensor> = { ...floatFeeds };
      for (const l of wim!.layers) {
        const b = bitsOf(plan, l.layer.id);
        if (b === 'float') continue;
        const bs = plan.layers[l.layer.id]?.blockSize ?? plan.defaults.blockSize ?? blockSize;
        feeds[l.input] = makeTensor('float32', l.dims, fakeQuantizeWeight(l.w0, l.dims, defaultWeightSpec(l.axes, b, bs, l.dims)));
      }
      return { value: score(await runAll(weightSession, feeds), classes) };
    } finally {
      ms += performance.now() - t0;
    }
  };
  return { evaluate, runs: () => runs, ms: () => ms, close: () => weightSession.release() };
}


/**
 * The real quantized model of a plan (applyPlan, then a fresh onnxruntime session) run on `batches`:
 * the `output` tensor of each batch, and the serialized model's size. Static plans need `table`.
 */
export async function rewriteOutputs(model: Model, plan: Plan, table: CalibrationTable | undefined, batches: readonly Feeds[], output: string, rewrite: ApplyPlanOptions = {}): Promise<{ outputs: Float32Array[]; sizeBytes: number }> {
  const bytes = modelBytesForRuntime(applyPlan(model, plan, table, rewrite).model);
  const s = await Session.open(bytes, { name: `${model.file} (quantized)` });
  try {
    const outputs: Float32Array[] = [];
    for (const b of batches) outputs.push(toFloat32((await s.run(b, [output]))[output]));
    return { outputs, sizeBytes: bytes.length };
  } finally {
    await s.release();
  }
}

/** Float weight bytes above which `evaluator: 'auto'` uses fake-quantized weights instead of a rewrite per plan. */
export const REWRITE_EVALUATOR_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The evaluator `'auto'` picks: the real rewrite (what the search writes is what it measured) unless
 * the plan mode is static without a calibration table, or the model's float weights exceed
 * REWRITE_EVALUATOR_MAX_BYTES (then applyPlan and a session load per evaluation cost seconds each).
 * On fmnist the two agree within 1 sample in 2000 and cost the same (README: search evaluator).
 */
export function autoEvaluatorPath(model: Model, mode: Plan['mode'], table: CalibrationTable | undefined): 'weights' | 'rewrite' {
  if (mode === 'static' && !table) return 'weights';
  const layers = quantizableLayers(GraphIndex.of(model));
  const bytes = layers.reduce((a, l) => a + 4 * l.weightDims.reduce((x, y) => x * y, 1), 0);
  return bytes <= REWRITE_EVALUATOR_MAX_BYTES ? 'rewrite' : 'weights';
}
