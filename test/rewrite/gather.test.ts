import { describe, expect, it } from 'vitest';
import { floatTensorProto, makeGraph, makeModel, makeNode, makeValueInfo, type Model } from '../../src/onnx/index.js';
import { fakeQuantizeWeight } from '../../src/quant/index.js';
import { applyPlan, uniformPlan } from '../../src/rewrite/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor, Rng, toFloat32 } from '../../src/tensor/index.js';

const V = 256;
const D = 128;

function embedding(table: Float32Array, rows = V): Model {
  const graph = makeGraph({
    name: 'emb',
    nodes: [makeNode({ opType: 'Gather', name: 'wte', inputs: ['table', 'ids'], outputs: ['y'], attrs: { axis: 0 } })],
    inputs: [makeValueInfo('ids', 'int64', [1, 5])],
    outputs: [makeValueInfo('y', 'float32', [1, 5, D])],
    initializers: [floatTensorProto('table', [rows, D], table)],
  });
  return { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'emb.onnx', baseDir: '.' };
}

async function gather(m: Model, ids: BigInt64Array): Promise<Float32Array> {
  const s = await Session.open(m);
  try {
    return toFloat32((await s.run({ ids: makeTensor('int64', [1, ids.length], ids) })).y);
  } finally {
    await s.release();
  }
}

describe('embedding tables', () => {
  it.each([8, 4] as const)('%i bits: GatherBlockQuantized returns the block-quantized rows, the float table is gone', async (bits) => {
    const rng = new Rng(bits);
    const table = rng.fillNormal(new Float32Array(V * D), 0.02);
    const model = embedding(table);
    const r = applyPlan(model, uniformPlan({ bits, mode: bits === 4 ? 'weight-only' : 'dynamic' }), undefined);
    const g = r.model.proto.graph!;
    expect(g.node.map((n) => n.opType)).toEqual(['GatherBlockQuantized']);
    expect(g.initializer.some((t) => t.name === 'table')).toBe(false);
    const block = bits === 4 ? 32 : 128;
    const expected = fakeQuantizeWeight(table, [V, D], { bits, symmetric: true, granularity: 'block', axis: 1, blockSize: block });
    const ids = BigInt64Array.of(0n, 17n, 255n, 3n, 17n);
    const got = await gather(r.model, ids);
    ids.forEach((id, i) => {
      for (let j = 0; j < D; j++) expect(got[i * D + j]).toBeCloseTo(expected[Number(id) * D + j], 7);
    });
    expect(r.summary.notes.some((n) => n.includes('GatherBlockQuantized'))).toBe(true);
  });

  it('small tables stay float', () => {
    const model = embedding(new Float32Array(16 * D).fill(0.1), 16);
    const r = applyPlan(model, uniformPlan({ bits: 8, mode: 'dynamic' }), undefined);
    expect(r.model.proto.graph!.node.map((n) => n.opType)).toEqual(['Gather']);
  });
});
