import { describe, expect, it } from 'vitest';
import { floatTensorProto, makeGraph, makeModel, makeNode, makeValueInfo, type Model } from '../../src/onnx/index.js';
import { applyPlan, uniformPlan } from '../../src/rewrite/index.js';
import { Session } from '../../src/runtime/index.js';
import { collectLayerInputStats } from '../../src/sensitivity/index.js';
import { makeTensor, Rng, toFloat32 } from '../../src/tensor/index.js';

const M = 64;
const K = 48;
const N = 16;

function model(w: Float32Array): Model {
  const graph = makeGraph({
    name: 'mm',
    nodes: [makeNode({ opType: 'MatMul', name: 'mm', inputs: ['x', 'W'], outputs: ['y'] })],
    inputs: [makeValueInfo('x', 'float32', [M, K])],
    outputs: [makeValueInfo('y', 'float32', [M, N])],
    initializers: [floatTensorProto('W', [K, N], w)],
  });
  return { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'mm.onnx', baseDir: '.' };
}

async function run(m: Model, x: Float32Array): Promise<Float32Array> {
  const s = await Session.open(m);
  try {
    return toFloat32((await s.run({ x: makeTensor('float32', [M, K], x) })).y);
  } finally {
    await s.release();
  }
}

describe('LLM.int8() outlier split (dynamic INT8)', () => {
  it('channels above the threshold go through a float MatMul: output equals float within int8 error, far closer than without', async () => {
    const rng = new Rng(9);
    const w = rng.fillNormal(new Float32Array(K * N), 0.1);
    const x = rng.fillNormal(new Float32Array(M * K));
    for (let r = 0; r < M; r++) for (const k of [5, 30]) x[r * K + k] *= 60; // outlier features
    const m = model(w);
    const stats = await collectLayerInputStats(m, [{ x: makeTensor('float32', [M, K], x) }]);
    const maxAbs = stats.get('mm')!.maxAbs!;
    const threshold = 20;
    const outliers = [...maxAbs].flatMap((v, k) => (v > threshold ? [k] : []));
    expect(outliers).toEqual([5, 30]);
    const plan = uniformPlan({ bits: 8, mode: 'dynamic' });
    const plain = applyPlan(m, plan, undefined);
    const split = applyPlan(m, plan, undefined, { outlierChannels: (id) => (id === 'mm' ? outliers : undefined) });
    expect(split.model.proto.graph!.node.map((n) => n.opType)).toEqual(['Mul', 'Gather', 'DynamicQuantizeMatMul', 'MatMul', 'Add']);
    const ref = await run(m, x);
    const err = (y: Float32Array) => Math.sqrt(y.reduce((a, v, i) => a + (v - ref[i]) ** 2, 0) / ref.reduce((a, v) => a + v * v, 0));
    const ePlain = err(await run(plain.model, x));
    const eSplit = err(await run(split.model, x));
    expect(eSplit).toBeLessThan(0.02);
    expect(eSplit).toBeLessThan(ePlain / 3);
    expect(split.summary.notes.some((n) => n.includes('2 outlier input channels'))).toBe(true);
  });
});
