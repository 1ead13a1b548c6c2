import { describe, expect, it } from 'vitest';
import { readNpy } from '../../src/data/index.js';
import { loadModel, type Model } from '../../src/onnx/index.js';
import { applyPlan, uniformPlan } from '../../src/rewrite/index.js';
import { Session, type Feeds } from '../../src/runtime/index.js';
import { collectLayerInputStats, prepareGptq } from '../../src/sensitivity/index.js';
import { makeTensor, toFloat32, type Tensor } from '../../src/tensor/index.js';
import { DATA, FMNIST } from '../helpers/paths.js';

function batches(t: Tensor, name: string, bs: number, limit = Infinity): Feeds[] {
  const out: Feeds[] = [];
  const n = Math.min(t.dims[0], limit);
  const per = t.data.length / t.dims[0];
  for (let i = 0; i < n; i += bs) {
    const m = Math.min(bs, n - i);
    out.push({ [name]: makeTensor('float32', [m, ...t.dims.slice(1)], (t.data as Float32Array).slice(i * per, (i + m) * per)) });
  }
  return out;
}

async function outputs(m: Model, feeds: Feeds[]): Promise<Float32Array[]> {
  const s = await Session.open(m);
  try {
    const out: Float32Array[] = [];
    for (const f of feeds) out.push(toFloat32(Object.values(await s.run(f))[0]));
    return out;
  } finally {
    await s.release();
  }
}

function compare(ref: Float32Array[], got: Float32Array[], labels: ArrayLike<bigint>, classes: number): { mse: number; accuracy: number } {
  let se = 0, n = 0, ok = 0, rows = 0;
  ref.forEach((r, b) => {
    const g = got[b];
    for (let i = 0; i < r.length; i++) se += (g[i] - r[i]) ** 2;
    n += r.length;
    for (let row = 0; row < g.length / classes; row++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (g[row * classes + c] > g[row * classes + best]) best = c;
      if (BigInt(best) === labels[rows++]) ok++;
    }
  });
  return { mse: se / n, accuracy: ok / rows };
}

describe('GPTQ on the FMNIST MLP', () => {
  it('INT4 and INT8: lower layer and logit errors than round-to-nearest, accuracy drop no larger', async () => {
    const model = loadModel(FMNIST.mlp);
    const name = model.proto.graph!.input[0].name;
    const calib = batches(readNpy(`${DATA}/fmnist_calib_x.npy`), name, 128, 512);
    const val = batches(readNpy(`${DATA}/fmnist_val_x.npy`), name, 500);
    const labels = readNpy(`${DATA}/fmnist_val_y.npy`).data as BigInt64Array;
    const stats = await collectLayerInputStats(model, calib, { totalSamples: 512 });
    expect(stats.size).toBe(3);
    const ref = await outputs(model, val);
    const float = compare(ref, ref, labels, 10);
    for (const bits of [4, 8] as const) {
      const run = async (algorithm: 'rtn' | 'gptq') => {
        const plan = uniformPlan({ bits, mode: 'weight-only', algorithm });
        const hook = await prepareGptq(stats, [...stats.keys()], (layer, h) => void applyPlan(model, plan, undefined, { includeNodes: [layer], weightQuantizer: h, accuracyLevel: 0 }));
        const r = applyPlan(model, plan, undefined, { weightQuantizer: hook, accuracyLevel: 0 });
        return { r, c: compare(ref, await outputs(r.model, val), labels, 10) };
      };
      const rtn = await run('rtn');
      const gptq = await run('gptq');
      for (const l of gptq.r.summary.layers) {
        expect(l.algorithm).toBe('gptq');
        expect(l.reconstructionError!.after).toBeLessThan(0.5 * l.reconstructionError!.rtn);
      }
      expect(rtn.r.summary.layers.every((l) => l.algorithm === undefined)).toBe(true);
      expect(gptq.c.mse).toBeLessThan(0.5 * rtn.c.mse);
      expect(float.accuracy - gptq.c.accuracy).toBeLessThanOrEqual(float.accuracy - rtn.c.accuracy + 1e-9);
    }
  });

  it('a plan asking for GPTQ without layer statistics is a usage error', () => {
    const model = loadModel(FMNIST.mlp);
    expect(() => applyPlan(model, uniformPlan({ bits: 4, mode: 'weight-only', algorithm: 'gptq' }), undefined)).toThrow(/needs calibration data/);
  });
});
