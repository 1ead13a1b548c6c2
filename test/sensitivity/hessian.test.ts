import { describe, expect, it } from 'vitest';
import { floatTensorProto, makeGraph, makeModel, makeNode, makeValueInfo, type Model, type NodeProto } from '../../src/onnx/index.js';
import { makeTensor, Rng } from '../../src/tensor/index.js';
import { SensitivityReportSchema } from '../../src/documents/index.js';
import { hutchinsonTrace, measureSensitivity } from '../../src/sensitivity/index.js';

function model(nodes: NodeProto[], inputDims: (number | null)[], outputDims: (number | null)[], inits: ReturnType<typeof floatTensorProto>[]): Model {
  const graph = makeGraph({ name: 'g', nodes, inputs: [makeValueInfo('x', 'float32', inputDims)], outputs: [makeValueInfo('y', 'float32', outputDims)], initializers: inits });
  return { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'built.onnx', baseDir: '.' };
}

describe('Hutchinson trace vs closed form (linear model, MSE loss)', () => {
  it('estimates tr(H) = 2/N Σ‖x‖² within 5%', async () => {
    const rng = new Rng(7);
    const N = 32;
    const K = 24;
    const O = 6;
    const w = rng.fillNormal(new Float32Array(K * O), 0.3);
    const m = model([makeNode({ opType: 'MatMul', name: 'fc', inputs: ['x', 'W'], outputs: ['y'] })], [null, K], [null, O], [floatTensorProto('W', [K, O], w)]);
    const x = rng.fillNormal(new Float32Array(N * K));
    // Columns with different scales make H far from a multiple of the identity.
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) x[n * K + k] *= 0.2 + (k % 5);
    let sq = 0;
    for (const v of x) sq += v * v;
    const closed = (2 / N) * sq;
    const { report } = await measureSensitivity(
      m,
      { batches: [{ x: makeTensor('float32', [N, K], x) }] },
      { loss: 'mse', probes: 64, minProbes: 8, relStderr: 0.01, bits: [4, 8], samples: N },
    );
    SensitivityReportSchema.parse(report);
    const layer = report.layers[0];
    const rel = Math.abs(layer.hessian.trace - closed) / closed;
    console.log(`hessian closed form ${closed.toFixed(4)}, estimate ${layer.hessian.trace.toFixed(4)} ± ${layer.hessian.stderr.toFixed(4)} (${layer.hessian.probes} probes), rel err ${(100 * rel).toFixed(2)}%, eps stability ${layer.hessian.stabilityRelDiff}`);
    expect(rel).toBeLessThan(0.05);
    expect(layer.hessian.isStable).toBe(true);
    // The layer-wise proxy is exact here: tr(2 E[x xᵀ]) over rows equals the same closed form.
    expect(layer.layerwise!.traceH).toBeCloseTo(closed, 2);
    // With MSE over N·O outputs, the measured loss of a quantized weight is Σ_rows Δwᵀ E[x xᵀ] Δw / O.
    for (const e of layer.bits) expect(e.measuredLoss * O).toBeCloseTo(e.reconstructionError!, 5);
  });

  it('stops at the standard-error rule and reports the stability check', async () => {
    let calls = 0;
    const w0 = new Float32Array(100).fill(0.5);
    // Quadratic loss L = Σ d_i (w_i − w0_i)² with known trace 2 Σ d_i.
    const d = Float64Array.from({ length: 100 }, (_, i) => 1 + (i % 3));
    const est = await hutchinsonTrace({
      w0,
      baseLoss: 0,
      loss: async (w) => {
        calls++;
        let s = 0;
        for (let i = 0; i < w.length; i++) s += d[i] * (w[i] - w0[i]) ** 2;
        return s;
      },
      seed: 1,
      maxProbes: 50,
      minProbes: 4,
      relStderr: 0.05,
      epsilonRel: 0.01,
      stabilityProbes: 2,
    });
    // A diagonal Hessian makes every Rademacher probe exact: zero variance, so the rule stops at minProbes.
    expect(est.probes).toBe(4);
    expect(est.trace).toBeCloseTo(2 * d.reduce((a, b) => a + b, 0), 1);
    expect(est.isStable).toBe(true);
    expect(calls).toBe(2 * 4 + 2 * 2);
  });
});

describe('layer-wise proxy: im2col view of Conv', () => {
  for (const c of [
    { name: 'grouped, strided, padded', C: 4, O: 6, group: 2, k: 3, strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1] },
    { name: 'depthwise, dilated', C: 4, O: 4, group: 4, k: 3, strides: [1, 1], pads: [2, 2, 2, 2], dilations: [2, 2] },
    { name: 'SAME_UPPER', C: 3, O: 5, group: 1, k: 2, strides: [2, 2], autoPad: 'SAME_UPPER', dilations: [1, 1] },
  ]) {
    it(`reconstruction error equals O × output MSE (${c.name})`, async () => {
      const rng = new Rng(3);
      const N = 3;
      const H = 7;
      const Wd = 6;
      const w = rng.fillNormal(new Float32Array(c.O * (c.C / c.group) * c.k * c.k), 0.5);
      const attrs: Record<string, number | number[] | string> = { group: c.group, strides: c.strides, dilations: c.dilations, kernel_shape: [c.k, c.k] };
      if (c.pads) attrs.pads = c.pads;
      if (c.autoPad) attrs.auto_pad = c.autoPad;
      const m = model(
        [makeNode({ opType: 'Conv', name: 'conv', inputs: ['x', 'W', 'B'], outputs: ['y'], attrs })],
        [null, c.C, H, Wd],
        [null, c.O, null, null],
        [floatTensorProto('W', [c.O, c.C / c.group, c.k, c.k], w), floatTensorProto('B', [c.O], rng.fillNormal(new Float32Array(c.O)))],
      );
      const x = rng.fillNormal(new Float32Array(N * c.C * H * Wd));
      const { report } = await measureSensitivity(
        m,
        { batches: [{ x: makeTensor('float32', [N, c.C, H, Wd], x) }] },
        { loss: 'mse', probes: 2, minProbes: 2, stabilityProbes: 0, bits: [4, 8], leaveOneOut: false },
      );
      const layer = report.layers[0];
      expect(layer.layerwise!.covariance).toBe('full');
      for (const e of layer.bits) expect(e.reconstructionError!).toBeCloseTo(e.measuredLoss * c.O, 5);
    });
  }
});
