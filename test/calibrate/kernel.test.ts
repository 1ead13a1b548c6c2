import { afterEach, describe, expect, test } from 'vitest';
import { calibrate, calibrationKernel, makeObserver, resetCalibrationKernel, type ObserverSettings } from '../../src/calibrate/index.js';
import { openDataset } from '../../src/data/index.js';
import type { CalibrationTable, TensorRange } from '../../src/documents/index.js';
import { loadModel } from '../../src/onnx/index.js';
import { Rng } from '../../src/tensor/index.js';
import { FMNIST } from '../helpers/paths.js';

const S: ObserverSettings = { percentile: 99.9, symmetric: false, bins: 2048, movingAverage: 0 };

function withPath<T>(wasm: boolean, f: () => T): T {
  const before = process.env.QTOOL_WASM;
  process.env.QTOOL_WASM = wasm ? '1' : '0';
  resetCalibrationKernel();
  try {
    return f();
  } finally {
    if (before === undefined) delete process.env.QTOOL_WASM;
    else process.env.QTOOL_WASM = before;
    resetCalibrationKernel();
  }
}

function observeBoth(method: 'minmax' | 'percentile' | 'entropy' | 'mse', batches: Float32Array[]): [TensorRange, TensorRange] {
  const run = () => {
    const o = makeObserver(method, S);
    for (const b of batches) o.update(b);
    return o.result();
  };
  return [withPath(false, run), withPath(true, run)];
}

/** Equal field by field; meanSquare (Σx² summed in another order) to 1e-12 relative. */
function expectSameEntry(js: TensorRange, wasm: TensorRange): void {
  const { meanSquare: a, ...restJs } = js;
  const { meanSquare: b, ...restWasm } = wasm;
  expect(restWasm).toStrictEqual(restJs);
  expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-12 * Math.abs(a));
}

function relu(rng: Rng, n: number, scale = 3): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.max(0, rng.normal() * scale);
  return x;
}

afterEach(() => resetCalibrationKernel());

describe('WebAssembly calibration kernel', () => {
  test('is built (npm run build) and loads here', () => {
    expect(withPath(true, () => calibrationKernel())).toBeDefined();
    expect(withPath(false, () => calibrationKernel())).toBeUndefined();
  });

  const rng = new Rng(7);
  const cases: Record<string, Float32Array[]> = {
    'gaussian, several batches (window slides and coarsens)': [0.1, 1, 30].map((s) => Float32Array.from({ length: 50_001 }, () => rng.normal() * s)),
    'relu outputs (runs of +0)': [relu(rng, 40_000), relu(rng, 40_003, 10)],
    'negative zeros and zeros at the extremes': [Float32Array.from({ length: 9_999 }, (_, i) => (i % 3 === 0 ? -0 : i % 3 === 1 ? 0 : -Math.abs(rng.normal())))],
    'only −0 and +0': [Float32Array.from({ length: 8_192 }, (_, i) => (i % 2 ? -0 : 0)), Float32Array.from({ length: 8_192 }, () => -0)],
    'a constant batch, then a spread one': [new Float32Array(10_000).fill(2.5), Float32Array.from({ length: 10_000 }, () => rng.normal())],
    'NaN, ±Inf and 1e30 mask fills (careful path)': [Float32Array.from({ length: 20_000 }, (_, i) => (i === 5 ? NaN : i === 77 ? Infinity : i === 99 ? -3e38 : i === 1000 ? -Infinity : rng.normal()))],
    'tiny and huge magnitudes': [Float32Array.from({ length: 12_345 }, () => rng.normal() * 1e-30), Float32Array.from({ length: 12_345 }, () => rng.normal() * 1e20)],
    'odd lengths (scalar tails)': [Float32Array.from({ length: 4_099 }, () => rng.normal()), Float32Array.from({ length: 4_103 }, () => rng.normal() - 7)],
  };
  for (const [name, batches] of Object.entries(cases)) {
    for (const method of ['minmax', 'percentile', 'entropy', 'mse'] as const) {
      test(`${method}: ${name}: the same entry as the JavaScript loops`, () => {
        const [js, wasm] = observeBoth(method, batches);
        expectSameEntry(js, wasm);
      });
    }
  }

  test('zero signs follow Math.min/Math.max', () => {
    const [js, wasm] = observeBoth('minmax', [Float32Array.from({ length: 8_200 }, (_, i) => (i === 4_100 ? -0 : i % 2 ? 0 : 1))]);
    expect(Object.is(js.min, -0)).toBe(true);
    expect(Object.is(wasm.min, -0)).toBe(true);
    const [js2, wasm2] = observeBoth('minmax', [Float32Array.from({ length: 8_200 }, (_, i) => (i === 17 ? 0 : i % 2 ? -0 : -1))]);
    expect(Object.is(js2.max, 0)).toBe(true);
    expect(Object.is(wasm2.max, 0)).toBe(true);
  });

  test('calibrate(): the whole fmnist_cnn table is the same with and without the kernel (percentile)', async () => {
    const model = loadModel(FMNIST.cnn);
    const table = async (wasm: boolean): Promise<CalibrationTable> => {
      const before = process.env.QTOOL_WASM;
      process.env.QTOOL_WASM = wasm ? '1' : '0';
      resetCalibrationKernel();
      try {
        const ds = await openDataset(FMNIST.calibX, model, { maxSamples: 64 });
        return await calibrate(model, ds, { method: 'percentile', batchSize: 32, maxSamples: 64 });
      } finally {
        if (before === undefined) delete process.env.QTOOL_WASM;
        else process.env.QTOOL_WASM = before;
        resetCalibrationKernel();
      }
    };
    const js = await table(false);
    const wasm = await table(true);
    expect(Object.keys(wasm.tensors)).toEqual(Object.keys(js.tensors));
    for (const name of Object.keys(js.tensors)) {
      const { meanSquare: a, ...restJs } = js.tensors[name];
      const { meanSquare: b, ...restWasm } = wasm.tensors[name];
      expect(restWasm, name).toStrictEqual(restJs);
      // The JavaScript path takes Σx² from onnxruntime's float32 ReduceSumSquare; the kernel sums in float64.
      expect(Math.abs(a - b), name).toBeLessThanOrEqual(1e-4 * Math.abs(a));
    }
  });
});
