import { beforeAll, describe, expect, it } from 'vitest';
import { calibrate, calibrationTensors, rangeFromSummary } from '../../src/calibrate/index.js';
import { openDataset, readNpy } from '../../src/data/index.js';
import { CalibrationTableSchema, type CalibrationTable } from '../../src/documents/index.js';
import { InputError } from '../../src/errors.js';
import { floatTensorProto, loadModel, makeGraph, makeModel, makeNode, makeValueInfo, type Model } from '../../src/onnx/index.js';
import { FMNIST, MODELS, REAL_MODELS } from '../helpers/paths.js';
import * as path from 'node:path';

/** x [batch, 4, 4] → MatMul(W) → Add(causal mask with −inf) → Softmax → y: a masked_fill(−inf) attention pattern. */
function maskedAttention(): Model {
  const mask: number[] = [];
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) mask.push(j > i ? -Infinity : 0);
  const w = Array.from({ length: 16 }, (_, i) => ((i * 7) % 5) / 5 - 0.4);
  const graph = makeGraph({
    name: 'masked',
    nodes: [
      makeNode({ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['scores'] }),
      makeNode({ opType: 'Add', inputs: ['scores', 'mask'], outputs: ['masked'] }),
      makeNode({ opType: 'Softmax', inputs: ['masked'], outputs: ['y'], attrs: { axis: -1 } }),
    ],
    inputs: [makeValueInfo('x', 'float32', ['batch', 4, 4])],
    outputs: [makeValueInfo('y', 'float32', ['batch', 4, 4])],
    initializers: [floatTensorProto('w', [4, 4], w), floatTensorProto('mask', [4, 4], mask)],
  });
  return { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'masked.onnx', baseDir: '.' };
}

describe('calibrate', () => {
  let cnn: Model;
  let table: CalibrationTable;
  const progress: { done: number; total: number }[] = [];
  beforeAll(async () => {
    cnn = loadModel(FMNIST.cnn);
    table = await calibrate(cnn, await openDataset(FMNIST.calibX, cnn, { maxSamples: 128 }), { method: 'percentile', batchSize: 32, onProgress: (p) => progress.push(p) });
  });

  it('observes every float activation of the FMNIST CNN and writes a valid table', () => {
    expect(CalibrationTableSchema.parse(table)).toEqual(table);
    expect(table.samples).toBe(128);
    expect(table.method).toBe('percentile');
    expect(table.settings).toMatchObject({ percentile: 99.999, batchSize: 32, bins: 2048 });
    expect(table.model.sha256).toMatch(/^[0-9a-f]{64}$/);
    const names = Object.keys(table.tensors);
    expect(names).toEqual(calibrationTensors(cnn));
    expect(names[0]).toBe('input');
    expect(names).toContain('logits');
    for (const e of Object.values(table.tensors)) {
      expect(e.range.every(Number.isFinite)).toBe(true);
      expect(e.range[0]).toBeGreaterThanOrEqual(e.min);
      expect(e.range[1]).toBeLessThanOrEqual(e.max);
      expect(e.histogram!.counts.reduce((a, b) => a + b, 0)).toBe(e.count);
      expect(e.nonFinite).toBeUndefined();
    }
    expect(progress.map((p) => p.done)).toEqual([0, 32, 64, 96, 128]);
    expect(progress.every((p) => p.total === 128)).toBe(true);
  });

  it('input statistics equal the data exactly', () => {
    const x = readNpy(FMNIST.calibX).data as Float32Array;
    const first = x.subarray(0, 128 * 784);
    let lo = Infinity, hi = -Infinity, ss = 0;
    for (const v of first) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      ss += v * v;
    }
    const e = table.tensors.input;
    expect([e.min, e.max, e.count]).toEqual([lo, hi, 128 * 784]);
    expect(e.meanSquare).toBeCloseTo(ss / first.length, 9);
  });

  it('batch sizes 1, 7 and 64 give the same table (minmax exact, histograms identical)', async () => {
    const mlp = loadModel(FMNIST.mlp);
    const ds = await openDataset(FMNIST.calibX, mlp, { maxSamples: 64 });
    // minmax is reduced inside the graph and keeps no histogram; percentile tables carry the histograms.
    for (const method of ['minmax', 'percentile'] as const) {
      const tables = [];
      for (const batchSize of [1, 7, 64]) tables.push(await calibrate(mlp, ds, { method, batchSize }));
      const [a, b, c] = tables;
      for (const name of Object.keys(a.tensors)) {
        for (const t of [b, c]) {
          const x = a.tensors[name];
          const y = t.tensors[name];
          // onnxruntime may pick other kernels per batch size; values agree to float32 rounding.
          expect(y.count).toBe(x.count);
          expect(y.min).toBeCloseTo(x.min, 4);
          expect(y.max).toBeCloseTo(x.max, 4);
          if (method === 'minmax') {
            expect(y.range[0]).toBeCloseTo(x.range[0], 4);
            expect(y.range[1]).toBeCloseTo(x.range[1], 4);
            expect(x.histogram).toBeUndefined();
            continue;
          }
          const w = (x.histogram!.hi - x.histogram!.lo) / x.histogram!.counts.length;
          for (const m of ['percentile', 'entropy', 'mse'] as const) {
            const rx = rangeFromSummary(x, m);
            const ry = rangeFromSummary(y, m);
            expect(Math.abs(rx[0] - ry[0])).toBeLessThanOrEqual(w);
            expect(Math.abs(rx[1] - ry[1])).toBeLessThanOrEqual(w);
          }
        }
      }
      if (method === 'percentile') expect(a.tensors.input.histogram).toEqual(c.tensors.input.histogram);
    }
  });

  it('minmax reduced inside the graph matches the values seen in JS (to float32 rounding: other kernels, float32 sums)', async () => {
    const ds = await openDataset(FMNIST.calibX, cnn, { maxSamples: 128 });
    const mm = await calibrate(cnn, ds, { method: 'minmax', batchSize: 32 });
    expect(Object.keys(mm.tensors)).toEqual(Object.keys(table.tensors));
    for (const [name, e] of Object.entries(mm.tensors)) {
      const ref = table.tensors[name];
      // The reduction session runs with graph optimizations on (fused/NCHWc kernels): last-bit differences.
      const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(b)));
      expect(e.count).toBe(ref.count);
      close(e.min, ref.min);
      close(e.max, ref.max);
      expect(e.range).toEqual([e.min, e.max]);
      close(e.meanSquare!, ref.meanSquare!);
      expect(e.histogram).toBeUndefined();
    }
  });

  it('flags a masked_fill(−inf) tensor as nonFinite with a finite range; Softmax stays in [0, 1]', async () => {
    const m = maskedAttention();
    for (const method of ['minmax', 'percentile', 'entropy', 'mse'] as const) {
      const t = await calibrate(m, await openDataset('random', m, { randomSamples: 8 }), { method, batchSize: 4 });
      const masked = t.tensors.masked;
      expect(masked.nonFinite).toBe(true);
      expect(masked.nonFiniteCount).toBe(8 * 6);
      expect(masked.range.every(Number.isFinite)).toBe(true);
      expect(t.tensors.scores.nonFinite).toBeUndefined();
      expect(t.tensors.y.min).toBeGreaterThanOrEqual(0);
      expect(t.tensors.y.max).toBeLessThanOrEqual(1);
      expect(Object.keys(t.tensors)).toEqual(['x', 'scores', 'masked', 'y']);
    }
  });

  it('observer worker threads give the same table as observing on this thread (histograms, nonFinite, input copies)', async () => {
    const ds = await openDataset(FMNIST.calibX, cnn, { maxSamples: 96 });
    for (const method of ['percentile', 'entropy'] as const) {
      const inThread = await calibrate(cnn, ds, { method, batchSize: 16, workers: 0 });
      for (const workers of [1, 3]) expect(await calibrate(cnn, ds, { method, batchSize: 16, workers })).toEqual(inThread);
    }
    // The dataset's buffers are copied, not moved, to the workers: a second pass still reads them.
    expect((await calibrate(cnn, ds, { method: 'mse', batchSize: 16, workers: 2 })).tensors.input).toEqual((await calibrate(cnn, ds, { method: 'mse', batchSize: 16, workers: 0 })).tensors.input);
    const m = maskedAttention();
    const rds = await openDataset('random', m, { randomSamples: 8 });
    const a = await calibrate(m, rds, { method: 'mse', batchSize: 4, workers: 0 });
    expect(await calibrate(m, rds, { method: 'mse', batchSize: 4, workers: 2 })).toEqual(a);
    expect(a.tensors.masked.nonFiniteCount).toBe(8 * 6);
    await expect(calibrate(m, rds, { method: 'mse', workers: -1 })).rejects.toMatchObject({ code: 'E_FLAG' });
  });

  it('restricts to the requested tensors and names unknown ones', async () => {
    const ds = await openDataset(FMNIST.calibX, cnn, { maxSamples: 8 });
    const t = await calibrate(cnn, ds, { tensors: ['logits'] });
    expect(Object.keys(t.tensors)).toEqual(['logits']);
    await expect(calibrate(cnn, ds, { tensors: ['nope'] })).rejects.toThrow(InputError);
    await expect(calibrate(cnn, ds, { tensors: ['nope'] })).rejects.toThrow(/tensor "nope" is not a tensor of the main graph/);
  });

  it('calibrates the synthetic transformer block', async () => {
    const m = loadModel(path.join(MODELS, 'synthetic', 'transformer.onnx'));
    const t = await calibrate(m, await openDataset('random', m, { randomSamples: 8, seed: 1 }), { method: 'entropy', batchSize: 4 });
    const entries = Object.entries(t.tensors);
    expect(entries.length).toBeGreaterThan(20);
    const softmaxOut = m.proto.graph!.node.find((n) => n.opType === 'Softmax')!.output[0];
    expect(t.tensors[softmaxOut].min).toBeGreaterThanOrEqual(0);
    expect(t.tensors[softmaxOut].max).toBeLessThanOrEqual(1);
    for (const [, e] of entries) expect(e.range.every(Number.isFinite)).toBe(true);
  });

  it('calibrates PaddleOCR det (weights in Constant nodes, no value_info) on two 64×64 inputs', async () => {
    const m = loadModel(REAL_MODELS.paddleDet);
    const ds = await openDataset('random', m, { randomSamples: 2, randomDims: { 'p2o.DynamicDimension.1': 64, 'p2o.DynamicDimension.2': 64 } });
    const t = await calibrate(m, ds, { method: 'percentile', batchSize: 2 });
    const entries = Object.values(t.tensors);
    expect(entries.length).toBeGreaterThan(300);
    expect(t.tensors.x.count).toBe(2 * 3 * 64 * 64);
    const out = t.tensors['sigmoid_0.tmp_0'];
    expect(out.min).toBeGreaterThanOrEqual(0);
    expect(out.max).toBeLessThanOrEqual(1);
    for (const e of entries) expect(e.range.every(Number.isFinite)).toBe(true);
  }, 60_000);
});
