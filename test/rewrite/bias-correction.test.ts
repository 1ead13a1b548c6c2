import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { calibrate } from '../../src/calibrate/index.js';
import { openDataset, writeNpy } from '../../src/data/index.js';
import { floatTensorProto, makeGraph, makeModel, makeNode, makeValueInfo, type Model } from '../../src/onnx/index.js';
import { applyPlan, uniformPlan } from '../../src/rewrite/index.js';
import { Session } from '../../src/runtime/index.js';
import { collectLayerInputStats } from '../../src/sensitivity/index.js';
import { makeTensor, Rng, toFloat32 } from '../../src/tensor/index.js';
import { makeTempDir } from '../helpers/tmp.js';

const N = 64;

function layerModel(kind: 'conv' | 'gemm', rng: Rng): { model: Model; xDims: number[] } {
  // Weights with a few large entries per channel: coarse per-channel int8 steps, large rounding shifts.
  const w = (n: number) => Float32Array.from({ length: n }, (_, i) => rng.normal() * (i % 13 === 0 ? 2 : 0.1));
  if (kind === 'conv') {
    const graph = makeGraph({
      name: 'conv',
      nodes: [makeNode({ opType: 'Conv', name: 'c', inputs: ['x', 'W', 'B'], outputs: ['y'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } })],
      inputs: [makeValueInfo('x', 'float32', ['n', 4, 6, 6])],
      outputs: [makeValueInfo('y', 'float32', ['n', 8, 6, 6])],
      initializers: [floatTensorProto('W', [8, 4, 3, 3], w(288)), floatTensorProto('B', [8], w(8))],
    });
    return { model: { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'conv.onnx', baseDir: '.' }, xDims: [N, 4, 6, 6] };
  }
  const graph = makeGraph({
    name: 'gemm',
    nodes: [makeNode({ opType: 'Gemm', name: 'g', inputs: ['x', 'W', 'B'], outputs: ['y'], attrs: { transB: 1 } })],
    inputs: [makeValueInfo('x', 'float32', ['n', 40])],
    outputs: [makeValueInfo('y', 'float32', ['n', 12])],
    initializers: [floatTensorProto('W', [12, 40], w(480)), floatTensorProto('B', [12], w(12))],
  });
  return { model: { proto: makeModel({ graph, opsets: { '': 17 } }), file: 'gemm.onnx', baseDir: '.' }, xDims: [N, 40] };
}

/** Per output channel: mean over the data of (quantized − float) output. */
async function meanOutputError(float: Model, quant: Model, x: Float32Array, xDims: number[], channels: number): Promise<Float64Array> {
  const run = async (m: Model) => {
    const s = await Session.open(m);
    try {
      return toFloat32((await s.run({ x: makeTensor('float32', xDims, x) })).y);
    } finally {
      await s.release();
    }
  };
  const [a, b] = [await run(float), await run(quant)];
  const inner = a.length / N / channels;
  const out = new Float64Array(channels);
  for (let i = 0; i < a.length; i++) out[Math.floor(i / inner) % channels] += (b[i] - a[i]) / (N * inner);
  return out;
}

describe('bias correction (static INT8)', () => {
  it.each(['conv', 'gemm'] as const)('%s: removes the mean output shift the weight rounding causes on the calibration set', async (kind) => {
    const rng = new Rng(kind === 'conv' ? 3 : 4);
    const { model, xDims } = layerModel(kind, rng);
    // Non-centred inputs: E[x] ≠ 0, so (Ŵ − W)·E[x] shifts every output channel.
    const x = Float32Array.from({ length: xDims.reduce((p, d) => p * d, 1) }, () => 0.3 + rng.next());
    const dir = makeTempDir();
    const file = path.join(dir, 'x.npy');
    writeNpy(file, makeTensor('float32', xDims, x));
    const table = await calibrate(model, await openDataset(file, model), { method: 'minmax' });
    const stats = await collectLayerInputStats(model, [{ x: makeTensor('float32', xDims, x) }], { totalSamples: N, convRows: 1e6 });
    const plan = uniformPlan({ bits: 8, mode: 'static' });
    const plain = applyPlan(model, plan, table);
    const corrected = applyPlan(model, plan, table, { layerInputMeans: (id) => stats.get(id)?.mean });
    const channels = kind === 'conv' ? 8 : 12;
    const before = await meanOutputError(model, plain.model, x, xDims, channels);
    const after = await meanOutputError(model, corrected.model, x, xDims, channels);
    const maxAbs = (v: Float64Array) => Math.max(...Array.from(v, Math.abs));
    expect(maxAbs(before)).toBeGreaterThan(1e-3);
    // What remains is activation rounding noise and the int32 bias step, not the weight shift.
    expect(maxAbs(after)).toBeLessThan(0.1 * maxAbs(before));
  });
});
