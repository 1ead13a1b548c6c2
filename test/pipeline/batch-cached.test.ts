/** runBatch with a result cache: hits, --force, a damaged entry, a cache that cannot be written. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheKey, cacheKeyInput, entryDir } from '../../src/pipeline/batch-cache.js';
import { loadBatchJobs, runBatch } from '../../src/pipeline/index.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
let jobsFile: string;
beforeAll(() => {
  dir = makeTempDir('qtool-batch-cached-');
  jobsFile = path.join(dir, 'jobs.json');
  const recipe = { mode: 'dynamic', fidelitySamples: 0 };
  fs.writeFileSync(
    jobsFile,
    JSON.stringify({
      jobs: [
        { id: 'first', model: FMNIST.mlp, output: 'out/first.onnx', recipe },
        { id: 'second', model: FMNIST.mlp, output: 'out/second.onnx', recipe },
      ],
    }),
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const clearOutputs = () => fs.rmSync(path.join(dir, 'out'), { recursive: true, force: true });
const bytes = (f: string) => fs.readFileSync(path.join(dir, 'out', f));

describe('runBatch --cache', () => {
  it('the second job with the same content is a hit with identical bytes; --force recomputes; a damaged entry is recomputed, not served', async () => {
    const cacheDir = path.join(dir, 'cache');
    const a = await runBatch(jobsFile, { cache: cacheDir });
    expect(a.jobs.map((j) => [j.status, j.cache])).toEqual([
      ['ok', 'stored'],
      ['ok', 'hit'],
    ]);
    expect(a.jobs[1].note).toMatch(/copied from the cache/);
    expect(a.jobs[1].outputBytes).toBe(a.jobs[0].outputBytes);
    expect(bytes('second.onnx').equals(bytes('first.onnx'))).toBe(true);

    clearOutputs();
    const forced = await runBatch(jobsFile, { cache: cacheDir, force: true });
    expect(forced.jobs.map((j) => [j.status, j.cache])).toEqual([
      ['ok', 'stored'],
      ['ok', 'stored'],
    ]);

    // Flip one byte of the stored model: the next run must not serve it.
    const key = cacheKey(cacheKeyInput(loadBatchJobs(jobsFile)[0]));
    const stored = path.join(entryDir(cacheDir, key), 'model.onnx');
    const good = fs.readFileSync(stored);
    const bad = Buffer.from(good);
    bad[bad.length >> 1] ^= 0xff;
    fs.writeFileSync(stored, bad);
    clearOutputs();
    const c = await runBatch(jobsFile, { cache: cacheDir });
    expect(c.jobs.map((j) => [j.status, j.cache])).toEqual([
      ['ok', 'stored'],
      ['ok', 'hit'],
    ]);
    expect(bytes('first.onnx').equals(good)).toBe(true);
    expect(bytes('second.onnx').equals(good)).toBe(true);
  }, 120_000);

  it('a cache that cannot be written costs a note, not the job', async () => {
    const cacheDir = path.join(dir, 'cache-broken');
    fs.mkdirSync(cacheDir);
    const key = cacheKey(cacheKeyInput(loadBatchJobs(jobsFile)[0]));
    fs.writeFileSync(path.join(cacheDir, key.slice(0, 2)), 'a file where the entry folder goes');
    clearOutputs();
    const s = await runBatch(jobsFile, { cache: cacheDir });
    expect(s.jobs.map((j) => j.status)).toEqual(['ok', 'ok']);
    expect(s.jobs[0].cache).toBeUndefined();
    expect(s.jobs[0].note).toMatch(/not cached: .*cannot store a result/);
    expect(fs.existsSync(path.join(dir, 'out', 'first.onnx'))).toBe(true);
  }, 120_000);
});
