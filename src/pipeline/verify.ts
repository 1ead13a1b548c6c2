/**
 * Verification shared by the commands that write a quantized model: open it in onnxruntime with all
 * optimizations (a model it cannot load is never written) and count the fused kernels it will run;
 * compare float and quantized outputs on data (fidelity).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openDataset, type FeedSource, type OpenDatasetOptions } from '../data/index.js';
import type { QuantizeSummary } from '../documents/index.js';
import { loadModel, walkGraphs, type Model } from '../onnx/index.js';
import { FidelityAccumulator } from '../quant/index.js';
import { Session, type Feeds } from '../runtime/index.js';
import { toFloat32 } from '../tensor/index.js';

/**
 * Open the quantized model in onnxruntime with all optimizations and return the op counts of the
 * graph it will run (fused integer kernels). Throws OrtError when onnxruntime refuses the model.
 */
export async function optimizedOpCounts(model: Model, name: string, accuracyLevel = 4): Promise<Record<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-opt-'));
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
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The fused integer kernels among optimizedOpCounts (QLinear*, QGemm, MatMulNBits, …), in count order of the input. */
export function fusedKernels(optimizedOps: Readonly<Record<string, number>>): [op: string, count: number][] {
  return Object.entries(optimizedOps).filter(([op]) => /^QLinear|^QGemm|MatMulNBits|DynamicQuantize|MatMulIntegerToFloat/.test(op));
}

/** Run float and quantized models on the first `samples` samples and compare every output. */
export async function checkFidelity(model: Model, quantizedFile: string, data: string | FeedSource, samples: number, batchSize: number, read: OpenDatasetOptions = {}): Promise<NonNullable<QuantizeSummary['fidelity']>> {
  const dataset = await openDataset(data, model, { ...read, maxSamples: samples });
  const f = await Session.open(model);
  const q = await Session.open(quantizedFile);
  const acc = new Map<string, FidelityAccumulator>();
  let n = 0;
  try {
    for await (const feeds of dataset.batches(batchSize)) {
      const fo = await f.run(feeds as Feeds);
      const qo = await q.run(feeds as Feeds);
      n += dataset.samplesIn(feeds);
      for (const [name, t] of Object.entries(fo)) {
        if (!(name in qo) || !isFloat(t.dtype)) continue;
        const a = acc.get(name) ?? new FidelityAccumulator();
        acc.set(name, a);
        const classes = t.dims.length === 2 && t.dims[1] > 1 ? t.dims[1] : undefined;
        a.update(toFloat32(t), toFloat32(qo[name]), classes);
      }
    }
  } finally {
    await f.release();
    await q.release();
  }
  const outputs = [...acc].map(([name, a]) => {
    const r = a.result();
    return { name, cosine: r.cosine, sqnrDb: Number.isFinite(r.sqnrDb) ? r.sqnrDb : 999, maxAbsError: r.maxAbsError, ...(r.top1Agreement !== undefined ? { top1Agreement: r.top1Agreement } : {}) };
  });
  return { samples: n, outputs };
}

function isFloat(d: string): boolean {
  return d === 'float32' || d === 'float16' || d === 'float64' || d === 'bfloat16';
}
