import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelSize, tileBatch } from '../../src/bench/index.js';
import { loadModel, saveModel } from '../../src/onnx/index.js';
import { makeTensor } from '../../src/tensor/index.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('modelSize', () => {
  it('is the file size for a self-contained model', () => {
    const s = modelSize(loadModel(FMNIST.cnn));
    expect(s.modelBytes).toBe(fs.statSync(FMNIST.cnn).size);
    expect(s.externalDataBytes).toBe(0);
    expect(s.totalBytes).toBe(s.modelBytes);
  });
  it('adds external data files, each once', () => {
    const dir = makeTempDir();
    const file = path.join(dir, 'mlp.onnx');
    const r = saveModel(loadModel(FMNIST.mlp), file, { externalData: true });
    expect(r.externalFiles.length).toBeGreaterThan(0);
    const s = modelSize(loadModel(file));
    const ext = r.externalFiles.reduce((a, f) => a + fs.statSync(path.resolve(dir, f)).size, 0);
    expect(s.modelBytes).toBe(fs.statSync(file).size);
    expect(s.externalDataBytes).toBe(ext);
    expect(s.totalBytes).toBeGreaterThan(2_000_000);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('tileBatch', () => {
  it('repeats rows to fill a batch', () => {
    const t = makeTensor('float32', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6]));
    const b = tileBatch({ x: t }, 5).x;
    expect(b.dims).toEqual([5, 3]);
    expect(Array.from(b.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3]);
    expect(tileBatch({ x: t }, 2).x).toBe(t);
  });
});
