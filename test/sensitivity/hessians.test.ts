import { describe, expect, it } from 'vitest';
import { openDataset } from '../../src/data/index.js';
import { toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, loadModel, makeGraph, makeModel, makeNode, makeValueInfo, tensorToProto } from '../../src/onnx/index.js';
import { openSpilledSession } from '../../src/runtime/index.js';
import { Rng, makeTensor } from '../../src/tensor/index.js';
import { collectLayerInputStats } from '../../src/sensitivity/index.js';
import { FMNIST } from '../helpers/paths.js';

describe('collectLayerInputStats', () => {
  it('conv patch means from the graph (meanOnly) equal the JS im2col means; linear means and maxima too', async () => {
    for (const file of [FMNIST.cnn, FMNIST.mlp]) {
      const model = loadModel(file);
      const data = await openDataset(FMNIST.calibX, model, { maxSamples: 64 });
      const full = await collectLayerInputStats(model, data.batches(32), { totalSamples: 64, convRows: 2000 });
      const light = await collectLayerInputStats(model, data.batches(32), { meanOnly: true });
      expect([...light.keys()]).toEqual([...full.keys()]);
      for (const [id, f] of full) {
        const l = light.get(id)!;
        expect(l.second).toEqual([]);
        expect(f.second.length).toBe(f.view.groups);
        expect(l.rows).toBe(f.rows);
        f.mean.forEach((m, g) => m.forEach((v, j) => expect(l.mean[g][j]).toBeCloseTo(v, 5)));
        if (f.view.kind === 'linear') expect(Array.from(l.maxAbs!)).toEqual(Array.from(f.maxAbs!));
      }
    }
  });
});

describe('collectLayerInputStats: Σ x xᵀ through the engine', () => {
  it('equals the direct sum over rows, across batches and row-buffer flushes (64 rows per product)', async () => {
    const K = 40;
    const N = 2;
    const rng = new Rng(3);
    const w = Float32Array.from({ length: K * N }, () => rng.next() - 0.5);
    const graph = makeGraph({
      name: 'g',
      nodes: [makeNode({ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] })],
      inputs: [makeValueInfo('x', 'float32', ['n', K])],
      outputs: [makeValueInfo('y', 'float32', ['n', N])],
      initializers: [tensorToProto('w', makeTensor('float32', [K, N], w))],
    });
    const model = { proto: makeModel({ graph, opsets: { '': 13 } }), file: '<t>', baseDir: '.' };
    const rows = [100, 90];
    const feeds = rows.map((m) => ({ x: makeTensor('float32', [m, K], Float32Array.from({ length: m * K }, () => rng.next() * 2 - 1)) }));
    const s = [...(await collectLayerInputStats(model, feeds, { rowBufferBytes: 64 * 40 * 4 })).values()][0];
    expect(s.rows).toBe(190);
    const probe = [0, 1, 17, 39];
    for (const i of probe) {
      for (const j of probe) {
        let e = 0;
        for (const f of feeds) {
          const x = f.x.data as Float32Array;
          for (let r = 0; r < x.length / K; r++) e += x[r * K + i] * x[r * K + j];
        }
        expect(s.second[0][i * K + j]).toBeCloseTo(e / 190, 4);
      }
    }
  });
});

describe('openSpilledSession', () => {
  it('runs the model from a temp file and restores every tensor byte for byte', async () => {
    const rng = new Rng(1);
    const w = Float32Array.from({ length: 64 * 64 }, () => rng.next());
    const graph = makeGraph({
      name: 'g',
      nodes: [makeNode({ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] })],
      inputs: [makeValueInfo('x', 'float32', [1, 64])],
      outputs: [makeValueInfo('y', 'float32', [1, 64])],
      initializers: [tensorToProto('w', makeTensor('float32', [64, 64], w))],
    });
    const model = { proto: makeModel({ graph, opsets: { '': 13 } }), file: '<t>', baseDir: '.' };
    const before = toBinary(ModelProtoSchema, model.proto);
    const s = await openSpilledSession(model, { minBytes: 0 });
    expect(s.spilledBytes).toBe(64 * 64 * 4);
    expect(model.proto.graph!.initializer[0].rawData.length).toBe(0);
    const y = (await s.session.run({ x: makeTensor('float32', [1, 64], new Float32Array(64).fill(1)) })).y.data as Float32Array;
    await s.release();
    expect(toBinary(ModelProtoSchema, model.proto)).toEqual(before);
    let e = 0;
    for (let k = 0; k < 64; k++) e += w[k * 64 + 5];
    expect(y[5]).toBeCloseTo(e, 3);
  });
});
