import { describe, expect, it } from 'vitest';
import { readNpy } from '../../src/data/index.js';
import { loadModel } from '../../src/onnx/index.js';
import { spearman } from '../../src/quant/index.js';
import { measureSensitivity } from '../../src/sensitivity/index.js';
import { makeTensor } from '../../src/tensor/index.js';
import { FMNIST } from '../helpers/paths.js';

const SAMPLES = 32;

describe('fmnist: measured single-layer losses vs Hessian-based Ω', () => {
  const x = readNpy(FMNIST.calibX);
  const batch = { input: makeTensor('float32', [SAMPLES, 1, 28, 28], (x.data as Float32Array).slice(0, SAMPLES * 784)) };
  for (const [name, file, floors] of [
    ['fmnist_cnn', FMNIST.cnn, { pairs: 0.8, int4: 0.3 }],
    ['fmnist_mlp', FMNIST.mlp, { pairs: 0.8, int4: 0.4 }],
  ] as const) {
    it(`${name}: Spearman rho(Ω, measured) is positive`, async () => {
      const { report } = await measureSensitivity(loadModel(file), { batches: [batch] }, { probes: 8, minProbes: 4, stabilityProbes: 1, bits: [4, 8], samples: SAMPLES });
      const omega: number[] = [];
      const measured: number[] = [];
      for (const l of report.layers) for (const e of l.bits) {
        omega.push(e.omega);
        measured.push(e.measuredLoss);
      }
      const at4 = report.layers.map((l) => l.bits.find((e) => e.bits === 4)!);
      const rhoPairs = spearman(omega, measured);
      const rho4 = spearman(at4.map((e) => e.omega), at4.map((e) => e.measuredLoss));
      const rhoProxy = spearman(at4.map((e) => e.reconstructionError ?? 0), at4.map((e) => e.measuredLoss));
      console.log(`${name}: ${report.layers.length} layers; Spearman rho(Ω, measured) over (layer, bits) pairs ${rhoPairs.toFixed(3)}, over layers at INT4 ${rho4.toFixed(3)}; layer-wise reconstruction vs measured at INT4 ${rhoProxy.toFixed(3)}`);
      expect(report.loss).toBe('kl');
      expect(rhoPairs).toBeGreaterThan(floors.pairs);
      expect(rho4).toBeGreaterThan(floors.int4);
      for (const l of report.layers) expect(l.hessian.trace).toBeGreaterThan(0);
    });
  }
});
