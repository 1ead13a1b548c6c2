import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { readNpy } from '../../src/data/index.js';
import type { Plan } from '../../src/documents/index.js';
import { floatTensorProto, loadModel, makeGraph, makeModel, makeNode, makeValueInfo, opsetVersion, saveModel, tensorFromProto, type Model } from '../../src/onnx/index.js';
import { optimizedOpCounts } from '../../src/pipeline/index.js';
import { fakeQuantizeWeight, type WeightQuantSpec } from '../../src/quant/index.js';
import { applyPlan, uniformPlan } from '../../src/rewrite/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor, Rng, toFloat32, type Tensor } from '../../src/tensor/index.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';
import { countOps, minmaxTable, sliceRows, top1 } from './helpers.js';

/** x → Conv(W) [→ Softmax] → y, with seeded weights. A trailing Softmax at opset < 13 blocks the raise to 21. */
function convModel(opset: number, w: number[], x: number[], withSoftmax = false): Model {
  const rng = new Rng(11);
  const n = w.reduce((a, b) => a * b, 1);
  const nodes = [makeNode({ opType: 'Conv', name: 'c', inputs: ['x', 'W', 'B'], outputs: [withSoftmax ? 'h' : 'y'], attrs: { pads: [1, 1, 1, 1] } })];
  if (withSoftmax) nodes.push(makeNode({ opType: 'Softmax', name: 's', inputs: ['h'], outputs: ['y'], attrs: { axis: 1 } }));
  const graph = makeGraph({
    name: 'g',
    nodes,
    inputs: [makeValueInfo('x', 'float32', x)],
    outputs: [makeValueInfo('y', 'float32')],
    initializers: [floatTensorProto('W', w, rng.fillNormal(new Float32Array(n), 0.2)), floatTensorProto('B', [w[0]], rng.fillNormal(new Float32Array(w[0]), 0.1))],
  });
  return { proto: makeModel({ graph, opsets: { '': opset } }), file: 'conv.onnx', baseDir: os.tmpdir() };
}

/** The same model with W replaced by its fake-quantized values (what the rewritten model computes). */
function withWeights(model: Model, w: Float32Array): Model {
  const g = model.proto.graph!;
  const t = g.initializer.find((i) => i.name === 'W')!;
  const inits = g.initializer.map((i) => (i.name === 'W' ? floatTensorProto('W', t.dims.map(Number), w) : i));
  return { ...model, proto: { ...model.proto, graph: { ...g, initializer: inits } } };
}

function maxRelErr(a: Float32Array, b: Float32Array): number {
  let ref = 0;
  let err = 0;
  for (let i = 0; i < a.length; i++) {
    ref = Math.max(ref, Math.abs(a[i]));
    err = Math.max(err, Math.abs(a[i] - b[i]));
  }
  return err / ref;
}

async function runY(model: Model, x: Tensor): Promise<Float32Array> {
  const s = await Session.open(model);
  try {
    return toFloat32((await s.run({ x })).y);
  } finally {
    await s.release();
  }
}

describe('4-bit weight-only Conv: DequantizeLinear(int4) → float Conv', () => {
  // vsFloat: max |error| / max |y| against the float model (4-bit is lossy; per-channel over 576 weights more so).
  const cases: { name: string; opset: number; w: number[]; softmax: boolean; spec: WeightQuantSpec; domain: string; outOpset: number; vsFloat: number }[] = [
    { name: 'blocks of 32 input channels, opset 17 raised to 21', opset: 17, w: [16, 64, 3, 3], softmax: false, spec: { bits: 4, symmetric: true, granularity: 'block', axis: 1, blockSize: 32 }, domain: '', outOpset: 21, vsFloat: 0.15 },
    { name: '8 input channels: per output channel', opset: 17, w: [16, 8, 3, 3], softmax: false, spec: { bits: 4, symmetric: true, granularity: 'channel', axis: 0 }, domain: '', outOpset: 21, vsFloat: 0.15 },
    { name: 'opset 11 with Softmax (cannot reach 21): com.microsoft DequantizeLinear per channel', opset: 11, w: [16, 64, 3, 3], softmax: true, spec: { bits: 4, symmetric: true, granularity: 'channel', axis: 0 }, domain: 'com.microsoft', outOpset: 11, vsFloat: 0.25 },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const xDims = [2, c.w[1], 7, 7];
      const model = convModel(c.opset, c.w, xDims, c.softmax);
      const plan = uniformPlan({ bits: 4, mode: 'weight-only', symmetric: true });
      plan.layers.c = { ...plan.defaults };
      const r = applyPlan(model, plan, undefined);
      const dq = r.model.proto.graph!.node.find((n) => n.opType === 'DequantizeLinear')!;
      expect(dq.domain).toBe(c.domain);
      expect(opsetVersion(r.model.proto, '')).toBe(c.outOpset);
      expect(r.summary.layers[0]).toMatchObject({ bits: 4, scheme: 'weight-only', opType: 'Conv' });
      expect(r.summary.layers[0].reason).toMatch(/^4-bit weight-only conv: int4 weights/);
      // Stored as int4 (packed), with signed scales (onnxruntime's rule) and no zero point.
      const wq = r.model.proto.graph!.initializer.find((t) => t.name === dq.input[0])!;
      expect(wq.dataType).toBe(22);
      expect(dq.input.length).toBe(2);
      const scales = toFloat32(tensorFromProto(r.model.proto.graph!.initializer.find((t) => t.name === dq.input[1])!));
      expect(scales.some((s) => s < 0)).toBe(true);
      // onnxruntime loads it, keeps the DequantizeLinear (no constant folding: it runs every inference)
      // and computes exactly the float Conv with the fake-quantized weights.
      const ops = await optimizedOpCounts(r.model, c.name);
      expect(ops.DequantizeLinear).toBe(1);
      expect(ops.QLinearConv ?? 0).toBe(0);
      const w0 = toFloat32(tensorFromProto(model.proto.graph!.initializer.find((t) => t.name === 'W')!));
      const x = makeTensor('float32', xDims, new Rng(4).fillNormal(new Float32Array(xDims.reduce((a, b) => a * b, 1))));
      const yq = await runY(r.model, x);
      expect(maxRelErr(await runY(withWeights(model, fakeQuantizeWeight(w0, c.w, c.spec)), x), yq)).toBeLessThan(1e-5);
      expect(maxRelErr(await runY(model, x), yq)).toBeLessThan(c.vsFloat);
    });
  }
});

describe('fmnist_cnn with 4-bit convolutions', () => {
  let dir: string;
  let valX: Tensor;
  let valY: Tensor;
  let floatTop1: number;
  const cnn = () => loadModel(FMNIST.cnn);
  const accuracy = async (m: Model) => {
    const s = await Session.open(m);
    try {
      return await top1(s, valX, valY, 'input', 1000);
    } finally {
      await s.release();
    }
  };
  beforeAll(async () => {
    dir = makeTempDir('qtool-conv4-');
    valX = readNpy(FMNIST.valX);
    valY = readNpy(FMNIST.valY);
    floatTop1 = await accuracy(cnn());
  });

  test('all convolutions at 4 bits (weight-only, symmetric, block 32): accuracy and size', async () => {
    const plan: Plan = { kind: 'qtool.plan', version: 1, mode: 'weight-only', defaults: { bits: 'float' }, layers: {} };
    const model = cnn();
    for (const n of model.proto.graph!.node) if (n.opType === 'Conv') plan.layers[n.name] = { bits: 4, granularity: 'block', blockSize: 32, symmetric: true };
    const r = applyPlan(model, plan, undefined);
    const file = path.join(dir, 'cnn.conv4.onnx');
    saveModel(r.model, file);
    const bytes = fs.statSync(file).size;
    const floatBytes = fs.statSync(FMNIST.cnn).size;
    const acc = await accuracy(r.model);
    const convs = r.summary.layers.filter((l) => l.opType === 'Conv');
    const weightAfter = convs.reduce((a, l) => a + l.weightBytes!.after, 0);
    console.log(`fmnist_cnn all-4-bit convs: top-1 ${acc} (float ${floatTop1}, drop ${(100 * (floatTop1 - acc)).toFixed(2)} points); file ${bytes} B vs float ${floatBytes} B (${(bytes / floatBytes).toFixed(3)}x); conv weights+bias ${weightAfter} B`);
    expect(convs.length).toBe(7);
    expect(convs.every((l) => l.bits === 4 && l.scheme === 'weight-only')).toBe(true);
    expect(countOps(r.model)).toMatchObject({ DequantizeLinear: 7, Conv: 7 });
    expect(100 * (floatTop1 - acc)).toBeLessThanOrEqual(1.5);
    expect(bytes / floatBytes).toBeLessThan(0.2);
  });

  test('a static plan mixing 8-bit QLinearConv and 4-bit weight-only convs keeps float activations around the 4-bit ones', async () => {
    const model = cnn();
    const calib = readNpy(FMNIST.calibX);
    const table = await minmaxTable(model, [{ input: sliceRows(calib, 0, 256) }, { input: sliceRows(calib, 256, 256) }]);
    const convs = model.proto.graph!.node.filter((n) => n.opType === 'Conv').map((n) => n.name);
    const four = new Set([convs[0], convs[2], convs[4], convs[6]]);
    const plan: Plan = { kind: 'qtool.plan', version: 1, mode: 'static', defaults: { bits: 8, granularity: 'channel' }, layers: {} };
    for (const c of four) plan.layers[c] = { bits: 4, granularity: 'block', blockSize: 32, symmetric: true };
    const r = applyPlan(model, plan, table);
    const ops = await optimizedOpCounts(r.model, 'mixed');
    const acc = await accuracy(r.model);
    // The same four convs at 4 bits with everything else float: the static mix may only add the
    // (small) INT8 error on top of it, which it cannot do if a boundary were wrong.
    const weightOnly: Plan = { ...plan, mode: 'weight-only', defaults: { bits: 'float' } };
    const accFour = await accuracy(applyPlan(model, weightOnly, undefined).model);
    console.log(`fmnist_cnn static mix (4 convs int4 weight-only, 3 QLinearConv, QGemm): top-1 ${acc}; the 4 int4 convs alone ${accFour}; float ${floatTop1}; optimized ${JSON.stringify(ops)}`);
    const records = new Map(r.summary.layers.map((l) => [l.id, l]));
    for (const c of convs) expect(records.get(c)).toMatchObject(four.has(c) ? { bits: 4, scheme: 'weight-only' } : { bits: 8, scheme: 'static-qdq' });
    expect(ops.QLinearConv).toBe(3);
    // Every int4 weight DQ feeds a float Conv (plain or fused with its Relu).
    expect(ops.DequantizeLinear).toBeGreaterThanOrEqual(4);
    expect((ops.Conv ?? 0) + (ops.FusedConv ?? 0)).toBe(4);
    expect(Math.abs(100 * (accFour - acc))).toBeLessThanOrEqual(0.5);
    expect(100 * (floatTop1 - acc)).toBeLessThanOrEqual(2.5);
  });
});
