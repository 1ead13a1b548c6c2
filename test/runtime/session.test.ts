import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/index.js';
import { Session } from '../../src/runtime/index.js';
import { makeTensor } from '../../src/tensor/index.js';
import { FMNIST } from '../helpers/paths.js';

describe('Session.run', () => {
  it('returns outputs that stay valid after later runs (no copy is needed)', async () => {
    const s = await Session.open(loadModel(FMNIST.cnn));
    try {
      const a = await s.run({ input: makeTensor('float32', [2, 1, 28, 28], new Float32Array(2 * 784).fill(0.5)) });
      const kept = Array.from(a.logits.data as Float32Array);
      const b = await s.run({ input: makeTensor('float32', [2, 1, 28, 28], new Float32Array(2 * 784).fill(-1)) });
      expect(Array.from(a.logits.data as Float32Array)).toEqual(kept);
      expect(Array.from(b.logits.data as Float32Array)).not.toEqual(kept);
    } finally {
      await s.release();
    }
  });
});
