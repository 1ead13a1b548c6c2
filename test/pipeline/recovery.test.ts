import { describe, expect, it } from 'vitest';
import { calibrate } from '../../src/calibrate/index.js';
import { openDataset, readNpy } from '../../src/data/index.js';
import { loadModel, type Model } from '../../src/onnx/index.js';
import { prepareRecovery } from '../../src/pipeline/recovery.js';
import { applyPlan, uniformPlan } from '../../src/rewrite/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor, toFloat32 } from '../../src/tensor/index.js';
import { FMNIST } from '../helpers/paths.js';

async function top1(m: Model): Promise<number> {
  const x = readNpy(FMNIST.valX);
  const y = readNpy(FMNIST.valY).data as BigInt64Array;
  const s = await Session.open(m);
  const name = m.proto.graph!.input[0].name;
  let ok = 0;
  try {
    for (let i = 0; i < x.dims[0]; i += 500) {
      const n = Math.min(500, x.dims[0] - i);
      const out = toFloat32(Object.values(await s.run({ [name]: makeTensor('float32', [n, 1, 28, 28], (x.data as Float32Array).slice(i * 784, (i + n) * 784)) }))[0]);
      for (let r = 0; r < n; r++) {
        let best = 0;
        for (let c = 1; c < 10; c++) if (out[r * 10 + c] > out[r * 10 + best]) best = c;
        if (BigInt(best) === y[i + r]) ok++;
      }
    }
  } finally {
    await s.release();
  }
  return ok / x.dims[0];
}

describe('prepareRecovery', () => {
  it('FMNIST CNN static INT8: bias correction (auto) measures better, is kept, and the top-1 drop is at most 0.1 point', async () => {
    const model = loadModel(FMNIST.cnn);
    const data = await openDataset(FMNIST.calibX, model);
    const table = await calibrate(model, data, { method: 'minmax' });
    const plan = uniformPlan({ bits: 8, mode: 'static' });
    const rec = await prepareRecovery(model, plan, table, {}, () => data.batches(64), { algorithm: 'rtn' });
    expect(rec.biasCorrection?.used).toBe(true);
    expect(rec.biasCorrection!.mseWith!).toBeLessThan(rec.biasCorrection!.mseWithout!);
    const float = await top1(model);
    const plain = await top1(applyPlan(model, plan, table).model);
    const corrected = await top1(applyPlan(rec.model, rec.plan, table, rec.rewriteOptions).model);
    expect(float - corrected).toBeLessThanOrEqual(0.001 + 1e-9);
    expect(corrected).toBeGreaterThanOrEqual(plain);
  });

  it('AWQ is refused for static mode (its scaling would invalidate the calibrated ranges)', async () => {
    const model = loadModel(FMNIST.mlp);
    const data = await openDataset(FMNIST.calibX, model, { maxSamples: 16 });
    await expect(prepareRecovery(model, uniformPlan({ bits: 8, mode: 'static' }), undefined, {}, () => data.batches(16), { algorithm: 'awq' })).rejects.toThrow(/weight-only or dynamic/);
  });
});

describe('INT4 symmetry by measurement', () => {
  it('each layer gets the block form with the lower measured layer error', async () => {
    const model = loadModel(FMNIST.mlp);
    const data = await openDataset(FMNIST.calibX, model, { maxSamples: 128 });
    const plan = uniformPlan({ bits: 4, mode: 'weight-only' });
    const rec = await prepareRecovery(model, plan, undefined, {}, () => data.batches(64), { algorithm: 'rtn' });
    const { chooseInt4Symmetry, collectLayerInputStats } = await import('../../src/sensitivity/index.js');
    const choices = chooseInt4Symmetry(model, await collectLayerInputStats(model, data.batches(64)));
    expect(choices).toHaveLength(3);
    for (const c of choices) {
      expect(rec.plan.layers[c.layer].symmetric).toBe(c.errorSymmetric <= c.errorAsymmetric);
      expect(Math.min(c.errorSymmetric, c.errorAsymmetric)).toBeGreaterThan(0);
    }
    expect(rec.notes.some((n) => n.startsWith('int4 blocks:'))).toBe(true);
    // A plan that says symmetric is left alone.
    const fixed = await prepareRecovery(model, uniformPlan({ bits: 4, mode: 'weight-only', symmetric: true }), undefined, {}, () => data.batches(64), { algorithm: 'rtn' });
    expect(fixed.plan.layers).toEqual({});
  });
});

describe('--smooth (SmoothQuant)', () => {
  it('folds into the LayerNorm exactly and lowers the dynamic INT8 error on a model with an outlier activation channel', async () => {
    const { makeGraph, makeModel, makeNode, makeValueInfo, tensorToProto } = await import('../../src/onnx/index.js');
    const { Rng } = await import('../../src/tensor/index.js');
    const rng = new Rng(9);
    const K = 32;
    const N = 16;
    const gamma = Float32Array.from({ length: K }, (_, j) => (j === 3 ? 40 : 1 + 0.1 * rng.normal()));
    const graph = makeGraph({
      name: 'g',
      nodes: [
        makeNode({ opType: 'LayerNormalization', inputs: ['x', 'gamma', 'beta'], outputs: ['h'], name: 'ln', attrs: { axis: -1 } }),
        makeNode({ opType: 'MatMul', inputs: ['h', 'w'], outputs: ['y'], name: 'fc' }),
      ],
      inputs: [makeValueInfo('x', 'float32', ['n', K])],
      outputs: [makeValueInfo('y', 'float32', ['n', N])],
      initializers: [
        tensorToProto('gamma', makeTensor('float32', [K], gamma)),
        tensorToProto('beta', makeTensor('float32', [K], Float32Array.from({ length: K }, () => 0.1 * rng.normal()))),
        tensorToProto('w', makeTensor('float32', [K, N], Float32Array.from({ length: K * N }, () => 0.2 * rng.normal()))),
      ],
    });
    const model: Model = { proto: makeModel({ graph, opsets: { '': 17 } }), file: '<t>', baseDir: '.' };
    const feeds = [0, 1].map(() => ({ x: makeTensor('float32', [64, K], Float32Array.from({ length: 64 * K }, () => rng.normal())) }));
    const run = async (m: Model) => {
      const s = await Session.open(m);
      const out = [];
      for (const f of feeds) out.push(toFloat32((await s.run(f)).y));
      await s.release();
      return out;
    };
    const err = (a: Float32Array[], b: Float32Array[]) => a.reduce((t, x, i) => t + x.reduce((u, v, j) => u + (v - b[i][j]) ** 2, 0), 0);
    const plan = uniformPlan({ bits: 8, mode: 'dynamic' });
    const ref = await run(model);
    const plain = await prepareRecovery(model, plan, undefined, {}, () => feeds, { algorithm: 'rtn' });
    const smooth = await prepareRecovery(model, plan, undefined, {}, () => feeds, { algorithm: 'rtn', smooth: 0.5 });
    expect(smooth.folds.map((f) => f.into)).toEqual(['layernorm']);
    expect(smooth.notes[0]).toMatch(/smoothquant α 0.5: 1 inputs scaled, folded into 1 LayerNormalization/);
    // Exact in float, and the int8 error falls.
    const sm = await run(smooth.model);
    expect(err(ref, sm) / err(ref, ref.map((x) => new Float32Array(x.length)))).toBeLessThan(1e-10);
    const ePlain = err(ref, await run(applyPlan(plain.model, plain.plan, undefined, plain.rewriteOptions).model));
    const eSmooth = err(ref, await run(applyPlan(smooth.model, smooth.plan, undefined, smooth.rewriteOptions).model));
    expect(eSmooth).toBeLessThan(0.5 * ePlain);
    // auto measures the same and keeps it; off is the plain path.
    const auto = await prepareRecovery(model, plan, undefined, {}, () => feeds, { algorithm: 'rtn', smooth: 'auto' });
    expect(auto.smooth).toMatchObject({ used: true, alpha: 0.5 });
    expect(auto.smooth!.mseWith!).toBeLessThan(auto.smooth!.mseWithout!);
    expect(auto.notes[0]).toMatch(/smoothquant auto on \(α 0.5\)/);
    expect(auto.folds.map((f) => f.into)).toEqual(['layernorm']);
    const off = await prepareRecovery(model, plan, undefined, {}, () => feeds, { algorithm: 'rtn', smooth: 'off' });
    expect(off.model).toBe(model);
    expect(off.folds).toEqual([]);
  });
});
