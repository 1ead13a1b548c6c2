import { describe, expect, it } from 'vitest';
import { buildAudioFrontEndModel } from '../../src/fixtures/index.js';
import { floatTensorProto, GraphIndex, makeGraph, makeModel, makeNode, makeValueInfo, type NodeProto, type TensorProto } from '../../src/onnx/index.js';
import { EXP_UNDERFLOW, logSinkOf, maskFillOf } from '../../src/rewrite/index.js';

function indexOf(nodes: NodeProto[], inits: TensorProto[], output = 'y') {
  const graph = makeGraph({ name: 'g', nodes, inputs: [makeValueInfo('x', 'float32', [2, 4]), makeValueInfo('m', 'bool', [2, 4])], outputs: [makeValueInfo(output, 'float32')], initializers: inits });
  const index = new GraphIndex(makeModel({ graph, opsets: { '': 17 } }).graph!);
  return { index, scope: index.main };
}
const scalar = (name: string, v: number) => floatTensorProto(name, [], Float32Array.of(v));

describe('mask fills are recognised by structure, not by magnitude', () => {
  it('the fill threshold is where exp underflows in float32', () => {
    expect(Math.exp(EXP_UNDERFLOW - 1)).toBeLessThan(1.4e-45);
    expect(Math.fround(Math.exp(EXP_UNDERFLOW - 1))).toBe(0);
    expect(Math.fround(Math.exp(EXP_UNDERFLOW + 1))).toBeGreaterThan(0);
  });

  it('masked_fill: Where(mask, scores, -inf / float32 min) before Softmax', () => {
    for (const fill of [-Infinity, -3.4028234663852886e38, -1e9]) {
      const { index, scope } = indexOf(
        [
          makeNode({ opType: 'Mul', inputs: ['x', 'k'], outputs: ['scores'] }),
          makeNode({ opType: 'Where', inputs: ['m', 'scores', 'fill'], outputs: ['masked'] }),
          makeNode({ opType: 'Softmax', inputs: ['masked'], outputs: ['y'], attrs: { axis: -1 } }),
        ],
        [scalar('k', 0.5), scalar('fill', fill)],
      );
      expect(maskFillOf(index, scope, 'masked')).toMatch(/Where fills with/);
      expect(maskFillOf(index, scope, 'scores')).toBeUndefined();
    }
  });

  it('additive mask: (1 − m)·(−10000) added to scores that reach Softmax', () => {
    const { index, scope } = indexOf(
      [
        makeNode({ opType: 'Cast', inputs: ['m'], outputs: ['mf'], attrs: { to: 1 } }),
        makeNode({ opType: 'Sub', inputs: ['one', 'mf'], outputs: ['inv'] }),
        makeNode({ opType: 'Mul', inputs: ['inv', 'big'], outputs: ['bias'] }),
        makeNode({ opType: 'Add', inputs: ['x', 'bias'], outputs: ['scores'] }),
        makeNode({ opType: 'Softmax', inputs: ['scores'], outputs: ['y'], attrs: { axis: -1 } }),
      ],
      [scalar('one', 1), scalar('big', -10000)],
    );
    expect(maskFillOf(index, scope, 'bias')).toMatch(/Mul with -10000 on a path to Softmax/);
    expect(maskFillOf(index, scope, 'scores')).toBeDefined();
    expect(maskFillOf(index, scope, 'x')).toBeUndefined();
  });

  it('a large finite constant that is not a mask (a −30000 offset on int16 audio, no Softmax) is not a fill', () => {
    const { index, scope } = indexOf([makeNode({ opType: 'Add', inputs: ['x', 'off'], outputs: ['y'] })], [scalar('off', -30000)]);
    expect(maskFillOf(index, scope, 'y')).toBeUndefined();
    // Nor is a small constant on a Softmax path.
    const b = indexOf([makeNode({ opType: 'Add', inputs: ['x', 'off'], outputs: ['s'] }), makeNode({ opType: 'Softmax', inputs: ['s'], outputs: ['y'] })], [scalar('off', -50)]);
    expect(maskFillOf(b.index, b.scope, 's')).toBeUndefined();
  });
});

describe('log sinks: where a tensor must be judged in the log domain', () => {
  it('the audio front end: the power spectrum reaches Log through the non-negative mel MatMul and +ε', () => {
    const model = buildAudioFrontEndModel();
    const index = new GraphIndex(model.proto.graph!);
    const scope = index.main;
    expect(logSinkOf(index, scope, 'power_out')).toEqual({ epsilon: Math.fround(1e-6) });
    expect(logSinkOf(index, scope, 'mel_out')).toEqual({ epsilon: Math.fround(1e-6) });
    // The signed DFT outputs reach the Log only through a square (Mul of two runtime tensors): no relative-error path.
    expect(logSinkOf(index, scope, 'dft_re_out')).toBeUndefined();
    // After the Log: ordinary linear tensors.
    expect(logSinkOf(index, scope, 'unsqueeze_out')).toBeUndefined();
  });

  it('a MatMul with a signed weight breaks the relative-error path', () => {
    const { index, scope } = indexOf(
      [makeNode({ opType: 'MatMul', inputs: ['x', 'W'], outputs: ['h'] }), makeNode({ opType: 'Log', inputs: ['h'], outputs: ['y'] })],
      [floatTensorProto('W', [4, 4], Float32Array.from({ length: 16 }, (_, i) => (i % 3) - 1))],
    );
    expect(logSinkOf(index, scope, 'x')).toBeUndefined();
    expect(logSinkOf(index, scope, 'h')).toEqual({ epsilon: 0 });
  });
});

describe('weights below the SQNR floor keep their layer float', () => {
  it('per-tensor vs per-channel SQNR of a weight with one huge outlier, judged against the floor', async () => {
    const { applyPlan } = await import('../../src/rewrite/index.js');
    const { minmaxTable } = await import('./helpers.js');
    const { makeTensor, Rng } = await import('../../src/tensor/index.js');
    const rng = new Rng(5);
    const w = rng.fillNormal(new Float32Array(64 * 256));
    w[17] = 1e4;
    const graph = makeGraph({
      name: 'g',
      nodes: [makeNode({ opType: 'Gemm', name: 'fc', inputs: ['x', 'W'], outputs: ['y'], attrs: { transB: 1 } })],
      inputs: [makeValueInfo('x', 'float32', [4, 256])],
      outputs: [makeValueInfo('y', 'float32')],
      initializers: [floatTensorProto('W', [64, 256], w)],
    });
    const model = { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'w.onnx', baseDir: '.' };
    const table = await minmaxTable(model, [{ x: makeTensor('float32', [4, 256], rng.fillNormal(new Float32Array(1024))) }]);
    const plan = (granularity: 'tensor' | 'channel') => ({ kind: 'qtool.plan' as const, version: 1 as const, mode: 'static' as const, defaults: { bits: 8 as const, granularity }, layers: {} });
    // Per tensor every weight but the outlier rounds to 0: error energy Σw² ≈ 16383 against 1e8 → 37.9 dB,
    // above the default 20 dB floor (energy-weighted: the outlier holds the energy) …
    expect(applyPlan(model, plan('tensor'), table).summary.lowPrecision).toEqual([]);
    // … and below a 45 dB floor, where per channel (only the outlier's row is coarse: 56.2 dB) is not.
    const perTensor = applyPlan(model, plan('tensor'), table, { minTensorSqnrDb: 45 });
    expect(perTensor.summary.layers[0].bits).toBe('float');
    expect(perTensor.summary.layers[0].reason).toMatch(/weight "W": measured SQNR 37\.9 dB at 8 bits \(tensor\) is below the 45 dB floor/);
    expect(perTensor.summary.lowPrecision).toEqual([expect.objectContaining({ tensor: 'W', kind: 'weight', floorDb: 45 })]);
    const perChannel = applyPlan(model, plan('channel'), table, { minTensorSqnrDb: 45 });
    expect(perChannel.summary.layers[0].scheme).toBe('static-qdq');
    expect(perChannel.summary.lowPrecision).toEqual([]);
  });
});
