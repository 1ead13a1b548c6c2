/**
 * The library as a user sees it: a project with qtool in node_modules imports it by name, runs a
 * small end-to-end (load, bench, eval) and type-checks against the shipped declarations.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FMNIST, ROOT } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';

/** What the issue promises: `import { loadModel, calibrate, sensitivity, search, quantize, bench } from 'qtool'`. */
const API_FUNCTIONS = ['loadModel', 'saveModel', 'inspectModel', 'calibrate', 'sensitivity', 'search', 'quantize', 'bench', 'evaluate', 'runBatch'];

let dir: string;
beforeAll(() => {
  dir = makeTempDir('qtool-api-');
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'qtool'), 'dir');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'user-app', private: true, type: 'module' }));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const run = (script: string) => {
  fs.writeFileSync(path.join(dir, 'main.mjs'), script);
  const r = spawnSync(process.execPath, ['main.mjs'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe("import … from 'qtool'", () => {
  it('exports every stage as a function', () => {
    const r = run(`import * as qtool from 'qtool';\nconsole.log(JSON.stringify(${JSON.stringify(API_FUNCTIONS)}.filter((n) => typeof qtool[n] !== 'function')));`);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  it('runs load → bench → eval → quantize → eval on fmnist_mlp (100 validation images)', () => {
    const r = run(`
import { loadModel, inspectModel, bench, evaluate, quantize, BenchReportSchema, EvalReportSchema, QtoolError } from 'qtool';
const model = loadModel(${JSON.stringify(FMNIST.mlp)});
const summary = inspectModel(model);
const report = await bench([${JSON.stringify(FMNIST.mlp)}], { runs: 3, warmup: 1, batchSizes: [1, 4] });
BenchReportSchema.parse(report);
const ev = await evaluate(model, { data: ${JSON.stringify(FMNIST.valX)}, labels: ${JSON.stringify(FMNIST.valY)}, maxSamples: 100 });
EvalReportSchema.parse(ev);
const q = await quantize(model, { bits: 8, mode: 'dynamic', output: 'mlp.int8.onnx', fidelitySamples: 0 });
const qev = await evaluate(q.file, { data: ${JSON.stringify(FMNIST.valX)}, reference: ${JSON.stringify(FMNIST.mlp)}, maxSamples: 100 });
let caught;
try { loadModel('missing.onnx'); } catch (e) { caught = e; }
console.log(JSON.stringify({ layers: summary.quantizableLayers.length, batches: report.models[0].results.map((x) => x.batchSize), p50: report.models[0].results[0].latency.p50Ms, samples: ev.samples, top1: ev.accuracy.top1, sizeRatio: q.summary.sizeRatio, agreement: qev.reference.fidelity.top1Agreement, error: caught instanceof QtoolError ? caught.exitCode : null }));
`);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.layers).toBeGreaterThan(0);
    expect(out.batches).toEqual([1, 4]);
    expect(out.p50).toBeGreaterThan(0);
    expect(out.samples).toBe(100);
    expect(out.top1).toBeGreaterThan(0.8);
    expect(out.sizeRatio).toBeLessThan(0.35);
    expect(out.agreement).toBeGreaterThan(0.9);
    expect(out.error).toBe(3);
  });

  it('ships TypeScript types: a typed user program compiles against them', () => {
    fs.writeFileSync(
      path.join(dir, 'typed.ts'),
      `import { bench, evaluate, runBatch, loadModel, type BenchReport, type EvalReport, type BatchSummary } from 'qtool';
const model = loadModel('m.onnx');
export const b: Promise<BenchReport> = bench(['m.onnx'], { runs: 5, batchSizes: [1, 8] });
export const e: Promise<EvalReport> = evaluate(model, { data: 'x.npy', labels: 'y.npy', failUnder: 0.9 });
export const s: Promise<BatchSummary> = runBatch('jobs.json', { concurrency: 2 });
// @ts-expect-error runs must be a number
bench(['m.onnx'], { runs: '5' });
`,
    );
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['typed.ts'] }),
    );
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });
});
