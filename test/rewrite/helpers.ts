import { create } from '@bufbuild/protobuf';
import { ValueInfoProtoSchema, walkGraphs, type Model } from '../../src/onnx/index.js';
import { Session, type Feeds } from '../../src/runtime/index.js';
import type { CalibrationTable } from '../../src/documents/index.js';
import { makeTensor, toFloat32, type Tensor } from '../../src/tensor/index.js';

/**
 * A min/max calibration table built the plain way for rewrite tests (the real one comes from
 * src/calibrate): every node output of the main graph becomes a graph output, batches run through
 * onnxruntime with optimizations off, and each float tensor's min/max is kept.
 */
export async function minmaxTable(model: Model, batches: readonly Feeds[]): Promise<CalibrationTable> {
  const g = model.proto.graph!;
  const existing = new Set(g.output.map((o) => o.name));
  const extra = [];
  for (const n of g.node) {
    if (n.opType === 'Constant') continue;
    for (const o of n.output) if (o && !existing.has(o)) extra.push(create(ValueInfoProtoSchema, { name: o }));
  }
  const aug: Model = { ...model, proto: { ...model.proto, graph: { ...g, output: [...g.output, ...extra] } } };
  const s = await Session.open(aug, { optimization: 'disabled' });
  const mins = new Map<string, number>();
  const maxs = new Map<string, number>();
  const counts = new Map<string, number>();
  for (const feeds of batches) {
    const out = await s.run(feeds);
    for (const [name, t] of Object.entries(out)) {
      if (t.dtype !== 'float32') continue;
      const d = t.data as Float32Array;
      let lo = mins.get(name) ?? Infinity;
      let hi = maxs.get(name) ?? -Infinity;
      for (let i = 0; i < d.length; i++) {
        if (d[i] < lo) lo = d[i];
        if (d[i] > hi) hi = d[i];
      }
      mins.set(name, lo);
      maxs.set(name, hi);
      counts.set(name, (counts.get(name) ?? 0) + d.length);
    }
  }
  await s.release();
  for (const inp of g.input) {
    for (const feeds of batches) {
      const t = feeds[inp.name];
      if (!t || t.dtype !== 'float32') continue;
      const d = t.data as Float32Array;
      let lo = mins.get(inp.name) ?? Infinity;
      let hi = maxs.get(inp.name) ?? -Infinity;
      for (let i = 0; i < d.length; i++) {
        if (d[i] < lo) lo = d[i];
        if (d[i] > hi) hi = d[i];
      }
      mins.set(inp.name, lo);
      maxs.set(inp.name, hi);
      counts.set(inp.name, (counts.get(inp.name) ?? 0) + d.length);
    }
  }
  const tensors: CalibrationTable['tensors'] = {};
  for (const [name, lo] of mins) {
    const hi = maxs.get(name)!;
    tensors[name] = { range: [lo, hi], method: 'minmax', min: lo, max: hi, count: counts.get(name)! };
  }
  void walkGraphs;
  return { kind: 'qtool.calibration', version: 1, model: { file: model.file, sha256: '' }, method: 'minmax', settings: {}, samples: batches.length, tensors };
}

/** Rows [start, start+n) of a batch-first tensor. */
export function sliceRows(t: Tensor, start: number, n: number): Tensor {
  const row = t.data.length / t.dims[0];
  const end = Math.min(t.dims[0], start + n);
  return makeTensor(t.dtype, [end - start, ...t.dims.slice(1)], (t.data as Float32Array).slice(start * row, end * row) as never);
}

/** Op type histogram of every graph of a model. */
export function countOps(model: Model): Record<string, number> {
  const h: Record<string, number> = {};
  for (const g of walkGraphs(model.proto.graph!)) for (const n of g.node) h[n.opType] = (h[n.opType] ?? 0) + 1;
  return h;
}

/** Top-1 accuracy of a classifier session over labelled rows. */
export async function top1(s: Session, x: Tensor, y: Tensor, inputName = 'input', batch = 500): Promise<number> {
  let hits = 0;
  const labels = y.data as BigInt64Array;
  for (let i = 0; i < x.dims[0]; i += batch) {
    const out = await s.run({ [inputName]: sliceRows(x, i, batch) });
    const logits = toFloat32(Object.values(out)[0]);
    const classes = logits.length / Math.min(batch, x.dims[0] - i);
    for (let r = 0; r * classes < logits.length; r++) {
      let best = 0;
      for (let j = 1; j < classes; j++) if (logits[r * classes + j] > logits[r * classes + best]) best = j;
      if (best === Number(labels[i + r])) hits++;
    }
  }
  return hits / x.dims[0];
}
