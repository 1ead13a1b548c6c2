import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EvalReportSchema } from '../../src/documents/index.js';
import { FMNIST } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('qtool eval', () => {
  it('prints accuracy and fidelity; --json parses under qtool.eval/1', () => {
    const text = spawnQtool(['eval', FMNIST.cnn, '--data', FMNIST.valX, '--labels', FMNIST.valY, '--reference', FMNIST.mlp]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/top-1 accuracy\s+92\.55%\s+90\.85%/);
    expect(text.stdout).toMatch(/all outputs\s+0\.\d+\s+\d+\.\d\d/);
    const json = spawnQtool(['eval', FMNIST.cnn, '--data', FMNIST.valX, '--reference', FMNIST.cnn, '--samples', '100', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const r = EvalReportSchema.parse(JSON.parse(json.stdout));
    expect(r.metric).toBe('fidelity');
    expect(r.reference!.fidelity).toMatchObject({ cosine: 1, sqnrDb: null, maxAbsError: 0, top1Agreement: 1 });
  });

  it('--fail-under: exit 4 after printing and writing the report; exit 0 when met', () => {
    const dir = makeTempDir();
    const out = path.join(dir, 'eval.json');
    const fail = spawnQtool(['eval', FMNIST.cnn, '--data', FMNIST.valX, '--labels', FMNIST.valY, '--fail-under', '0.95', '--json', '--report', out]);
    expect(fail.code).toBe(4);
    expect(fail.stderr).toMatch(/E_FAIL_UNDER.*0\.9255.*below --fail-under 0\.95/);
    expect(hasStackTrace(fail.stderr)).toBe(false);
    const printed = EvalReportSchema.parse(JSON.parse(fail.stdout));
    expect(printed.gate).toMatchObject({ passed: false, value: 0.9255, failUnder: 0.95 });
    expect(EvalReportSchema.parse(JSON.parse(fs.readFileSync(out, 'utf8')))).toEqual(printed);
    const pass = spawnQtool(['eval', FMNIST.cnn, '--data', FMNIST.valX, '--labels', FMNIST.valY, '--fail-under', '0.92']);
    expect(pass.code, pass.stderr).toBe(0);
    expect(pass.stdout).toMatch(/gate passed/);
    // The report exists now: refused before any work without --force (unchanged), replaced with it.
    const before = fs.readFileSync(out);
    const refused = spawnQtool(['eval', FMNIST.cnn, '--data', FMNIST.valX, '--labels', FMNIST.valY, '--samples', '10', '--report', out]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/E_OUTPUT_EXISTS.*--force/);
    expect(fs.readFileSync(out).equals(before)).toBe(true);
    const forced = spawnQtool(['eval', FMNIST.cnn, '--data', FMNIST.valX, '--labels', FMNIST.valY, '--samples', '10', '--report', out, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(EvalReportSchema.parse(JSON.parse(fs.readFileSync(out, 'utf8'))).samples).toBe(10);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('--max-drop against the reference: exit 4 when the drop is larger', () => {
    const r = spawnQtool(['eval', FMNIST.mlp, '--data', FMNIST.valX, '--labels', FMNIST.valY, '--reference', FMNIST.cnn, '--max-drop', '1']);
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/gate FAILED: accuracy dropped 1\.70 points/);
  });

  it('usage errors exit 2', () => {
    expect(spawnQtool(['eval', FMNIST.cnn, '--data', FMNIST.valX]).code).toBe(2);
    expect(spawnQtool(['eval', FMNIST.cnn, '--data', FMNIST.valX, '--labels', FMNIST.valY, '--metric', 'f1']).code).toBe(2);
    expect(spawnQtool(['eval', FMNIST.cnn]).code).toBe(2);
  });
});
