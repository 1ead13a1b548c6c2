import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SensitivityReportSchema } from '../../src/documents/index.js';
import { FMNIST } from '../helpers/paths.js';
import { hasStackTrace, spawnQtool } from '../helpers/spawn.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('qtool sensitivity (e2e)', () => {
  it('writes JSON, Markdown and HTML, and --fail-over exits 4 after writing', () => {
    const dir = makeTempDir('qtool-sens-e2e-');
    const r = spawnQtool(['sensitivity', FMNIST.mlp, '--data', FMNIST.calibX, '--probes', '2', '--samples', '16', '-o', 'r.json', '--html', 'r.html', '--markdown', '--fail-over', '1e-9'], { cwd: dir });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/E_FAIL_OVER/);
    expect(hasStackTrace(r.stderr)).toBe(false);
    const report = SensitivityReportSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'r.json'), 'utf8')));
    expect(report.layers).toHaveLength(3);
    const html = fs.readFileSync(path.join(dir, 'r.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|<link|src="http/);
    // The outputs exist now: refused before any work without --force (unchanged), replaced with it.
    const before = fs.readFileSync(path.join(dir, 'r.json'));
    const refused = spawnQtool(['sensitivity', FMNIST.mlp, '--data', FMNIST.calibX, '--probes', '2', '--samples', '8', '--html', 'r.html'], { cwd: dir });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/r\.html.*E_OUTPUT_EXISTS|E_OUTPUT_EXISTS.*r\.html/);
    const forced = spawnQtool(['sensitivity', FMNIST.mlp, '--data', FMNIST.calibX, '--probes', '2', '--samples', '8', '-o', 'r.json', '--force'], { cwd: dir });
    expect(forced.code, forced.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'r.json')).equals(before)).toBe(false);
    expect(SensitivityReportSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'r.json'), 'utf8'))).settings.samples).toBe(8);
  });

  it('list flags are read by the schema: --bits items are the candidate widths, repeatable', () => {
    const bad = spawnQtool(['sensitivity', FMNIST.mlp, '--data', FMNIST.calibX, '--bits', '4,float']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--bits: expected a list of 4, 8, 16, got "4,float"/);
    const search = spawnQtool(['search', FMNIST.mlp, '--data', FMNIST.calibX, '--eval', FMNIST.valX, '--metric', 'sqnr', '--bits', '4', '--bits', '4']);
    expect(search.code).toBe(2);
    expect(search.stderr).toMatch(/E_FLAG.*bits: expected at least two distinct levels/);
    expect(hasStackTrace(search.stderr)).toBe(false);
  });

  it('rejects a bad --loss with exit 2', () => {
    const r = spawnQtool(['sensitivity', FMNIST.mlp, '--data', FMNIST.calibX, '--loss', 'nope']);
    expect(r.code).toBe(2);
    expect(hasStackTrace(r.stderr)).toBe(false);
  });
});
