import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringifyDocument, type BatchJobResult, type BatchSummary } from '../../src/documents/index.js';
import { InputError } from '../../src/errors.js';
import { mergeBatchSummaries } from '../../src/pipeline/batch-merge.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
beforeAll(() => {
  dir = makeTempDir('qtool-merge-');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Jobs a..e of one jobs file; shard 1 has a, c, e; shard 2 has b, d.
const ASSIGNMENT = ['a', 'b', 'c', 'd', 'e'].map((id, i) => ({ id, shard: (i % 2) + 1, costEstimate: 10 * (i + 1) }));
const result = (id: string, status: BatchJobResult['status'] = 'ok'): BatchJobResult => ({ id, model: `${id}.onnx`, output: `out/${id}.onnx`, status, durationMs: 100, outputBytes: 1000, recipeHash: `h-${id}` });
const shard = (index: number, jobs: BatchJobResult[], over: Partial<NonNullable<BatchSummary['shard']>> = {}): BatchSummary => ({
  kind: 'qtool.batch-summary',
  version: 1,
  jobsFile: 'jobs.json',
  concurrency: index,
  shard: { index, count: 2, jobsFileSha256: 'f'.repeat(64), assignment: ASSIGNMENT, ...over },
  counts: { ok: jobs.filter((j) => j.status === 'ok').length, skipped: 0, failed: jobs.filter((j) => j.status === 'failed').length, interrupted: 0 },
  jobs,
});
const write = (name: string, doc: unknown) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, stringifyDocument(doc));
  return f;
};
const s1 = () => write('s1.json', shard(1, [result('a'), result('c', 'failed'), result('e')]));
const s2 = () => write('s2.json', shard(2, [result('b'), result('d')]));
const err = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e as InputError;
  }
  throw new Error('expected an error');
};

describe('mergeBatchSummaries', () => {
  it('joins the shards in jobs-file order with recomputed counts, whatever the order of the files', () => {
    const { summary, shards } = mergeBatchSummaries([s2(), s1()]);
    expect(summary.jobs.map((j) => j.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(summary.counts).toEqual({ ok: 4, skipped: 0, failed: 1, interrupted: 0 });
    expect(summary.shard).toBeUndefined();
    expect(summary.concurrency).toBe(2);
    expect(shards.map((s) => [s.index, s.jobs, s.costEstimate, s.durationMs])).toEqual([
      [1, 3, 90, 300],
      [2, 2, 60, 200],
    ]);
  });

  it('a missing shard names its jobs; a job missing from its shard names the shard file', () => {
    const e = err(() => mergeBatchSummaries([s1()]));
    expect(e).toBeInstanceOf(InputError);
    expect(e.code).toBe('E_MERGE_MISSING');
    expect(e.message).toBe('2 of 5 jobs missing: b, d (shard 2/2: no summary given)');
    const partial = write('s2-partial.json', shard(2, [result('b')]));
    expect(err(() => mergeBatchSummaries([s1(), partial])).message).toMatch(/1 of 5 jobs missing: d \(shard 2\/2: not in .*s2-partial\.json\)/);
  });

  it('a shard given twice, or a job in two summaries, is a duplicate naming the jobs', () => {
    const again = write('s2-again.json', shard(2, [result('b'), result('d')]));
    const e = err(() => mergeBatchSummaries([s1(), s2(), again]));
    expect(e.code).toBe('E_MERGE_DUPLICATE');
    expect(e.message).toMatch(/s2-again\.json: shard 2\/2 is given twice \(also .*s2\.json\): duplicate jobs b, d/);
    const twice = write('s1-twice.json', shard(1, [result('a'), result('a'), result('c'), result('e')]));
    expect(err(() => mergeBatchSummaries([twice, s2()])).message).toMatch(/jobs in more than one summary: a \(/);
  });

  it('summaries of another jobs file, shard count or assignment, or of an unsharded run, are refused', () => {
    const other = write('o.json', shard(2, [result('b'), result('d')], { jobsFileSha256: 'e'.repeat(64) }));
    expect(err(() => mergeBatchSummaries([s1(), other]))).toMatchObject({ code: 'E_MERGE_MISMATCH' });
    const moved = write('m.json', shard(2, [result('b'), result('d')], { assignment: ASSIGNMENT.map((a) => (a.id === 'e' ? { ...a, shard: 2 } : a)) }));
    expect(err(() => mergeBatchSummaries([s1(), moved])).message).toMatch(/same job assignment/);
    const wrongShard = write('w.json', shard(2, [result('b'), result('d'), result('e')]));
    expect(err(() => mergeBatchSummaries([s1(), wrongShard])).message).toMatch(/job "e": expected it in shard 1\/2's summary, got it in shard 2\/2's/);
    const { shard: _, ...plain } = shard(1, [result('a')]);
    expect(err(() => mergeBatchSummaries([write('p.json', plain)])).message).toMatch(/not a shard summary/);
    fs.writeFileSync(path.join(dir, 'bad.json'), '{');
    expect(err(() => mergeBatchSummaries([path.join(dir, 'bad.json')]))).toMatchObject({ code: 'E_DOCUMENT_INVALID' });
    expect(() => mergeBatchSummaries([])).toThrow(/at least one/);
  });
});
