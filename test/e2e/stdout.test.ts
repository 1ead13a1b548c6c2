/**
 * Which stream gets what: where a command's main output is a document, `-o -` (or `--report -`,
 * `--summary -`) prints that document on stdout (valid under its schema, nothing else on stdout), the
 * human summary goes to stderr, and no file is written. Two documents for one stdout are a usage error.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchSummarySchema, CalibrationTableSchema, EvalReportSchema, PlanSchema } from '../../src/index.js';
import { FMNIST } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

const dir = makeTempDir('qtool-stdout-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const filesIn = (d: string) => fs.readdirSync(d).sort();

describe('documents on stdout', () => {
  it('calibrate -o -: the table on stdout, the summary on stderr, no table file', () => {
    const before = filesIn(path.dirname(FMNIST.cnn));
    const r = spawnQtool(['calibrate', FMNIST.cnn, '--data', FMNIST.calibX, '--samples', '32', '-o', '-'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const table = CalibrationTableSchema.parse(JSON.parse(r.stdout));
    expect(table.samples).toBe(32);
    expect(r.stderr).toMatch(/^stdout: minmax ranges of \d+ tensors from 32 samples/m);
    expect(filesIn(path.dirname(FMNIST.cnn))).toEqual(before);
    expect(filesIn(dir)).toEqual([]);
  });

  it('search -o -: the plan on stdout, the Markdown report on stderr', () => {
    const r = spawnQtool(['search', FMNIST.mlp, '--data', FMNIST.calibX, '--eval', FMNIST.valX, '--eval-labels', FMNIST.valY, '--eval-samples', '200', '--probes', '2', '-o', '-'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const plan = PlanSchema.parse(JSON.parse(r.stdout));
    expect(plan.kind).toBe('qtool.plan');
    expect(r.stderr).toMatch(/# Mixed-precision search/);
  });

  it('search -o - with a missed budget: exit 4 and the best plan still on stdout; --json likewise prints the report', () => {
    const base = ['search', FMNIST.mlp, '--data', FMNIST.calibX, '--eval', FMNIST.valX, '--eval-labels', FMNIST.valY, '--eval-samples', '100', '--probes', '2', '--metric', 'cosine', '--max-drop', '0'];
    const r = spawnQtool([...base, '-o', '-'], { cwd: dir });
    expect(r.code, r.stderr).toBe(4);
    expect(PlanSchema.parse(JSON.parse(r.stdout)).kind).toBe('qtool.plan');
    expect(r.stderr).toMatch(/E_BUDGET_NOT_MET/);
    const j = spawnQtool([...base, '--json'], { cwd: dir });
    expect(j.code, j.stderr).toBe(4);
    expect(JSON.parse(j.stdout).kind).toBe('qtool.search-report');
    expect(filesIn(dir)).toEqual([]);
  });

  it('eval --report -: the report on stdout (as --json), no file named "-"', () => {
    const r = spawnQtool(['eval', FMNIST.mlp, '--data', FMNIST.valX, '--labels', FMNIST.valY, '--samples', '100', '--report', '-'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(EvalReportSchema.parse(JSON.parse(r.stdout)).samples).toBe(100);
    expect(fs.existsSync(path.join(dir, '-'))).toBe(false);
  });

  it('batch --summary -: the summary on stdout, no summary file', () => {
    const jobs = { kind: 'qtool.batch-jobs', version: 1, jobs: [{ id: 'mlp', model: FMNIST.mlp, output: path.join(dir, 'b/mlp.int8.onnx'), recipe: { bits: 8, mode: 'dynamic' } }] };
    fs.writeFileSync(path.join(dir, 'jobs.json'), JSON.stringify(jobs));
    const r = spawnQtool(['batch', path.join(dir, 'jobs.json'), '--summary', '-'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(BatchSummarySchema.parse(JSON.parse(r.stdout)).counts.ok).toBe(1);
    expect(fs.existsSync(path.join(dir, 'jobs.summary.json'))).toBe(false);
    expect(r.stderr).toMatch(/\[1\/1\] mlp: ok/);
  });

  it('two documents for one stdout: usage error (exit 2), one line, nothing run', () => {
    for (const args of [
      ['calibrate', FMNIST.cnn, '--data', FMNIST.calibX, '-o', '-', '--json'],
      ['search', FMNIST.mlp, '--data', FMNIST.calibX, '--eval', FMNIST.valX, '--eval-labels', FMNIST.valY, '-o', '-', '--report', '-'],
      ['sensitivity', FMNIST.mlp, '--data', FMNIST.calibX, '-o', '-', '--markdown'],
    ]) {
      const r = spawnQtool(args, { cwd: dir });
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/E_OPTION_CONFLICT.*stdout/);
      expect(hasStackTrace(r.stderr)).toBe(false);
    }
  });
});
