import { afterEach, describe, expect, it } from 'vitest';
import { floatTensorProto, GraphIndex, makeGraph, makeModel, makeNode, makeValueInfo, quantizableLayers, type Model } from '../../src/onnx/index.js';
import { makeTensor, Rng } from '../../src/tensor/index.js';
import { measureSensitivity } from '../../src/sensitivity/index.js';
import { tailSlice } from '../../src/sensitivity/tail.js';
import { weightsAsInputs } from '../../src/sensitivity/weight-inputs.js';

/** x → MatMul(W1) → Relu → h; h → MatMul(W2) → Add(h) → MatMul(W3) → y: a residual MLP with three layers. */
function residualMlp(): Model {
  const rng = new Rng(3);
  const K = 8;
  const w = (name: string) => floatTensorProto(name, [K, K], rng.fillNormal(new Float32Array(K * K), 0.4));
  const nodes = [
    makeNode({ opType: 'MatMul', name: 'fc1', inputs: ['x', 'W1'], outputs: ['a'] }),
    makeNode({ opType: 'Relu', name: 'relu', inputs: ['a'], outputs: ['h'] }),
    makeNode({ opType: 'MatMul', name: 'fc2', inputs: ['h', 'W2'], outputs: ['b'] }),
    makeNode({ opType: 'Add', name: 'skip', inputs: ['b', 'h'], outputs: ['c'] }),
    makeNode({ opType: 'MatMul', name: 'fc3', inputs: ['c', 'W3'], outputs: ['y'] }),
  ];
  const graph = makeGraph({ name: 'g', nodes, inputs: [makeValueInfo('x', 'float32', [null, K])], outputs: [makeValueInfo('y', 'float32', [null, K])], initializers: [w('W1'), w('W2'), w('W3')] });
  return { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'residual.onnx', baseDir: '.' };
}

afterEach(() => {
  delete process.env.QTOOL_HESSIAN_TAIL;
});

describe('Hessian probes on the tail of the probed weight', () => {
  it('slices the nodes downstream of a weight and the upstream tensors they read', () => {
    const m = residualMlp();
    const index = GraphIndex.of(m);
    const wim = weightsAsInputs(m, index, quantizableLayers(index), { activationOutputs: true });
    const s2 = tailSlice(wim.model, 'W2', 'y')!;
    expect(s2.nodes.map((n) => n.name)).toEqual(['fc2', 'skip', 'fc3']);
    expect(s2.cut).toEqual(['h']); // read by fc2 and by the skip Add
    expect([...s2.graphInputs].sort()).toEqual(['W2', 'W3']);
    const s1 = tailSlice(wim.model, 'W1', 'y')!;
    expect(s1.tailNodes).toBe(5);
    expect(s1.cut).toEqual([]);
    expect([...s1.graphInputs].sort()).toEqual(['W1', 'W2', 'W3', 'x']);
    expect(tailSlice(wim.model, 'W3', 'h')).toBeUndefined(); // h does not depend on W3
  });

  it('gives the traces of full-model probes (to float rounding) and the same rest of the report', async () => {
    const m = residualMlp();
    const rng = new Rng(5);
    const data = { batches: [{ x: makeTensor('float32', [16, 8], rng.fillNormal(new Float32Array(128))) }] };
    const opts = { loss: 'mse' as const, probes: 8, minProbes: 8, bits: [4, 8] as (4 | 8)[], samples: 16 };
    process.env.QTOOL_HESSIAN_TAIL = '0';
    const full = (await measureSensitivity(m, data, opts)).report;
    delete process.env.QTOOL_HESSIAN_TAIL;
    const tail = (await measureSensitivity(m, data, opts)).report;
    for (const [i, l] of full.layers.entries()) {
      const t = tail.layers[i];
      expect(t.hessian.probes).toBe(l.hessian.probes);
      expect(Math.abs(t.hessian.trace - l.hessian.trace)).toBeLessThan(1e-4 * Math.abs(l.hessian.trace));
      expect(t.bits.map((b) => b.measuredLoss)).toEqual(l.bits.map((b) => b.measuredLoss));
    }
    // Per layer: one run fetching the cut (W2, W3 read upstream tensors), one L(W₀) run on the tail.
    expect(tail.runs.hessian).toBe(full.runs.hessian + 2 + 3);
  });
});
