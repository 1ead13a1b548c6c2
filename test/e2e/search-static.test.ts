import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PlanSchema, SearchReportSchema } from '../../src/documents/index.js';
import { loadModel } from '../../src/onnx/index.js';
import { Session } from '../../src/runtime/index.js';
import { FMNIST } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('qtool search --mode static (e2e)', () => {
  it('fmnist_cnn: exit 0, the plan parses, the written model loads in onnxruntime', async () => {
    const dir = makeTempDir('qtool-search-static-e2e-');
    const r = spawnQtool(
      ['search', FMNIST.cnn, '--data', FMNIST.calibX, '--eval', FMNIST.valX, '--eval-labels', FMNIST.valY, '--eval-samples', '500', '--mode', 'static', '--bits', '8,float', '--max-drop', '0.5', '-o', 'plan.json', '--model-out', 'q.onnx', '--report', 'report.json', '--json', '--quiet'],
      { cwd: dir },
    );
    expect(hasStackTrace(r.stderr)).toBe(false);
    expect(r.code).toBe(0);
    const stdout = SearchReportSchema.parse(JSON.parse(r.stdout));
    const plan = PlanSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'plan.json'), 'utf8')));
    expect(plan.mode).toBe('static');
    expect(stdout).toEqual(SearchReportSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'))));
    expect(Object.values(plan.layers).some((l) => l.bits === 8)).toBe(true);
    const s = await Session.open(loadModel(path.join(dir, 'q.onnx')));
    expect(s.outputNames).toEqual(['logits']);
    await s.release();
  });

  it('--calib reuses a qtool calibrate table; a table missing a range the plans read exits 3', () => {
    const dir = makeTempDir('qtool-search-calib-e2e-');
    expect(spawnQtool(['calibrate', FMNIST.cnn, '--data', FMNIST.calibX, '-o', 'calib.json'], { cwd: dir }).code).toBe(0);
    const common = ['search', FMNIST.cnn, '--data', FMNIST.calibX, '--eval', FMNIST.valX, '--eval-samples', '200', '--metric', 'agreement', '--mode', 'static', '--bits', '8,float', '--quiet', '--json'];
    const r = spawnQtool([...common, '--calib', 'calib.json', '--report', 'report.json'], { cwd: dir });
    expect(hasStackTrace(r.stderr)).toBe(false);
    expect(r.code).toBe(0);
    expect(SearchReportSchema.parse(JSON.parse(r.stdout)).notes.join(' ')).toMatch(/static: calibration table calib\.json/);
    const table = JSON.parse(fs.readFileSync(path.join(dir, 'calib.json'), 'utf8'));
    const dropped = Object.keys(table.tensors)[0];
    delete table.tensors[dropped];
    fs.writeFileSync(path.join(dir, 'partial.json'), JSON.stringify(table));
    const bad = spawnQtool([...common, '--calib', 'partial.json'], { cwd: dir });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/E_CALIB_INCOMPLETE|expected a range/);
    expect(hasStackTrace(bad.stderr)).toBe(false);
  });

  it('--calib without --mode static is a usage error (exit 2)', () => {
    const r = spawnQtool(['search', FMNIST.cnn, '--data', FMNIST.calibX, '--eval', FMNIST.valX, '--metric', 'agreement', '--calib', 'x.json']);
    expect(r.code).toBe(2);
    expect(hasStackTrace(r.stderr)).toBe(false);
  });
});
