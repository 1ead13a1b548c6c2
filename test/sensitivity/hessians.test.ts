import { describe, expect, it } from 'vitest';
import { openDataset } from '../../src/data/index.js';
import { loadModel } from '../../src/onnx/index.js';
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
