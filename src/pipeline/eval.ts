import { openDataset, resolveLabels } from '../data/index.js';
import { readOptionsOf, sourceName } from './data-read.js';
import {
  EvalOptionsSchema,
  flattenIssues,
  type EvalGate,
  type EvalMetric,
  type EvalOptions,
  type EvalReport,
  type EvalSettings,
  type FidelitySummary,
} from '../documents/index.js';
import { GateError, InputError, UsageError } from '../errors.js';
import { loadModel, type Model } from '../onnx/index.js';
import { FidelityAccumulator, metricDrop, perplexity as perplexityOf, topKHits, type Fidelity } from '../quant/index.js';
import { Session, type Feeds } from '../runtime/index.js';
import { toFloat32, type Tensor } from '../tensor/index.js';

export interface EvalCallbacks {
  /** Samples evaluated so far. */
  onProgress?: (event: { done: number; total: number | undefined }) => void;
}

/** Running top-1/top-5 hits or perplexity of one model's logits. */
class LabelScore {
  top1 = 0;
  top5 = 0;
  rows = 0;
  nllSum = 0;
  tokens = 0;

  update(logits: Tensor, labels: ArrayLike<number | bigint>, isLm: boolean, file: string): void {
    const classes = logits.dims[logits.dims.length - 1] ?? 1;
    const x = toFloat32(logits);
    checkLabels(labels, x.length / classes, classes, isLm, logits.dims, file);
    if (isLm) {
      const p = perplexityOf(x, labels, classes);
      this.nllSum += p.nll * p.tokens;
      this.tokens += p.tokens;
      return;
    }
    this.top1 += topKHits(x, labels, classes, 1);
    this.top5 += topKHits(x, labels, classes, Math.min(5, classes));
    this.rows += x.length / classes;
  }

  accuracy(): EvalReport['accuracy'] {
    return this.rows > 0 ? { top1: this.top1 / this.rows, top5: this.top5 / this.rows, samples: this.rows } : undefined;
  }

  perplexity(): EvalReport['perplexity'] {
    if (this.tokens === 0) return undefined;
    const nll = this.nllSum / this.tokens;
    return { perplexity: Math.exp(nll), nll, tokens: this.tokens };
  }
}

/** One label per logits row, each a class id in [0, classes) (negative ids are ignored tokens for perplexity). */
function checkLabels(labels: ArrayLike<number | bigint>, rows: number, classes: number, isLm: boolean, dims: readonly number[], file: string): void {
  if (labels.length !== rows) {
    throw new InputError('E_LABELS', `labels: expected one label per row of the output [${dims.join(', ')}] (${isLm ? 'next-token ids [N, tokens]' : 'class ids [N]'}), got ${labels.length} for ${rows} rows`, { file });
  }
  for (let i = 0; i < labels.length; i++) {
    const y = Number(labels[i]);
    if (y >= classes || (y < 0 && !isLm)) throw new InputError('E_LABELS', `labels: expected class ids in 0..${classes - 1} (the output has ${classes} classes), got ${y}`, { file });
  }
}

function summarize(f: Fidelity): FidelitySummary {
  const identical = !Number.isFinite(f.sqnrDb) && f.maxAbsError === 0;
  return {
    cosine: identical ? 1 : f.cosine,
    sqnrDb: Number.isFinite(f.sqnrDb) ? f.sqnrDb : null,
    maxAbsError: f.maxAbsError,
    mse: f.mse,
    top1Agreement: f.top1Agreement,
    elements: f.elements,
  };
}

function labelValues(t: Tensor): ArrayLike<number | bigint> {
  return t.data as ArrayLike<number | bigint>;
}

function metricValue(metric: EvalMetric, acc: EvalReport['accuracy'], ppl: EvalReport['perplexity'], fid: FidelitySummary | undefined): number | undefined {
  switch (metric) {
    case 'accuracy':
      return acc?.top1;
    case 'top5':
      return acc?.top5;
    case 'perplexity':
      return ppl?.perplexity;
    case 'fidelity':
      return fid?.cosine;
  }
}

/**
 * Gate a metric: `failUnder` fails when the value is worse than it (below; above for perplexity);
 * `maxDrop` fails when the drop against the reference exceeds it: absolute percentage points for
 * accuracy/top5, percent relative for perplexity and fidelity (cosine against a perfect 1).
 */
export function evalGate(metric: EvalMetric, value: number, referenceValue: number | undefined, s: Pick<EvalSettings, 'failUnder' | 'maxDrop'>): EvalGate {
  const lowerIsBetter = metric === 'perplexity';
  const reasons: string[] = [];
  if (s.failUnder !== undefined && (lowerIsBetter ? value > s.failUnder : value < s.failUnder)) {
    reasons.push(`${metric} ${value.toFixed(4)} is ${lowerIsBetter ? 'above' : 'below'} --fail-under ${s.failUnder}`);
  }
  let drop: number | undefined;
  if (s.maxDrop !== undefined && referenceValue !== undefined) {
    drop = metricDrop(referenceValue, value, metric === 'accuracy' || metric === 'top5' ? 'points' : 'percent', lowerIsBetter);
    if (drop > s.maxDrop) {
      const unit = metric === 'accuracy' || metric === 'top5' ? ' points' : '%';
      reasons.push(`${metric} dropped ${drop.toFixed(2)}${unit} against the reference, more than --max-drop ${s.maxDrop}${unit}`);
    }
  }
  return { metric, value, failUnder: s.failUnder, maxDrop: s.maxDrop, referenceValue, drop, passed: reasons.length === 0, reason: reasons.length ? reasons.join('; ') : undefined };
}

/** E_FAIL_UNDER when the value is past --fail-under, else E_MAX_DROP (the drop was too large). */
export function evalGateCode(gate: EvalGate): 'E_FAIL_UNDER' | 'E_MAX_DROP' {
  return gate.reason?.includes('--fail-under') ? 'E_FAIL_UNDER' : 'E_MAX_DROP';
}

/** The GateError to raise after the report was shown/written, when its gate failed. */
export function evalGateError(report: EvalReport): GateError | undefined {
  if (!report.gate || report.gate.passed) return undefined;
  return new GateError(evalGateCode(report.gate), report.gate.reason ?? 'the evaluation gate failed', { file: report.model });
}

/**
 * Evaluate a model on data: top-1/top-5 accuracy with labels, perplexity for language models (logits
 * [batch, tokens, vocab], labels = next-token ids, negative ids ignored), and fidelity of every output
 * against a reference model (cosine, SQNR dB, max abs error, top-1 agreement). With failUnder/maxDrop
 * the report carries a gate; evalGateError(report) gives the error to raise when it failed.
 */
export async function evaluate(modelSource: string | Model, options: EvalOptions, callbacks: EvalCallbacks = {}): Promise<EvalReport> {
  const parsed = EvalOptionsSchema.safeParse(options);
  if (!parsed.success) throw new UsageError('E_OPTION', `eval options: ${flattenIssues(parsed.error)}`);
  const s = parsed.data;
  if (s.metric === 'fidelity' && !s.reference) throw new UsageError('E_FLAG', '--metric fidelity: expected --reference, got none');
  if (s.maxDrop !== undefined && !s.reference) throw new UsageError('E_FLAG', '--max-drop: expected --reference (the baseline to drop from), got none');

  const model = typeof modelSource === 'string' ? loadModel(modelSource) : modelSource;
  const refModel = s.reference ? loadModel(s.reference) : undefined;
  const dataset = await openDataset(s.data, model, { ...readOptionsOf(s), maxSamples: s.maxSamples });
  const total = dataset.sampleCount;
  // Labels: a file (.npy/.csv), in memory, or the data's own (image class folders, text "label").
  const labels: Tensor | undefined = await resolveLabels(s.labels, dataset);
  const labelsName = typeof s.labels === 'string' ? s.labels : s.labels !== undefined ? 'labels (in memory)' : labels ? `labels of ${sourceName(s.data, dataset)}` : undefined;
  if (!labels && !s.reference) throw new UsageError('E_FLAG', 'eval: expected --labels and/or --reference, got neither (nothing to measure against)');
  if ((s.metric === 'accuracy' || s.metric === 'top5' || s.metric === 'perplexity') && !labels) throw new UsageError('E_FLAG', `--metric ${s.metric}: expected --labels, got none`);
  if (labels && total !== undefined) {
    const n = labels.dims[0] ?? 0;
    if (n < total) throw new InputError('E_DATA_SHAPE', `expected labels for ${total} samples, got ${n}`, { file: labelsName });
    if (n > total && s.maxSamples === undefined) throw new InputError('E_DATA_SHAPE', `expected labels for ${total} samples (as the data holds), got ${n}`, { file: labelsName });
  }
  const perSample = labels ? labels.data.length / labels.dims[0] : 0;
  const isLm = labels !== undefined && labels.dims.length >= 2;
  const metric: EvalMetric = s.metric ?? (labels ? (isLm ? 'perplexity' : 'accuracy') : 'fidelity');
  if (isLm && (metric === 'accuracy' || metric === 'top5')) throw new UsageError('E_FLAG', `--metric ${metric}: the labels ${labelsName} are per token (rank ${labels!.dims.length}); use --metric perplexity`);

  const session = await Session.open(model, { threads: s.threads, name: model.file });
  const refSession = refModel ? await Session.open(refModel, { threads: s.threads, name: refModel.file }) : undefined;
  try {
    if (refSession) {
      const missing = session.inputNames.filter((n) => !refSession.inputNames.includes(n));
      const extra = refSession.inputNames.filter((n) => !session.inputNames.includes(n));
      if (missing.length || extra.length) {
        throw new InputError('E_REFERENCE', `reference: expected the inputs of ${model.file} (${session.inputNames.join(', ')}), got ${refSession.inputNames.join(', ')}`, { file: refModel!.file });
      }
    }
    const outputName = s.outputName ?? session.outputNames[0];
    if (!session.outputNames.includes(outputName)) throw new UsageError('E_FLAG', `--output-name ${outputName}: expected one of ${session.outputNames.join(', ')}`);
    const score = new LabelScore();
    const refScore = new LabelScore();
    const overall = new FidelityAccumulator();
    const perOutput = new Map<string, FidelityAccumulator>();
    let done = 0;
    for await (const feeds of dataset.batches(s.batchSize) as AsyncIterable<Feeds>) {
      const n = dataset.samplesIn(feeds);
      const out = await session.run(feeds);
      const batchLabels = labels ? (labels.data as unknown as { subarray(a: number, b: number): ArrayLike<number | bigint> }).subarray(done * perSample, (done + n) * perSample) : undefined;
      if (batchLabels) score.update(out[outputName], batchLabels, isLm, labelsName!);
      if (refSession) {
        const ref = await refSession.run(feeds);
        if (batchLabels && ref[outputName]) refScore.update(ref[outputName], batchLabels, isLm, labelsName!);
        for (const name of session.outputNames) {
          if (!ref[name]) continue;
          const a = toFloat32(ref[name]);
          const b = toFloat32(out[name]);
          if (a.length !== b.length) throw new InputError('E_FEED_SHAPE', `output "${name}" has ${b.length} values, the reference's has ${a.length}`, { file: model.file });
          const classes = ref[name].dims.length >= 2 ? ref[name].dims[ref[name].dims.length - 1] : undefined;
          let acc = perOutput.get(name);
          if (!acc) perOutput.set(name, (acc = new FidelityAccumulator()));
          acc.update(a, b, classes);
          overall.update(a, b, name === outputName ? classes : undefined);
        }
      }
      done += n;
      callbacks.onProgress?.({ done, total });
    }
    if (refSession && perOutput.size === 0) throw new InputError('E_FEED_SHAPE', `the reference shares no output name with the model (model: ${session.outputNames.join(', ')})`, { file: s.reference });

    const accuracy = labels && !isLm ? score.accuracy() : undefined;
    const ppl = labels && isLm ? score.perplexity() : undefined;
    const fidelity = refSession ? summarize(overall.result()) : undefined;
    const reference: EvalReport['reference'] = refSession
      ? {
          model: refModel!.file,
          accuracy: labels && !isLm ? refScore.accuracy() : undefined,
          perplexity: labels && isLm ? refScore.perplexity() : undefined,
          fidelity: fidelity!,
          outputs: [...perOutput].map(([name, acc]) => ({ name, ...summarize(acc.result()) })),
        }
      : undefined;
    const value = metricValue(metric, accuracy, ppl, fidelity);
    if (value === undefined) throw new UsageError('E_FLAG', `--metric ${metric}: the model's outputs and labels do not give this metric`);
    const refValue = reference ? (metric === 'fidelity' ? 1 : metricValue(metric, reference.accuracy, reference.perplexity, undefined)) : undefined;
    const gate = s.failUnder !== undefined || s.maxDrop !== undefined ? evalGate(metric, value, refValue, s) : undefined;
    return {
      kind: 'qtool.eval',
      version: 1,
      model: model.file,
      data: sourceName(s.data, dataset),
      labels: labelsName,
      samples: done,
      metric,
      value,
      accuracy,
      perplexity: ppl,
      reference,
      gate,
    };
  } finally {
    await session.release();
    await refSession?.release();
  }
}
