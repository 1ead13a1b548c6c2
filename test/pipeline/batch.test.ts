import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchSummarySchema, parseDocument, stringifyDocument } from '../../src/documents/index.js';
import { InputError } from '../../src/errors.js';
import { childScript, runChild } from '../../src/pipeline/child-process.js';
import { hashPath, loadBatchJobs, runBatch, sidecarPath } from '../../src/pipeline/index.js';
import { FMNIST } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

let dir: string;
const write = (name: string, doc: unknown) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, JSON.stringify(doc));
  return f;
};

beforeAll(() => {
  dir = makeTempDir('qtool-batch-');
  fs.copyFileSync(FMNIST.mlp, path.join(dir, 'mlp.onnx'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('loadBatchJobs', () => {
  it('resolves paths against the jobs file and merges defaults under each recipe', () => {
    const f = write('jobs-a.json', { defaults: { bits: 8, mode: 'dynamic' }, jobs: [{ id: 'a', model: 'mlp.onnx', output: 'out/a.onnx', recipe: { mode: 'static', data: 'x.npy' } }] });
    const [job] = loadBatchJobs(f);
    expect(job.model).toBe(path.join(dir, 'mlp.onnx'));
    expect(job.output).toBe(path.join(dir, 'out/a.onnx'));
    expect(job.recipe).toMatchObject({ bits: 8, mode: 'static', data: path.join(dir, 'x.npy') });
    expect(job.written).toEqual({ model: 'mlp.onnx', output: 'out/a.onnx' });
    // An explicit default changes nothing; another value changes the recipe hash.
    const same = loadBatchJobs(write('jobs-b.json', { jobs: [{ id: 'a', model: 'mlp.onnx', output: 'out/a.onnx', recipe: { bits: 8, mode: 'static', data: 'x.npy' } }] }))[0];
    expect(same.recipeHash).toBe(job.recipeHash);
    const other = loadBatchJobs(write('jobs-c.json', { jobs: [{ id: 'a', model: 'mlp.onnx', output: 'out/a.onnx', recipe: { bits: 4, mode: 'static', data: 'x.npy' } }] }))[0];
    expect(other.recipeHash).not.toBe(job.recipeHash);
  });

  it('reads the deprecated recipe key "format" as int4Format (same recipe, same hash)', () => {
    const job = (recipe: Record<string, unknown>, defaults?: Record<string, unknown>) =>
      loadBatchJobs(write('jobs-format.json', { ...(defaults ? { defaults } : {}), jobs: [{ id: 'a', model: 'mlp.onnx', output: 'out/a.onnx', recipe }] }))[0];
    const current = job({ bits: 4, int4Format: 'qdq' });
    const old = job({ bits: 4, format: 'qdq' });
    expect(old.recipe.int4Format).toBe('qdq');
    expect(old.recipe).not.toHaveProperty('format');
    expect(old.recipeHash).toBe(current.recipeHash);
    expect(job({ bits: 4 }, { format: 'qdq' }).recipeHash).toBe(current.recipeHash);
    expect(job({ bits: 4 }).recipe.int4Format).toBe('nbits');
    // Both spellings at once: the old one is an unknown key.
    expect(() => job({ bits: 4, int4Format: 'qdq', format: 'nbits' })).toThrow(/format/);
    expect(() => job({ bits: 4, format: 'int3' })).toThrow(/int4Format/);
  });

  it('refuses invalid jobs files with InputError naming the problem', () => {
    const bad = (doc: unknown) => () => loadBatchJobs(write('bad.json', doc));
    expect(bad({ jobs: [] })).toThrow(InputError);
    expect(bad({ jobs: [{ id: 'a', model: 'm.onnx', output: 'o.onnx', recipe: { bits: 3 } }] })).toThrow(/jobs\.0\.recipe\.bits/);
    expect(bad({ jobs: [{ id: 'a', model: 'm.onnx', output: 'o.onnx', recipe: { bitz: 8 } }] })).toThrow(/bitz/);
    expect(bad({ jobs: [{ id: 'a', model: 'm.onnx', output: 'o.onnx' }, { id: 'a', model: 'n.onnx', output: 'p.onnx' }] })).toThrow(/duplicate job id "a"/);
    expect(bad({ jobs: [{ id: 'a', model: 'm.onnx', output: 'o.onnx' }, { id: 'b', model: 'n.onnx', output: 'o.onnx' }] })).toThrow(/written by an earlier job/);
    expect(bad({ jobs: [{ id: '../x', model: 'm.onnx', output: 'o.onnx' }] })).toThrow(/jobs\.0\.id/);
  });
});

describe('runBatch skip logic', () => {
  it('skips an unchanged job; redoes it when forced, when the output or an input changes', async () => {
    const f = write('jobs-skip.json', { jobs: [{ id: 'mlp', model: 'mlp.onnx', output: 'skip/mlp.q.onnx', recipe: { mode: 'dynamic' } }] });
    const out = path.join(dir, 'skip/mlp.q.onnx');
    const first = await runBatch(f, { summaryFile: path.join(dir, 'skip/summary.json') });
    expect(first.jobs[0]).toMatchObject({ status: 'ok', note: 'no output yet' });
    expect(fs.existsSync(sidecarPath(out))).toBe(true);
    parseDocument(JSON.parse(fs.readFileSync(path.join(dir, 'skip/summary.json'), 'utf8')), BatchSummarySchema);
    expect((await runBatch(f)).jobs[0].status).toBe('skipped');
    expect((await runBatch(f, { force: true })).jobs[0]).toMatchObject({ status: 'ok', note: 'forced' });
    fs.appendFileSync(out, Buffer.from([0]));
    expect((await runBatch(f)).jobs[0]).toMatchObject({ status: 'ok', note: 'the output was modified' });
    expect((await runBatch(f)).jobs[0].status).toBe('skipped');
    fs.rmSync(sidecarPath(out));
    expect((await runBatch(f)).jobs[0]).toMatchObject({ status: 'ok', note: 'no job record next to the output' });
  });

  it('hashPath hashes files and folders, and reports missing paths', () => {
    expect(hashPath(path.join(dir, 'nope'))).toBe('missing');
    expect(hashPath(path.join(dir, 'mlp.onnx'))).toMatch(/^[0-9a-f]{64}$/);
    fs.mkdirSync(path.join(dir, 'hd'));
    fs.writeFileSync(path.join(dir, 'hd/a'), 'x');
    const h1 = hashPath(path.join(dir, 'hd'));
    fs.writeFileSync(path.join(dir, 'hd/a'), 'y');
    expect(hashPath(path.join(dir, 'hd'))).not.toBe(h1);
  });
});

describe('child processes', () => {
  it('a child that dies without answering is one failed job, typed E_CHILD_CRASHED', async () => {
    const script = path.join(dir, 'crash.mjs');
    fs.writeFileSync(script, "process.on('message', () => { process.stderr.write('boom: out of memory\\n'); process.exit(9); });");
    const err = await runChild(script, {}).result.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_CHILD_CRASHED' });
    expect(String((err as Error).message)).toMatch(/exited with code 9.*boom: out of memory/);
    fs.writeFileSync(script, "process.on('message', () => process.kill(process.pid, 'SIGKILL'));");
    await expect(runChild(script, {}).result).rejects.toThrow(/killed by SIGKILL/);
  });

  it('abort kills the child at once and rejects with E_INTERRUPTED', async () => {
    const script = path.join(dir, 'hang.mjs');
    fs.writeFileSync(script, "process.on('message', () => setInterval(() => {}, 1000));");
    const ac = new AbortController();
    const run = runChild(script, {}, { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(run.result).rejects.toMatchObject({ code: 'E_INTERRUPTED', exitCode: 130 });
    expect(() => process.kill(run.pid!, 0)).toThrow();
  });

  it('the compiled child scripts exist', () => {
    expect(fs.existsSync(childScript('batch-child.js'))).toBe(true);
    expect(fs.existsSync(childScript('bench-child.js'))).toBe(true);
    expect(stringifyDocument({ kind: 'x', version: 1 })).toContain('"kind"');
  });
});
