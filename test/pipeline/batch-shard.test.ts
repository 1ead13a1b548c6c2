import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchRecipeSchema } from '../../src/documents/index.js';
import { UsageError } from '../../src/errors.js';
import { loadModel, saveModel } from '../../src/onnx/index.js';
import { assignShards, externalDataFiles, modelBytes, RECIPE_WEIGHTS, recipeWeight, resolveShard } from '../../src/pipeline/batch-shard.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
beforeAll(() => {
  dir = makeTempDir('qtool-shard-');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const loads = (costs: number[], shardOf: number[], n: number) => {
  const l = new Array(n).fill(0);
  shardOf.forEach((s, i) => (l[s - 1] += costs[i]));
  return l;
};

describe('assignShards', () => {
  it('is the LPT greedy: costliest first, each to the least-loaded shard', () => {
    const jobs = [5, 8, 4, 7, 6].map((cost, i) => ({ id: `j${i}`, cost }));
    const s = assignShards(jobs, 2);
    // 8→1, 7→2, 6→2 (7 < 8), 5→1 (8 < 13), 4→1 (13 = 13: lowest shard) → loads 17 | 13
    expect(s).toEqual([1, 1, 1, 2, 2]);
    expect(loads([5, 8, 4, 7, 6], s, 2)).toEqual([17, 13]);
  });

  it('does not depend on the order of the jobs, only on ids and costs', () => {
    const jobs = Array.from({ length: 40 }, (_, i) => ({ id: `model-${i}`, cost: ((i * 7919) % 13) + 1 }));
    const a = assignShards(jobs, 4);
    const reversed = [...jobs].reverse();
    const b = assignShards(reversed, 4).reverse();
    expect(b).toEqual(a);
    // Equal costs: the tie is broken by the id hash, so a renamed job may move, the others keep theirs.
    const equal = Array.from({ length: 8 }, (_, i) => ({ id: `e${i}`, cost: 1 }));
    expect(assignShards(equal, 4).sort()).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
  });

  it('balances within the largest job of the optimum on skewed costs', () => {
    const costs = Array.from({ length: 100 }, (_, i) => Math.round(1e6 * Math.exp(-i / 15)) + 1000);
    const jobs = costs.map((cost, i) => ({ id: `m${i}`, cost }));
    for (const n of [2, 3, 5, 8]) {
      const l = loads(costs, assignShards(jobs, n), n);
      const total = costs.reduce((a, b) => a + b, 0);
      // LPT: makespan ≤ max(total/n + largest job, largest job).
      expect(Math.max(...l)).toBeLessThanOrEqual(total / n + costs[0]);
      expect(l.reduce((a, b) => a + b, 0)).toBe(total);
    }
    // Round-robin by file order would put the 5 costliest jobs on shard 1..5 of 5 in turn; LPT's spread is far smaller.
    const l5 = loads(costs, assignShards(jobs, 5), 5);
    const rr = loads(costs, costs.map((_, i) => (i % 5) + 1), 5);
    expect(Math.max(...l5) - Math.min(...l5)).toBeLessThan(Math.max(...rr) - Math.min(...rr));
  });

  it('more shards than jobs leaves shards empty; a bad count is a usage error', () => {
    expect(assignShards([{ id: 'a', cost: 1 }, { id: 'b', cost: 2 }], 4).sort()).toEqual([1, 2]);
    expect(() => assignShards([], 0)).toThrow(UsageError);
  });
});

describe('recipeWeight', () => {
  const recipe = (r: object) => BatchRecipeSchema.parse(r);
  it('adds the measured terms of the recipe', () => {
    const w = RECIPE_WEIGHTS;
    expect(recipeWeight(recipe({ mode: 'dynamic' }))).toBe(w.base);
    // dynamic with data: only the fidelity check uses it
    expect(recipeWeight(recipe({ mode: 'dynamic', data: 'x.npy' }))).toBe(w.base + w.fidelityPer64);
    expect(recipeWeight(recipe({ data: 'x.npy', samples: 512, method: 'entropy', fidelitySamples: 0 }))).toBe(w.base + 2 * w.calibrationPer256.entropy);
    expect(recipeWeight(recipe({ calib: 't.json', data: 'x.npy', fidelitySamples: 0 }))).toBe(w.base);
    expect(recipeWeight(recipe({ bits: 4, weightClip: 'mse' }))).toBe(w.base + w.weightClipMse);
    expect(recipeWeight(recipe({ data: 'x.npy', maxDrop: 1, fidelitySamples: 0 }))).toBe(w.base + w.calibrationPer256.minmax + w.maxDropSearch);
    expect(recipeWeight(recipe({ mode: 'dynamic' }), { data: 'v.npy', maxSamples: 200 })).toBeCloseTo(w.base + w.gatePer1000 * 0.2, 12);
  });
});

describe('modelBytes', () => {
  it('counts the model file and the external-data files it names; a missing model is 0', () => {
    const inline = path.join(dir, 'inline.onnx');
    fs.copyFileSync(FMNIST.mlp, inline);
    expect(modelBytes(inline)).toBe(fs.statSync(FMNIST.mlp).size);
    expect(externalDataFiles(inline)).toEqual([]);
    const ext = path.join(dir, 'ext.onnx');
    saveModel(loadModel(FMNIST.mlp), ext, { externalData: true });
    const data = externalDataFiles(ext);
    expect(data).toEqual([path.join(dir, 'ext.onnx.data')]);
    expect(modelBytes(ext)).toBe(fs.statSync(ext).size + fs.statSync(data[0]).size);
    expect(fs.statSync(ext).size).toBeLessThan(fs.statSync(data[0]).size / 10);
    expect(modelBytes(path.join(dir, 'none.onnx'))).toBe(0);
    fs.writeFileSync(path.join(dir, 'junk.onnx'), 'not a model');
    expect(modelBytes(path.join(dir, 'junk.onnx'))).toBe(11);
  });
});

describe('resolveShard', () => {
  it('reads --shard i/n (1-based) and --shards n with JOB_COMPLETION_INDEX (0-based)', () => {
    expect(resolveShard({})).toBeUndefined();
    expect(resolveShard({ shard: '2/4' })).toEqual({ index: 2, count: 4 });
    expect(resolveShard({ shard: ' 1 / 1 ' })).toEqual({ index: 1, count: 1 });
    expect(resolveShard({ shards: 4, env: { JOB_COMPLETION_INDEX: '0' } })).toEqual({ index: 1, count: 4 });
    expect(resolveShard({ shards: 4, env: { JOB_COMPLETION_INDEX: '3' } })).toEqual({ index: 4, count: 4 });
  });

  it('refuses bad specs with one-line usage errors', () => {
    expect(() => resolveShard({ shard: '0/4' })).toThrow(/numbered from 1; JOB_COMPLETION_INDEX 0 is shard 1\/4/);
    expect(() => resolveShard({ shard: '5/4' })).toThrow(/expected i in 1\.\.4, got 5/);
    expect(() => resolveShard({ shard: '1/0' })).toThrow(/at least 1/);
    expect(() => resolveShard({ shard: 'two' })).toThrow(/expected i\/n/);
    expect(() => resolveShard({ shard: '1/2', shards: 2 })).toThrow(UsageError);
    expect(() => resolveShard({ shards: 4, env: {} })).toThrow(/JOB_COMPLETION_INDEX/);
    expect(() => resolveShard({ shards: 4, env: { JOB_COMPLETION_INDEX: '4' } })).toThrow(/expected 0\.\.3/);
    expect(() => resolveShard({ shards: 4, env: { JOB_COMPLETION_INDEX: '-1' } })).toThrow(/non-negative integer/);
  });
});
