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
