import { describe, expect, test } from 'vitest';
import { loadModel, type Model } from '../../src/onnx/index.js';
import { equalizationPairs, equalizeConvPairs, foldConvAffine } from '../../src/rewrite/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor, Rng } from '../../src/tensor/index.js';
import { REAL_MODELS } from '../helpers/paths.js';

async function outputs(m: Model, x: Float32Array): Promise<Float32Array> {
  const s = await Session.open(m, { optimization: 'disabled' });
  try {
    return Object.values(await s.run({ x: makeTensor('float32', [1, 3, 48, 320], x) }))[0].data as Float32Array;
  } finally {
    await s.release();
  }
}

describe('cross-layer equalisation (Conv → homogeneous ops → Conv)', () => {
  // PaddleOCR v4 rec after the conv-folding pass: its depthwise pairs have no BN left between them.
  const rec = foldConvAffine(loadModel(REAL_MODELS.paddleRec)).model;

  test('pairs cross only positively homogeneous ops; the rescaled model computes the same function', async () => {
    const pairs = equalizationPairs(rec);
    expect(pairs.length).toBeGreaterThan(0);
    const homogeneous = new Set(['Relu', 'LeakyRelu', 'PRelu', 'MaxPool', 'AveragePool', 'Identity', 'Dropout']);
    for (const p of pairs) for (const op of p.between) expect(homogeneous.has(op), `${p.first.name} → ${p.second.name} crosses ${op}`).toBe(true);
    // Per-channel ranges spread over 3 decades (as a BN output feeding a depthwise conv has), forced on.
    const rng = new Rng(5);
    const stats = (t: string) => {
      const p = pairs.find((q) => q.tensor === t)!;
      const max = Float64Array.from({ length: p.channels }, () => Math.exp(6 * rng.next() - 3));
      return { count: 1, min: max.map((v) => -v), max, sumSquares: max.map((v) => v * v) };
    };
    const r = equalizeConvPairs(rec, stats, { pairs, force: true });
    expect(r.records.filter((x) => x.applied).length).toBe(pairs.length);
    const input = new Rng(3).fillUniform(new Float32Array(3 * 48 * 320), -1, 1);
    const [a, b] = [await outputs(rec, input), await outputs(r.model, input)];
    let maxErr = 0;
    for (let i = 0; i < a.length; i++) maxErr = Math.max(maxErr, Math.abs(a[i] - b[i]));
    expect(maxErr).toBeLessThan(1e-4);
  });
});
