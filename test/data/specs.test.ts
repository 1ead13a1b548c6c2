import { describe, expect, it } from 'vitest';
import { hasBatchAxis, modelInputSpecs } from '../../src/data/index.js';
import { loadModel } from '../../src/onnx/index.js';
import { FMNIST, REAL_MODELS } from '../helpers/paths.js';

describe('hasBatchAxis', () => {
  it('stacks samples along a symbolic or size-1 first axis of rank >= 2', () => {
    expect(hasBatchAxis({ name: 'x', dtype: 'float32', dims: ['N', 1, 28, 28] })).toBe(true);
    expect(hasBatchAxis({ name: 'x', dtype: 'float32', dims: [null, 3] })).toBe(true);
    expect(hasBatchAxis({ name: 'x', dtype: 'float32', dims: [1, 3, 224, 224] })).toBe(true);
  });

  it('has no batch axis where the first dim is fixed above 1 (LSTM states [2, batch, 64]) or for scalars', () => {
    expect(hasBatchAxis({ name: 'h', dtype: 'float32', dims: [2, 'batch', 64] })).toBe(false);
    expect(hasBatchAxis({ name: 'sr', dtype: 'int64', dims: [] })).toBe(false);
    expect(hasBatchAxis({ name: 'ids', dtype: 'int64', dims: ['batch'] })).toBe(true);
    expect(hasBatchAxis({ name: 'v', dtype: 'float32', dims: [16] })).toBe(false);
  });

  it('on real models: fmnist input is batched; Silero state inputs h/c are not', () => {
    const fm = modelInputSpecs(loadModel(FMNIST.cnn));
    expect(fm.map(hasBatchAxis)).toEqual([true]);
    const silero = Object.fromEntries(modelInputSpecs(loadModel(REAL_MODELS.silero)).map((s) => [s.name, hasBatchAxis(s)]));
    expect(silero).toEqual({ input: true, sr: false, h: false, c: false });
  });
});
