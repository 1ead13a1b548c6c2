/**
 * Verification shared by the commands that write a quantized model: open it in onnxruntime with all
 * optimizations (a model it cannot load is never written) and count the fused kernels it will run;
 * compare float and quantized outputs on data (fidelity).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openDataset, type FeedSource, type OpenDatasetOptions } from '../data/index.js';
import { loadData } from './load-data.js';
import type { CalibrationTable, Plan, QuantizeSummary } from '../documents/index.js';
import type { ApplyPlanOptions } from '../rewrite/index.js';
import { rewriteOutputs } from './evaluator.js';
import { makeOwnTempDir, removeOwnTempDir } from '../files.js';
import { loadModel, walkGraphs, type Model } from '../onnx/index.js';
import { FidelityAccumulator, OutputCoverage, sequenceAgreement } from '../quant/index.js';
import { Session, type Feeds } from '../runtime/index.js';
import { toFloat32 } from '../tensor/index.js';

/**
 * Open the quantized model in onnxruntime with all optimizations and return the op counts of the
 * graph it will run (fused integer kernels). Throws OrtError when onnxruntime refuses the model.
 */
export async function optimizedOpCounts(model: Model, name: string, accuracyLevel = 4): Promise<Record<string, number>> {
  // pid-named and registered: Ctrl-C removes it, and a later run sweeps it if this process was killed.
  const dir = makeOwnTempDir('opt');
  try {
    const optimizedModelFilePath = path.join(dir, 'optimized.onnx');
    const s = await Session.open(model, { name, optimizedModelFilePath, config: { 'session.qdq_matmulnbits_accuracy_level': String(accuracyLevel) } });
    await s.release();
    const counts: Record<string, number> = {};
    if (fs.existsSync(optimizedModelFilePath)) {
      const opt = loadModel(optimizedModelFilePath, { checkExternalData: false });
      for (const g of walkGraphs(opt.proto.graph!)) for (const n of g.node) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
    }
    const sorted: Record<string, number> = {};
    for (const k of Object.keys(counts).sort()) sorted[k] = counts[k];
    return sorted;
  } finally {
    removeOwnTempDir(dir);
  }
}

/** The fused integer kernels among optimizedOpCounts (QLinear*, QGemm, MatMulNBits, …), in count order of the input. */
export function fusedKernels(optimizedOps: Readonly<Record<string, number>>): [op: string, count: number][] {
  return Object.entries(optimizedOps).filter(([op]) => /^QLinear|^QGemm|MatMulNBits|DynamicQuantize|MatMulIntegerToFloat/.test(op));
}

/** Run float and quantized models on the first `samples` samples and compare every output. */
export interface FidelityCheck {
  fidelity: NonNullable<QuantizeSummary['fidelity']>;
  /** Calibration coverage of the float model's outputs on the same samples (quant/OutputCoverage). */
  coverage: string[];
}

/**
 * Float vs quantized on up to `samples` samples of `data`, from sample `from` on (the held-out part
 * after the calibration samples; `from` 0 re-uses calibration samples and says so): per output
 * cosine, SQNR, max |error|, top-1 agreement for [rows, classes], and for sequence outputs [N, T, C]
 * the per-position argmax agreement and the greedy-decode (CTC-style) sequence agreement.
 */
export async function checkFidelity(model: Model, quantizedFile: string, data: string | FeedSource, samples: number, batchSize: number, from = 0, read: OpenDatasetOptions = {}): Promise<FidelityCheck> {
  const f = await Session.open(model);
  const q = await Session.open(quantizedFile);
  const producers = new Map<string, string>();
  for (const n of model.proto.graph!.node) for (const o of n.output) producers.set(o, n.opType);
  const acc = new Map<string, FidelityAccumulator>();
  const seq = new Map<string, { agree: number; total: number }>();
  const cover = new Map<string, OutputCoverage>();
  let n = 0;
  try {
    const batches: Feeds[] = from > 0 ? (await loadData(data, model, { from, maxSamples: from + samples, batchSize, read })).batches : [];
    const dataset = from > 0 ? undefined : await openDataset(data, model, { ...read, maxSamples: samples });
    const source: AsyncIterable<Feeds> | Iterable<Feeds> = dataset ? (dataset.batches(batchSize) as AsyncIterable<Feeds>) : batches;
    for await (const feeds of source) {
      const fo = await f.run(feeds);
      const qo = await q.run(feeds);
      n += dataset ? dataset.samplesIn(feeds) : sampleCount(feeds);
      for (const [name, t] of Object.entries(fo)) {
        if (!(name in qo) || !isFloat(t.dtype)) continue;
        const a = acc.get(name) ?? new FidelityAccumulator();
        acc.set(name, a);
        const ref = toFloat32(t);
        const test = toFloat32(qo[name]);
        const last = t.dims[t.dims.length - 1];
        const classes = (t.dims.length === 2 || t.dims.length === 3) && last > 1 ? last : undefined;
        a.update(ref, test, classes);
        if (t.dims.length === 3 && classes) {
          const s = seq.get(name) ?? { agree: 0, total: 0 };
          seq.set(name, s);
          const r = sequenceAgreement(ref, test, t.dims[1], classes);
          s.agree += r.agree;
          s.total += r.total;
        }
        const c = cover.get(name) ?? new OutputCoverage(name, producers.get(name));
        cover.set(name, c);
        c.update(ref, t.dims);
      }
    }
  } finally {
    await f.release();
    await q.release();
  }
  const outputs = [...acc].map(([name, a]) => {
    const r = a.result();
    const s = seq.get(name);
    const agreement = r.top1Agreement !== undefined ? (s ? { positionAgreement: r.top1Agreement } : { top1Agreement: r.top1Agreement }) : {};
    return {
      name,
      cosine: r.cosine,
      sqnrDb: Number.isFinite(r.sqnrDb) ? r.sqnrDb : 999,
      maxAbsError: r.maxAbsError,
      ...agreement,
      ...(s && s.total > 0 ? { sequenceAgreement: s.agree / s.total } : {}),
    };
  });
  return { fidelity: { samples: n, isHeldOut: from > 0, outputs }, coverage: [...cover.values()].flatMap((c) => c.warnings()) };
}

function sampleCount(feeds: Feeds): number {
  const t = Object.values(feeds)[0];
  return t && t.dims.length > 0 ? t.dims[0] : 1;
}

function isFloat(d: string): boolean {
  return d === 'float32' || d === 'float16' || d === 'float64' || d === 'bfloat16';
}

/**
 * Argmax agreement below which a Softmax/LogSoftmax output counts as damaged: one class (or one
 * sequence position) in twenty changed. Documented default; not tuned on a model.
 */
export const MIN_ARGMAX_AGREEMENT = 0.95;

/** Outputs below the fidelity floor: SQNR under `floorDb`, or a Softmax/LogSoftmax output's argmax agreement under MIN_ARGMAX_AGREEMENT. */
export function fidelityFailures(model: Model, fidelity: NonNullable<QuantizeSummary['fidelity']>, floorDb: number): string[] {
  const producers = new Map<string, string>();
  for (const n of model.proto.graph!.node) for (const o of n.output) producers.set(o, n.opType);
  const out: string[] = [];
  for (const o of fidelity.outputs) {
    const why: string[] = [];
    if (o.sqnrDb < floorDb) why.push(`SQNR ${o.sqnrDb.toFixed(1)} dB < ${floorDb} dB (cosine ${o.cosine.toFixed(4)})`);
    const isClass = producers.get(o.name) === 'Softmax' || producers.get(o.name) === 'LogSoftmax';
    const agree = o.positionAgreement ?? o.top1Agreement;
    if (isClass && agree !== undefined && agree < MIN_ARGMAX_AGREEMENT) why.push(`${o.positionAgreement !== undefined ? 'per-position' : 'top-1'} argmax agreement ${(100 * agree).toFixed(1)}% < ${100 * MIN_ARGMAX_AGREEMENT}%`);
    if (isClass && o.sequenceAgreement !== undefined && o.sequenceAgreement < MIN_ARGMAX_AGREEMENT) why.push(`decoded sequences identical for ${(100 * o.sequenceAgreement).toFixed(1)}%`);
    if (why.length) out.push(`"${o.name}": ${why.join(', ')}`);
  }
  return out;
}

/**
 * Largest layer count for which a below-floor run measures every layer alone to name the worst, and
 * the held-out samples each measurement runs (a rewrite and a session per layer: on PaddleOCR rec,
 * 47 layers, about 0.5 s each on a loaded 2-core machine). Only runs when the result is already bad.
 */
export const MAX_LAYERS_MEASURED = 64;
export const WORST_LAYER_SAMPLES = 2;

/**
 * Each quantized layer of `plan` alone (the others float), rewritten for real and run on `feeds`:
 * the first output's SQNR against float, worst first (the measured single-layer loss).
 */
export async function worstLayers(
  model: Model,
  plan: Plan,
  table: CalibrationTable | undefined,
  rewrite: ApplyPlanOptions,
  batches: readonly Feeds[],
  quantized: readonly string[],
): Promise<{ id: string; sqnrDb: number }[]> {
  const output = model.proto.graph!.output[0].name;
  const f = await Session.open(model);
  const reference: Float32Array[] = [];
  try {
    for (const b of batches) reference.push(toFloat32((await f.run(b, [output]))[output]));
  } finally {
    await f.release();
  }
  const out: { id: string; sqnrDb: number }[] = [];
  for (const id of quantized) {
    const single: Plan = { ...plan, defaults: { bits: 'float' }, layers: { [id]: plan.layers[id] ?? plan.defaults } };
    const r = await rewriteOutputs(model, single, table, batches, output, rewrite);
    const acc = new FidelityAccumulator();
    r.outputs.forEach((y, i) => acc.update(reference[i], y));
    const db = acc.result().sqnrDb;
    out.push({ id, sqnrDb: Number.isFinite(db) ? db : 999 });
  }
  return out.sort((a, b) => a.sqnrDb - b.sqnrDb);
}
