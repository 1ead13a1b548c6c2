import * as os from 'node:os';
import { expect, test } from 'vitest';
import { floatTensorProto, makeGraph, makeModel, makeNode, makeValueInfo, tensorFromProto, type Model } from '../../src/onnx/index.js';
import { fakeQuantizeWeight } from '../../src/quant/index.js';
import { applyPlan, uniformPlan } from '../../src/rewrite/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor, Rng, toFloat32 } from '../../src/tensor/index.js';

const K = 64;
const N = 24;

function matmul(w: Float32Array): Model {
  const graph = makeGraph({ name: 'g', nodes: [makeNode({ opType: 'MatMul', name: 'm', inputs: ['x', 'W'], outputs: ['y'] })], inputs: [makeValueInfo('x', 'float32', [4, K])], outputs: [makeValueInfo('y', 'float32')], initializers: [floatTensorProto('W', [K, N], w)] });
  return { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'mm.onnx', baseDir: os.tmpdir() };
}

async function run(m: Model, x: Float32Array): Promise<Float32Array> {
  // accuracy level 0 (fp32) for the DQ → MatMul → MatMulNBits fusion, so the comparison is exact.
  const s = await Session.open(m, { config: { 'session.qdq_matmulnbits_accuracy_level': '0' } });
  try {
    return toFloat32((await s.run({ x: makeTensor('float32', [4, K], x) })).y);
  } finally {
    await s.release();
  }
}

test.each(['nbits', 'qdq'] as const)('symmetric int4 with negative scales: %s loads in onnxruntime and computes x·dequant(W)', async (format) => {
  const rng = new Rng(21);
  const w = rng.fillNormal(new Float32Array(K * N), 0.5);
  const x = rng.fillNormal(new Float32Array(4 * K));
  const r = applyPlan(matmul(w), uniformPlan({ bits: 4, mode: 'weight-only', symmetric: true }), undefined, { int4Format: format, accuracyLevel: 0 });
  const g = r.model.proto.graph!;
  const scaleInit = g.initializer.find((t) => t.dataType === 1)!;
  const scales = toFloat32(tensorFromProto(scaleInit));
  expect(scales.some((v) => v < 0) && scales.some((v) => v > 0)).toBe(true);
  const expected = await run(matmul(fakeQuantizeWeight(w, [K, N], { bits: 4, symmetric: true, granularity: 'block', axis: 0, blockSize: 32 })), x);
  const got = await run(r.model, x);
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < got.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(got[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  expect(maxErr / maxRef).toBeLessThan(1e-5);
});
